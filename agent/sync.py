"""The sync loop: the one thread that talks to the control plane and changes what is served.

    enroll (first run) -> Sync (the hardware profile with the first one, and whenever it
      changed: ``agent.hardware.changed``)
      -> a desired state in the answer? offer it to the trust state; refused: report it once
         (per document) and keep serving
      -> reconcile through the installer -> ReportStatus events, ReportMetrics windows
      -> wait the poll interval (jittered), closing metric windows meanwhile, or less when the
         watch thread (``agent.watch``) hears of a change; after a transport error, back off
         exponentially instead

Invariants:
- This thread is the only writer of install state (trust state, status board, live table,
  the data dir's state) once start-up is done.
- A transport error never ends the loop: it is shown in the status (with a hint when a
  plaintext agent meets a TLS server) and the round is tried again after a backoff. A refused
  enrollment ends it for good (``fatal_error``); so does ``stop``.
- A round that hits an unexpected exception is logged with its traceback and retried after a
  backoff, so a bug costs a sync round, never the serving.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agent.backoff import Backoff, jittered
from agent.errors import AgentDataError, AgentError, AgentTransportError, EnrollmentRefusedError
from agent.hardware import changed as hardware_changed
from agent.link import ServerLink
from agent.reconcile import Reconciler, StateWriter
from agent.reporter import Reporter
from agent.settings import AgentSettings
from agent.status import StatusBoard
from agent.store import AgentStore
from agent.trust_state import TrustState
from protos import edgefleet_pb2 as pb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Enrollment:
    """What the first run enrolls with."""

    token: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)


class SyncLoop:
    """Runs the sync thread until ``stop`` is set or the enrollment is refused."""

    def __init__(self, *, settings: AgentSettings, store: AgentStore, link: ServerLink,
                 trust: TrustState, board: StatusBoard, reporter: Reporter,
                 reconciler: Reconciler, persist: StateWriter, enrollment: Enrollment | None,
                 hardware: Callable[[], pb.HardwareProfile], stop: threading.Event,
                 wake: threading.Event | None = None) -> None:
        self._settings = settings
        self._store = store
        self._link = link
        self._trust = trust
        self._board = board
        self._reporter = reporter
        self._reconciler = reconciler
        self._persist = persist
        self._enrollment = enrollment
        self._hardware = hardware
        self._stop = stop
        # Set by the watch thread (a pushed change) and by stop(): the idle wait ends at once.
        self._wake = wake or threading.Event()
        self._thread = threading.Thread(target=self._run, name="agent-sync", daemon=True)
        self._hardware_reported: pb.HardwareProfile | None = None   # this run's, acknowledged
        self._server_poll_seconds: float | None = None
        self._refused_fingerprint: str | None = None
        #: Set when the loop ended for good on its own (the enrollment was refused).
        self.fatal_error: AgentError | None = None

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; True if it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        settings = self._settings
        backoff = Backoff(settings.backoff_min_seconds, settings.backoff_max_seconds,
                          settings.sync_jitter)
        while not self._stop.is_set():
            try:
                self._round()
                backoff.reset()
                delay = jittered(self._poll_seconds(), settings.sync_jitter)
            except EnrollmentRefusedError as exc:
                log.error("%s", exc)
                self.fatal_error = exc
                self._board.set_transport_error(str(exc))
                break
            except AgentTransportError as exc:
                if self._stop.is_set():
                    break
                delay = backoff.next_delay()
                message = str(exc)
                if exc.code == "UNAVAILABLE" and self._link.plaintext:
                    # A TLS server drops a plaintext client with nothing but a closed socket.
                    message += " (if the server was started with --tls-cert, run the agent " \
                               "with --tls-ca)"
                self._board.set_transport_error(message)
                log.warning("%s; retrying in %.1fs", message, delay)
            except Exception:
                if self._stop.is_set():
                    break   # the channel was closed under a call: that is how stop() cancels
                delay = backoff.next_delay()
                log.exception("unexpected error in the sync loop; retrying in %.1fs", delay)
            self._idle(delay)

    def _round(self) -> None:
        if self._link.credential is None:
            self._enroll()
        self._reconciler.watch()   # a rollback first: it must not wait for a slow server
        self._sync()
        self._reconciler.reconcile()
        self._reporter.flush()

    def _idle(self, seconds: float) -> None:
        """Wait ``seconds`` (or until stopped, or woken by a pushed change), closing and
        reporting metric windows and judging models on probation meanwhile (every
        ``probation_check_seconds`` while one is)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            tick = self._settings.metrics_window_seconds / 2
            if self._reconciler.watching:
                tick = min(tick, self._settings.probation_check_seconds)
            if self._wake.wait(min(remaining, tick)) or self._stop.is_set():
                self._wake.clear()
                return
            self._reconciler.watch()
            self._reporter.tick()

    def _poll_seconds(self) -> float:
        return (self._settings.poll_interval_seconds or self._server_poll_seconds
                or self._settings.default_poll_seconds)

    # -- one round ---------------------------------------------------------------------------

    def _enroll(self) -> None:
        """Raises EnrollmentRefusedError, AgentTransportError (see ``ServerLink.enroll``)."""
        if self._enrollment is None:   # start() refuses to run without one of the two
            raise RuntimeError("no credential and no enrollment token")
        request = pb.EnrollRequest(
            name=self._enrollment.name,
            hardware=self._hardware(),
            labels=self._enrollment.labels,
            enrollment_key=self._store.enrollment_key(),
        )
        credential = self._link.enroll(request, self._enrollment.token)
        self._store.write_credential(credential)
        self._trust.bind(credential.device_id)
        self._board.set_device(credential.device_id)
        log.info("enrolled as device %s", credential.device_id)

    def _sync(self) -> None:
        """Raises AgentTransportError."""
        request = pb.SyncRequest(
            known_sequence=self._trust.sequence,
            active=[live.ref.to_proto() for live in self._board.snapshot().live.values()],
        )
        current = self._hardware()
        if hardware_changed(self._hardware_reported, current):
            request.hardware.CopyFrom(current)
        response = self._link.call("sync", "Sync", request)
        if request.HasField("hardware"):
            self._hardware_reported = current
        self._board.synced(datetime.now(UTC))
        self._server_poll_seconds = response.poll_interval_seconds or None
        if response.HasField("desired_state"):
            self._accept(response.desired_state)

    def _accept(self, signed: pb.SignedDocument) -> None:
        """Offer ``signed`` to the trust state; a refusal is reported, never raised."""
        try:
            desired = self._trust.accept(signed, datetime.now(UTC))
        except AgentDataError as exc:
            fingerprint = hashlib.sha256(signed.payload + signed.signature).hexdigest()
            if fingerprint != self._refused_fingerprint:   # report a refusal once, not every poll
                self._refused_fingerprint = fingerprint
                message = f"desired state refused: {exc}"
                log.warning("%s; still serving what was active", message)
                self._board.set_data_error(message)
                self._reporter.event(None, "failed", message)
            return
        if desired is None:
            return
        log.info("accepted desired state %d (%s)", desired.sequence,
                 ", ".join(str(e.ref) for e in desired.entries) or "no model")
        self._board.accepted(desired.sequence)
        self._persist()
