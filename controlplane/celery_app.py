"""The Celery app, the shared task base, and the embedded in-process worker.

One code path for background work in both runtime shapes (DESIGN.md):
- scaled out: broker on Redis; ``edgefleet worker`` runs ``app.Worker`` with an embedded beat;
- embedded: broker ``memory://``; ``EmbeddedWorker`` runs Celery's own ``WorkController`` (with
  beat) in a thread of the server, as ``celery.contrib.testing.worker`` does.

Invariants:
- Tasks are sent only after the transaction that asked for them commits (``enqueue_after_commit``);
  a rolled-back transaction sends nothing.
- Tasks are idempotent, ``acks_late`` and JSON-serialised; ``PlaneTask`` retries only errors known
  to be transient (database connectivity), with backoff.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Any

import kombu
import kombu.exceptions
from celery import Celery, Task, signals
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from controlplane import logs
from controlplane.config import Settings, redact_url
from controlplane.db import check_schema
from controlplane.events import announce

log = logging.getLogger(__name__)

app = Celery("edgefleet", include=["controlplane.registry.tasks", "controlplane.rollouts.tasks"])
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    timezone="UTC",
)

_plane: Any = None  # the ControlPlane tasks run against, set by configure()


def configure(settings: Settings, plane: Any = None) -> Celery:
    """Point the Celery app at the broker for ``settings`` and the plane tasks use."""
    global _plane
    from controlplane.app import ControlPlane  # late: avoids a cycle with domain tasks

    if plane is None:
        from controlplane.registry.errors import SigningKeyError

        try:
            plane = ControlPlane.from_settings(settings, create_key=False)
        except SigningKeyError as exc:
            raise SystemExit(
                f"{exc}: a worker signs with the fleet's key and reads its artifacts; pass "
                f"--data-dir pointing at the data dir the servers use (on a new fleet, start "
                f"`edgefleet server` first: it creates the key)"
            ) from exc
    _plane = plane
    app.conf.update(
        broker_url=settings.redis_url or "memory://",
        beat_schedule={
            "rollouts-tick": {
                "task": "rollouts.tick",
                "schedule": settings.rollout_tick_seconds,
            },
            "registry-sweep": {
                "task": "registry.sweep_pending",
                "schedule": settings.measure_sweep_seconds,
            },
        },
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
        broker_transport_options={"polling_interval": 0.2} if settings.embedded else {},
    )
    return app


def current_plane() -> Any:
    if _plane is None:
        raise RuntimeError("celery_app.configure() was not called in this process")
    return _plane


TRANSIENT = (OperationalError,)


class PlaneTask(Task):
    """Base for EdgeFleet tasks: owns the plane, retries transient database errors."""

    abstract = True
    acks_late = True
    autoretry_for = TRANSIENT
    retry_backoff = True
    retry_backoff_max = 60
    max_retries = 5

    @property
    def plane(self) -> Any:
        return current_plane()


def enqueue_after_commit(session: Session, task: Any, *args: Any) -> None:
    """Send ``task(*args)`` once ``session``'s transaction commits; never if it rolls back."""
    session.info.setdefault("edgefleet_after_commit", []).append((task, args))


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    for task, args in session.info.pop("edgefleet_after_commit", []):
        # The transaction has committed: a failed send is logged, never raised. A send the
        # broker refused waits in the outbox for ``resend_unsent``; anything lost beyond that
        # (a crash, a full outbox) is found by the periodic sweep and tick.
        try:
            task.apply_async(args=args)
        except kombu.exceptions.OperationalError as exc:  # the broker is down: expected, brief
            with _outbox_lock:
                _outbox.append((task, args))
            log.error("could not send task %s%r (%s); it is sent again when the broker answers",
                      task.name, args, exc)
        except Exception:
            log.exception(
                "could not send task %s%r; the periodic tick will retry it", task.name, args
            )


# Sends the broker refused, oldest first. Bounded: past this the periodic sweep is the backstop.
OUTBOX_MAX = 10_000
_outbox: deque[tuple[Any, tuple[Any, ...]]] = deque(maxlen=OUTBOX_MAX)
_outbox_lock = threading.Lock()


def unsent_count() -> int:
    """How many task sends wait for the broker to come back."""
    return len(_outbox)


def resend_unsent() -> int:
    """Send what a broker outage held back, oldest first, stopping at the first send the broker
    still refuses; returns how many went out. Blocking: call it off the event loop."""
    sent = 0
    while True:
        with _outbox_lock:
            if not _outbox:
                return sent
            task, args = _outbox[0]
        try:
            task.apply_async(args=args)
        except kombu.exceptions.OperationalError:
            return sent
        except Exception:
            log.exception("dropping unsendable task %s%r; the periodic tick covers it",
                          task.name, args)
        with _outbox_lock:
            if _outbox and _outbox[0] == (task, args):
                _outbox.popleft()
        sent += 1


@event.listens_for(Session, "after_rollback")
def _drop_after_rollback(session: Session) -> None:
    session.info.pop("edgefleet_after_commit", None)


class EmbeddedWorker:
    """Celery's worker machinery (with beat) in a thread of this process, on ``memory://``."""

    def __init__(self, celery: Celery, *, concurrency: int = 2) -> None:
        self.celery = celery
        self.concurrency = concurrency
        self._thread: threading.Thread | None = None
        self._worker: Any = None
        self._beat: Any = None
        self._started = threading.Event()

    def start(self) -> None:
        from celery.worker import WorkController

        started = self._started

        class _Controller(WorkController):
            def on_consumer_ready(self, consumer: Any) -> None:
                started.set()

        self.celery.finalize()
        self.celery.set_current()
        self._worker = _Controller(
            app=self.celery,
            concurrency=self.concurrency,
            pool="threads",
            hostname="embedded@edgefleet",
            loglevel="WARNING",
            # The worker's own beat bootstep forks a process, which could not see this process's
            # memory:// broker (and forking beside gRPC threads is unsafe); beat runs as a thread.
            beat=False,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        self._thread = threading.Thread(
            target=self._worker.start, name="edgefleet-celery", daemon=True
        )
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError("embedded Celery worker did not start within 30 s")
        from celery.beat import EmbeddedService

        self._beat = EmbeddedService(self.celery, thread=True)
        self._beat.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._worker is None:
            return
        if self._beat is not None:
            self._beat.stop()
            self._beat = None
        # Stops the consumer and the pool, then the thread's start() returns.
        self._worker.stop(in_sighandler=False, exitcode=0)
        if self._thread is not None:
            self._thread.join(timeout)
        self._worker = None


def _check_broker(url: str) -> None:
    """Fail the start, in seconds, when Redis does not answer: a worker without its broker
    would otherwise report ready and retry forever. Raises kombu's OperationalError, worded
    for the operator (the CLI makes it exit 3)."""
    with kombu.Connection(url, connect_timeout=5) as conn:
        try:
            conn.ensure_connection(max_retries=1, timeout=5)
        except kombu.exceptions.OperationalError as exc:
            raise kombu.exceptions.OperationalError(
                f"cannot reach Redis at {redact_url(url)} ({exc}): is it running, and are "
                f"--redis / EDGEFLEET_REDIS right?"
            ) from exc


def run_worker(settings: Settings, *, output: str = "table") -> int:
    """``edgefleet worker``: the Celery worker and beat on Redis, until SIGTERM/SIGINT.

    Under ``-o json`` Celery's banner (stdout) is left out; its log goes to stderr either way.
    """
    if not settings.redis_url:
        raise SystemExit(
            "edgefleet worker needs --redis URL (or EDGEFLEET_REDIS): without Redis the "
            "background jobs run inside `edgefleet server`"
        )
    if not settings.database_url:
        raise SystemExit("edgefleet worker needs --db URL (or EDGEFLEET_DB), the server's database")
    check_schema(settings.db_url, "this worker")
    _check_broker(settings.redis_url)
    broker, database = redact_url(settings.redis_url), redact_url(settings.db_url)
    celery = configure(settings)
    events = sys.stdout
    if output == "json":
        # Celery writes its banner and shutdown notes straight to file descriptor 1: under
        # -o json they go to stderr, and stdout (a duplicate of it) carries only our events.
        sys.stdout.flush()
        events = os.fdopen(os.dup(sys.stdout.fileno()), "w")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    # Celery installs its own handlers when the worker starts; quiet them once they exist.
    @signals.after_setup_logger.connect(weak=False)
    def _quiet(logger: logging.Logger, **_: Any) -> None:
        logs.quiet_routine(logger.handlers)

    from celery.beat import EmbeddedService

    with tempfile.TemporaryDirectory(prefix="edgefleet-beat-") as beat_dir:
        # Beat's schedule file is this process's own: workers share the data dir, and a shelve
        # written by several processes would break. Losing it is harmless (interval schedules).
        celery.conf.beat_schedule_filename = str(Path(beat_dir) / "schedule")
        # Beat runs as a daemon thread, not the process Celery's `beat=True` forks: a forked
        # beat outlives a worker killed with SIGKILL and keeps queueing ticks for nobody.
        beat = EmbeddedService(celery, thread=True)
        worker = celery.Worker(
            beat=False,
            pool="threads",
            concurrency=2,
            loglevel="INFO",
            hostname=f"worker@{socket.gethostname()}",
            without_mingle=True,
            without_gossip=True,
            quiet=output == "json",
        )
        @signals.worker_ready.connect(weak=False)
        def _ready(**_: Any) -> None:  # consuming from the broker now
            announce(output, f"edgefleet worker ready: broker {broker}, database {database}",
                     "ready", stream=events, broker=broker, database=database,
                     hostname=worker.hostname)

        beat.start()
        try:
            worker.start()
        finally:
            # Not beat.stop(): it waits for the beat loop, which may sit in a broker reconnect
            # for good. The thread is a daemon; it ends with the process.
            beat.service.stop(wait=False)
    code = int(getattr(worker, "exitcode", 0) or 0)
    announce(output, "edgefleet worker stopped", "stopped", exit_code=code, stream=events)
    return code
