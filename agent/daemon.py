"""The agent daemon: enroll once, then keep the device's models equal to its desired state.

``Agent`` only wires the parts together and runs their lifecycle; each job has its module:

    trust_state  TrustState: the trust key, the device id, the accepted desired state (no I/O)
    restore      start-up: the stored state and models, re-verified, served again
    sync         SyncLoop: the thread that enrolls, syncs, accepts, reconciles, reports, backs off
    watch        WatchThread: holds the Watch stream and wakes the sync thread on a pushed change
    reconcile    Reconciler: install what is wanted, unload what is not; StateWriter: the data dir
    installer    the install steps: download -> verify -> load -> validate -> prove -> swap
                 (-> stage instead of swap for a held entry)
    probation    the watch on a model just activated; a breach rolls it back (reconcile)
    budget       the latency budget relative to the manifest's measured figure
    reporter     install events and metric windows to the server
    metrics_buffer  what the server has not acknowledged yet, bounded in bytes, on disk
    checkpoint   the agent-metrics thread: the open metric window on disk, every few seconds
    link         the channel to the control plane and the device credential
    status       StatusBoard: what ``status`` shows, one consistent snapshot
    serving      the live model table requests are answered from

``Agent.start()`` reads the trust key, restores what the data dir holds, serves it on the local
endpoint at once, and starts the sync thread; ``stop()`` cancels the sync thread's call in
flight, waits for it, and stops serving after the grace period.

Invariants:
- Nothing reaches the live table unless the trust state accepted its desired state, its
  artifact's length and sha256 matched the signed manifest, and a fresh runner validated it.
- A failure of one model (bad bytes, load or validation failure) is reported and leaves the
  version that was serving in place; a transport failure is retried with backoff.
- State is persisted (crash-safe) after every change of the accepted desired state or of the
  active set, and the artifacts of the active and previous versions stay on disk.
- After start-up only the sync thread changes install state; request threads read the live
  table and the status board's snapshots.
- What the server has not acknowledged is in the data dir: closed windows and install events
  in the metrics buffer, the open window in its checkpoint; a SIGKILL loses at most the
  inferences of the last ``metrics_checkpoint_seconds``, and restored windows keep their ids.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.checkpoint import MetricsCheckpoint
from agent.errors import AgentError, ConfigurationError
from agent.hardware import hardware_profile
from agent.installer import (
    Installer,
    install_steps,
    reactivate_steps,
    stage_steps,
    unstage_steps,
)
from agent.link import ServerLink
from agent.metrics import MetricsRecorder
from agent.metrics_buffer import MetricsBuffer
from agent.probation import Probation
from agent.reconcile import Reconciler, StateWriter
from agent.reporter import Reporter
from agent.restore import restore
from agent.runtime import interpreter_factory
from agent.server import LocalInferenceServer
from agent.serving import ModelTable, Prediction
from agent.settings import AgentSettings
from agent.status import StatusBoard, status_message
from agent.store import AgentStore
from agent.sync import Enrollment, SyncLoop
from agent.trust import load_public_key
from agent.trust_key import locate, read_trust_key, warn_about_legacy_key
from agent.trust_state import TrustState
from agent.watch import WatchThread
from protos import edgefleet_pb2 as pb


class Agent:
    """One device agent on one data dir."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        server: str | None = None,
        enroll_token: str | None = None,
        trust_key_pem: bytes | None = None,
        trust_key_path: Path | str | None = None,
        tls_ca_pem: bytes | None = None,
        labels: dict[str, str] | None = None,
        name: str | None = None,
        serve: str | None = None,
        hardware_overrides: dict[str, Any] | None = None,
        settings: AgentSettings | None = None,
    ) -> None:
        """An agent for ``data_dir``; nothing happens before ``start()``.

        The trust key is read at every ``start()``: from ``trust_key_path`` (the CLI's
        ``--trust-key``), else ``$EDGEFLEET_AGENT_TRUST_KEY``, else
        ``/etc/edgefleet/trust-key.pub``, and refused inside the data dir or when group or others
        may write it (``agent.trust_key``). A program that holds the key itself (a test, an
        embedding application) may pass it as ``trust_key_pem`` instead; it is never written to
        the data dir.

        Raises ConfigurationError when both ``trust_key_pem`` and ``trust_key_path`` are given.
        """
        if trust_key_pem is not None and trust_key_path is not None:
            raise ConfigurationError("give the trust key as a file or as bytes, not both")
        self.settings = settings or AgentSettings()
        self.store = AgentStore(data_dir, max_quarantined=self.settings.max_quarantined_files)
        self.metrics = MetricsRecorder(self.settings)
        self.models = ModelTable(self.metrics)
        self.metrics_buffer = MetricsBuffer(self.store, self.settings)
        self.endpoint: str | None = None

        self._server_arg = server
        self._enroll_token = enroll_token
        self._trust_key_pem = trust_key_pem
        self._trust_key_path = trust_key_path
        self._tls_ca_pem = tls_ca_pem
        self._labels = dict(labels or {})
        self._name = name
        self._serve = serve or f"unix://{self.store.socket_path}"
        self._hardware_overrides = hardware_overrides

        self._board = StatusBoard(self.models)
        self._stop = threading.Event()
        self._link: ServerLink | None = None
        self._reporter: Reporter | None = None
        self._checkpoint: MetricsCheckpoint | None = None
        self._local: LocalInferenceServer | None = None
        self._loop: SyncLoop | None = None
        self._wake = threading.Event()
        self._watch: WatchThread | None = None

    @property
    def fatal_error(self) -> AgentError | None:
        """Set when the sync thread stopped for good (enrollment refused)."""
        return self._loop.fatal_error if self._loop is not None else None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Restore, serve locally and start syncing; returns the local endpoint.

        Raises ConfigurationError (no trust key, or one inside the data dir or writable by
        group or others; no server; no credential and no enrollment token; socket in use; no
        interpreter installed).
        """
        settings, store, board = self.settings, self.store, self._board
        store.ensure()
        trust = TrustState(self._load_trust_key())
        credential = store.read_credential()
        server = self._server_arg or (credential.server if credential else "")
        if not server:
            raise ConfigurationError("no control plane address: pass --server or set "
                                     "EDGEFLEET_SERVER")
        if credential is None and not self._enroll_token:
            raise ConfigurationError(
                f"{store.data_dir} holds no device credential: the first run needs "
                "--enroll-token (create one with `edgefleet enroll-token create`)"
            )
        interpreter_factory(settings.interpreter_choice)   # fail now if none installed
        board.set_server(server)
        link = self._link = ServerLink(server, settings, store, credential)
        buffer = self.metrics_buffer
        checkpoint = self._checkpoint = MetricsCheckpoint(self.metrics, store, settings,
                                                          self._stop)
        reporter = self._reporter = Reporter(link, self.metrics, buffer, checkpoint, board,
                                             settings)
        probation = Probation(settings, self.metrics)
        if credential is not None:
            trust.bind(credential.device_id)
            board.set_device(credential.device_id)
            # What the last run had not sent goes first, before anything new is told or
            # counted: its events and closed windows, then the window it had open, ids kept.
            buffer.restore()
            checkpoint.restore_into(buffer)
            restore(store, trust, board, reporter, settings, probation)

        self._local = LocalInferenceServer(self, self._serve, settings=settings)
        self.endpoint = self._local.start()
        checkpoint.start()
        link.connect(self._load_tls_ca())
        persist = StateWriter(store, trust, board, probation)
        installer, stage, unstage = (
            Installer(steps(link=link, store=store, settings=settings, stop=self._stop,
                            board=board, persist=persist, announce=reporter.event,
                            **({} if steps is stage_steps else {"probation": probation})),
                      failpoints=True)
            for steps in (install_steps, stage_steps, unstage_steps))

        def reactivate(rollback: str) -> Installer:
            return Installer(reactivate_steps(store=store, settings=settings, board=board,
                                              persist=persist, announce=reporter.event,
                                              probation=probation, rollback=rollback))

        reconciler = Reconciler(trust, board, installer, reporter, persist, stage=stage,
                                unstage=unstage, reactivate=reactivate, probation=probation)
        self._loop = SyncLoop(
            settings=settings, store=store, link=link, trust=trust, board=board,
            reporter=reporter, reconciler=reconciler,
            persist=persist, enrollment=self._enrollment(), hardware=self._hardware,
            stop=self._stop, wake=self._wake,
        )
        self._loop.start()
        self._watch = WatchThread(settings=settings, link=link, trust=trust, wake=self._wake,
                                  stop=self._stop)
        self._watch.start()
        return self.endpoint

    def stop(self) -> None:
        """Stop syncing (cancelling any call in flight), then stop serving after the grace."""
        self._stop.set()
        self._wake.set()
        if self._link is not None:
            self._link.close()
        if self._loop is not None:
            self._loop.join()
        if self._watch is not None:
            self._watch.join(self.settings.shutdown_grace_seconds)
        if self._checkpoint is not None:
            self._checkpoint.join(self.settings.shutdown_grace_seconds)
        if self._local is not None:
            self._local.stop()
            self._local = None
            # What was counted since the last report survives the restart, sent next run.
            if self._reporter is not None:
                self._reporter.keep_unsent()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the sync thread ended (stop() or a fatal error); True if it did."""
        return self._loop is None or self._loop.join(timeout)

    def __enter__(self) -> Agent:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the local inference backend ---------------------------------------------------------

    def predict(self, model: str | None, inputs: dict[str, Any]) -> Prediction:
        return self.models.predict(model, inputs)

    def status(self) -> pb.AgentStatus:
        return status_message(self._board.snapshot(), self.metrics)

    # -- wiring helpers ----------------------------------------------------------------------

    def _load_trust_key(self) -> Ed25519PublicKey:
        """Raises ConfigurationError (see ``agent.trust_key.read_trust_key``)."""
        warn_about_legacy_key(self.store.data_dir)
        if self._trust_key_pem is not None:
            return load_public_key(self._trust_key_pem)
        return read_trust_key(locate(self._trust_key_path), self.store.data_dir)

    def _load_tls_ca(self) -> bytes | None:
        """The CA given now (kept for later runs), else the one kept; None: plaintext."""
        if self._tls_ca_pem is not None:
            if self.store.read_tls_ca() != self._tls_ca_pem:
                self.store.write_tls_ca(self._tls_ca_pem)
            return self._tls_ca_pem
        return self.store.read_tls_ca()

    def _enrollment(self) -> Enrollment | None:
        if not self._enroll_token:
            return None
        return Enrollment(self._enroll_token, self._name or socket.gethostname(), self._labels)

    def _hardware(self) -> pb.HardwareProfile:
        _, info = interpreter_factory(self.settings.interpreter_choice)
        return hardware_profile(self.store.data_dir, info, self._hardware_overrides)
