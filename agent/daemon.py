"""The agent daemon: enroll once, then keep the device's models equal to its desired state.

``Agent.start()`` restores what the data dir holds (re-verifying the stored desired state, every
active manifest and artifact), serves it on the local endpoint at once, and starts one sync
thread that owns every call to the control plane:

    Sync (jittered poll; backoff when unreachable)
      -> new desired state? verify it (agent.trust) or report it refused and keep serving
      -> each wanted model not yet active: download -> verify -> load -> validate -> swap
      -> models no longer wanted: unload (their artifact is kept as the previous one)
      -> ReportStatus events, ReportMetrics windows

Invariants:
- Nothing reaches the live table unless the trust core accepted its desired state and its
  artifact's length and sha256 matched the signed manifest, and a fresh runner validated it.
- A failure of one model (bad bytes, load or validation failure) is reported and leaves the
  version that was serving in place; a transport failure is retried with backoff.
- State is persisted (crash-safe) after every change of the accepted desired state or of the
  active set, and the artifacts of the active and previous versions stay on disk.
- Only the sync thread mutates the install state; request threads only read snapshots.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.backoff import Backoff, jittered
from agent.errors import (
    AgentDataError,
    AgentError,
    AgentTransportError,
    ConfigurationError,
    EnrollmentRefusedError,
    InstallStepError,
)
from agent.hardware import hardware_profile
from agent.installer import InstallContext, Installer, install_steps, restore_steps
from agent.link import ServerLink
from agent.metrics import MetricsRecorder
from agent.reporter import Reporter
from agent.runtime import interpreter_factory
from agent.server import LocalInferenceServer
from agent.serving import LiveModel, ModelTable, Prediction
from agent.settings import AgentSettings
from agent.status import StatusBoard, status_message
from agent.store import ActiveModel, AgentStore, Credential, StoredState
from agent.trust import DesiredEntry, load_public_key
from agent.trust_state import TrustState
from protos import edgefleet_pb2 as pb

log = logging.getLogger(__name__)
Response = TypeVar("Response")


class Agent:
    def __init__(
        self,
        data_dir: Path | str,
        *,
        server: str | None = None,
        enroll_token: str | None = None,
        trust_key_pem: bytes | None = None,
        tls_ca_pem: bytes | None = None,
        labels: dict[str, str] | None = None,
        name: str | None = None,
        serve: str | None = None,
        hardware_overrides: dict[str, Any] | None = None,
        settings: AgentSettings | None = None,
    ) -> None:
        self.settings = settings or AgentSettings()
        self.store = AgentStore(data_dir)
        self.metrics = MetricsRecorder(self.settings)
        self.models = ModelTable(self.metrics)
        self._board = StatusBoard(self.models)
        self.endpoint: str | None = None
        #: Set when the sync thread stopped for good (enrollment refused).
        self.fatal_error: AgentError | None = None

        self._server_arg = server
        self._enroll_token = enroll_token
        self._trust_key_pem = trust_key_pem
        self._tls_ca_pem = tls_ca_pem
        self._labels = dict(labels or {})
        self._name = name
        self._serve = serve or f"unix://{self.store.socket_path}"
        self._hardware_overrides = hardware_overrides

        self._stop = threading.Event()
        self._trust: TrustState | None = None
        self._credential: Credential | None = None
        self._server: str = ""
        self._link: ServerLink | None = None
        self._reporter: Reporter | None = None
        self._installer: Installer | None = None
        self._local: LocalInferenceServer | None = None
        self._thread: threading.Thread | None = None

        self._failed: set[str] = set()      # sha256s refused for this desired state
        self._refused_fingerprint: str | None = None
        self._server_poll_seconds: float | None = None
        self._hardware_sent = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Restore, serve locally and start syncing; returns the local endpoint.

        Raises ConfigurationError (no trust key, no server, no credential and no enrollment
        token, socket in use, no interpreter installed).
        """
        self.store.ensure()
        self._trust = TrustState(self._load_trust_key())
        self._credential = self.store.read_credential()
        if self._credential is not None:
            self._trust.bind(self._credential.device_id)
        self._server = self._server_arg or (self._credential.server if self._credential else "")
        self._board.set_server(self._server)
        if self._credential is not None:
            self._board.set_device(self._credential.device_id)
        if not self._server:
            raise ConfigurationError("no control plane address: pass --server or set "
                                     "EDGEFLEET_SERVER")
        if self._credential is None and not self._enroll_token:
            raise ConfigurationError(
                f"{self.store.data_dir} holds no device credential: the first run needs "
                "--enroll-token (create one with `edgefleet enroll-token create`)"
            )
        interpreter_factory(self.settings.interpreter_choice)   # fail now if none installed
        self._link = ServerLink(self._server, self.settings, self.store, self._credential)
        self._reporter = Reporter(self._link, self.metrics, self._board, self.store,
                                  self.settings)
        if self._credential is not None:
            self._restore()
            self._reporter.restore_windows()
        self._local = LocalInferenceServer(self, self._serve, settings=self.settings)
        self.endpoint = self._local.start()
        self._link.connect(self._load_tls_ca())
        self._installer = Installer(install_steps(
            link=self._link, store=self.store, settings=self.settings, stop=self._stop,
            board=self._board, persist=self._persist, announce=self._reporter.event))
        self._thread = threading.Thread(target=self._run, name="agent-sync", daemon=True)
        self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        """Stop syncing (cancelling any call in flight), then stop serving after the grace."""
        self._stop.set()
        if self._link is not None:
            self._link.close()
        if self._thread is not None:
            self._thread.join()
        if self._local is not None:
            self._local.stop()
            self._local = None
            # What was counted since the last report survives the restart, sent next run.
            if self._reporter is not None:
                self._reporter.keep_unsent()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the sync thread ended (stop() or a fatal error); True if it did."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

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

    # -- start-up ----------------------------------------------------------------------------

    def _load_trust_key(self) -> Ed25519PublicKey:
        stored = self.store.read_trust_key()
        if self._trust_key_pem is not None:
            key = load_public_key(self._trust_key_pem)
            if stored != self._trust_key_pem:
                if stored is not None:
                    log.warning("replacing the stored trust key with the one given")
                self.store.write_trust_key(self._trust_key_pem)
            return key
        if stored is None:
            raise ConfigurationError(
                "no trust key: the first run needs --trust-key FILE (the control plane's "
                "DATA_DIR/signing-key.pub)"
            )
        return load_public_key(stored)

    def _load_tls_ca(self) -> bytes | None:
        """The CA given now (kept for later runs), else the one kept; None: plaintext."""
        if self._tls_ca_pem is not None:
            if self.store.read_tls_ca() != self._tls_ca_pem:
                self.store.write_tls_ca(self._tls_ca_pem)
            return self._tls_ca_pem
        return self.store.read_tls_ca()

    def _restore(self) -> None:
        """Reload what the data dir says was active, trusting nothing that does not re-verify."""
        assert self._trust is not None
        try:
            stored = self.store.read_state()
            if stored.desired_state is not None:
                self._board.accepted(self._trust.restore(stored.desired_state).sequence)
        except AgentDataError as exc:
            log.error("stored state does not verify (%s); starting with no model", exc)
            return
        self._board.restore_previous(stored.previous)
        checks = Installer(restore_steps(store=self.store, settings=self.settings))
        for active in stored.active:
            try:
                manifest = self._trust.manifest(active.signed_manifest, active.ref)
                ctx = checks.run(InstallContext(active.ref, manifest, active.signed_manifest))
            except AgentDataError as exc:
                # Nothing else would tell the person at the device why it serves nothing: the
                # server hears of it in the next status report, the log says it now.
                log.error("not serving %s: it could not be reloaded at start (%s); the next "
                          "sync downloads it again if it is still desired", active.ref, exc)
                self._reporter_().progress(active.ref, "failed",
                                           f"could not reload at start: {exc}")
                continue
            runner = ctx.runner
            assert runner is not None
            self._board.activate(LiveModel(active.ref, runner, active.signed_manifest),
                                "reloaded at start")
            log.info("serving %s again", active.ref)

    # -- the sync thread ---------------------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff(self.settings.backoff_min_seconds, self.settings.backoff_max_seconds,
                          self.settings.sync_jitter)
        while not self._stop.is_set():
            try:
                if self._credential is None:
                    self._enroll()
                self._sync_once()
                self._reporter_().flush()
                backoff.reset()
                delay = jittered(self._poll_seconds(), self.settings.sync_jitter)
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
                if exc.code == "UNAVAILABLE" and self._link_().plaintext:
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

    def _idle(self, seconds: float) -> None:
        """Wait ``seconds`` (or until stopped), closing and reporting metric windows meanwhile."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self._stop.wait(min(remaining, self.settings.metrics_window_seconds / 2)):
                return
            self._reporter_().tick()

    def _poll_seconds(self) -> float:
        return (self.settings.poll_interval_seconds or self._server_poll_seconds
                or self.settings.default_poll_seconds)

    def _enroll(self) -> None:
        assert self._enroll_token
        request = pb.EnrollRequest(
            name=self._name or socket.gethostname(),
            hardware=self._hardware(),
            labels=self._labels,
            enrollment_key=self.store.enrollment_key(),
        )
        self._credential = self._link_().enroll(request, self._enroll_token)
        self.store.write_credential(self._credential)
        self._trust_state().bind(self._credential.device_id)
        self._board.set_device(self._credential.device_id)
        log.info("enrolled as device %s", self._credential.device_id)

    def _sync_once(self) -> None:
        request = pb.SyncRequest(
            known_sequence=self._trust_state().sequence,
            active=[live.ref.to_proto() for live in self.models.snapshot().values()],
        )
        if not self._hardware_sent:
            request.hardware.CopyFrom(self._hardware())
        response = self._link_().call("sync", "Sync", request)
        self._hardware_sent = True
        self._board.synced(datetime.now(UTC))
        self._server_poll_seconds = response.poll_interval_seconds or None
        if response.HasField("desired_state"):
            self._accept(response.desired_state)
        self._reconcile()

    def _accept(self, signed: pb.SignedDocument) -> None:
        try:
            desired = self._trust_state().accept(signed, datetime.now(UTC))
        except AgentDataError as exc:
            fingerprint = hashlib.sha256(signed.payload + signed.signature).hexdigest()
            if fingerprint != self._refused_fingerprint:   # report a refusal once, not every poll
                self._refused_fingerprint = fingerprint
                message = f"desired state refused: {exc}"
                log.warning("%s; still serving what was active", message)
                self._board.set_data_error(message)
                self._reporter_().event(None, "failed", message)
            return
        if desired is None:
            return
        log.info("accepted desired state %d (%s)", desired.sequence,
                 ", ".join(str(e.ref) for e in desired.entries) or "no model")
        self._failed.clear()
        self._board.accepted(desired.sequence)
        self._persist()

    def _reconcile(self) -> None:
        """Install what the accepted desired state wants and unload what it no longer lists."""
        desired = self._trust_state().desired
        if desired is None:
            return
        for entry in desired.entries:
            live = self.models.snapshot().get(entry.model)
            if (live is None or live.ref != entry.ref) and entry.sha256 not in self._failed:
                self._install_entry(entry)
        wanted = {e.model for e in desired.entries}
        unwanted = set(self.models.snapshot()) - wanted
        for name in unwanted:
            removed = self._board.remove(name)
            if removed is not None:
                self._reporter_().event(removed.ref, "removed", "no longer in the desired state")
                log.info("unloaded %s: no longer in the desired state", removed.ref)
        self._board.forget_unwanted(wanted)
        if unwanted:
            self._persist()

    def _install_entry(self, entry: DesiredEntry) -> None:
        """Run one entry through the installer's steps.

        A refused step is reported and remembered (not retried for this desired state);
        AgentTransportError propagates so the loop backs off and tries again.
        """
        ref = entry.ref
        try:
            self._installer_().run(InstallContext.of(entry, self._reporter_().progress))
        except AgentTransportError as exc:
            self._board.set_install(ref, "downloading", f"interrupted, will retry: {exc}")
            raise
        except InstallStepError as exc:
            self._failed.add(entry.sha256)
            self._board.install_failed(ref, str(exc))
            self._reporter_().event(ref, "failed", str(exc))
            log.error("install of %s failed at %s: %s; still serving what was active", ref,
                      exc.step, exc.cause)
            return
        log.info("now serving %s", ref)

    def _persist(self) -> None:
        board = self._board.snapshot()
        live = board.live
        desired = self._trust_state().desired
        self.store.write_state(
            StoredState(
                desired_state=desired.signed if desired else None,
                active=tuple(ActiveModel(m.ref, m.signed_manifest) for m in live.values()),
                previous=dict(board.previous),
            )
        )
        keep = {m.ref.sha256 for m in live.values()} | set(board.previous.values())
        keep |= {e.sha256 for e in desired.entries} if desired else set()
        self.store.prune(keep)

    # -- helpers -----------------------------------------------------------------------------

    def _trust_state(self) -> TrustState:
        assert self._trust is not None
        return self._trust

    def _link_(self) -> ServerLink:
        assert self._link is not None
        return self._link

    def _installer_(self) -> Installer:
        assert self._installer is not None
        return self._installer

    def _reporter_(self) -> Reporter:
        assert self._reporter is not None
        return self._reporter

    def _hardware(self) -> pb.HardwareProfile:
        _, info = interpreter_factory(self.settings.interpreter_choice)
        return hardware_profile(self.store.data_dir, info, self._hardware_overrides)
