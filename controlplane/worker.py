"""``edgefleet worker``: the Celery worker (with its beat) on Redis, for the scaled-out shape.

Start-up waits, up to ``Settings.start_wait_seconds``, for what it needs, in this order: the
database with its schema at head, the fleet's signing key in the shared data dir (made by
``edgefleet init`` or the first server), and Redis. A worker never creates a key.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import kombu
import kombu.exceptions
from celery import signals
from celery.beat import EmbeddedService

from controlplane import logs
from controlplane.app import ControlPlane
from controlplane.config import Settings, redact_url
from controlplane.db import check_schema
from controlplane.errors import ConfigurationError, DependencyUnreachableError
from controlplane.events import announce
from controlplane.jobs.app import configure
from controlplane.startup import require_fleet_key, wait_until

BROKER_CONNECT_TIMEOUT_SECONDS = 5


def check_broker(url: str) -> None:
    """Raise DependencyUnreachableError, worded for the operator, when Redis does not answer:
    a worker without its broker would otherwise report ready and retry forever."""
    with kombu.Connection(url, connect_timeout=BROKER_CONNECT_TIMEOUT_SECONDS) as conn:
        try:
            conn.ensure_connection(max_retries=1, timeout=BROKER_CONNECT_TIMEOUT_SECONDS)
        except kombu.exceptions.OperationalError as exc:
            raise DependencyUnreachableError(
                f"cannot reach Redis at {redact_url(url)} ({exc}): is it running, and are "
                f"--redis / EDGEFLEET_REDIS right?"
            ) from exc


def run_worker(settings: Settings, *, output: str = "table") -> int:
    """Run until SIGTERM/SIGINT; returns the worker's exit code.

    Under ``-o json`` Celery's banner (stdout) is left out; its log goes to stderr either way.
    Raises ConfigurationError (no --redis / --db, no signing key after the wait), SchemaError,
    DependencyUnreachableError (database or Redis still away after the wait).
    """
    if not settings.redis_url:
        raise ConfigurationError(
            "edgefleet worker needs --redis URL (or EDGEFLEET_REDIS): without Redis the "
            "background jobs run inside `edgefleet server`"
        )
    if not settings.database_url:
        raise ConfigurationError(
            "edgefleet worker needs --db URL (or EDGEFLEET_DB), the server's database")
    logs.configure()
    wait_until(lambda: check_schema(settings.db_url, "this worker"), what="the database schema",
               settings=settings)
    wait_until(lambda: require_fleet_key(settings, "a worker"), what="`edgefleet init`",
               settings=settings)
    wait_until(lambda: check_broker(settings.redis_url or ""), what="Redis", settings=settings)
    broker, database = redact_url(settings.redis_url), redact_url(settings.db_url)
    celery = configure(settings, ControlPlane.from_settings(settings, create_key=False))
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
