"""The status board: everything ``edgefleet-agent status`` shows, kept consistent.

The board holds, under one lock, the install state of each model name, the previous version of
each (ref and signed manifest, kept on disk so it can serve again without a download), the
staged version of each (downloaded and proven under a desired state's ``hold``, on disk, not
serving, activated without a download once the hold is lifted), the held desired-state
sequence, the device id and server, the last sync and the last error; and it is the only way the
live model table (``agent.serving.ModelTable``) changes, so that a model going live or away and
its install state change in one step.

Invariants:
- Writers: start-up (restoring what the data dir holds, before the sync thread runs), then the
  sync thread only. Readers: any thread (the local endpoint's request threads).
- ``snapshot()`` is taken under the lock that every write holds, live table included: a reader
  never sees a model live without its install state, an install state "active" for a model
  that is not live, or a model removed from the table but still listed.
- A staged version is never the live one: activating it ends its staging in the same step.
- Request threads that only predict never take this lock: they read the table's copy-on-write
  snapshot (``ModelTable.resolve``), so a status reader never delays an inference.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from agent.metrics import MetricsRecorder
from agent.refs import ModelRef
from agent.serving import LiveModel, ModelTable
from agent.store import ActiveModel
from protos import edgefleet_pb2 as pb

#: What a staged version is waiting for.
STAGED_MESSAGE = "downloaded and proven; held until the desired state lifts its hold"


@dataclass(frozen=True)
class InstallStatus:
    """The last install step for a model name, as ``status`` shows and the server hears."""

    ref: ModelRef
    state: str          # downloading | verified | staged | active | failed (events also: removed)
    message: str


@dataclass(frozen=True)
class StatusSnapshot:
    """One consistent view of the board; later writes do not change it."""

    device_id: str = ""
    server: str = ""
    held_sequence: int = 0
    live: Mapping[str, LiveModel] = field(default_factory=dict)
    install: Mapping[str, InstallStatus] = field(default_factory=dict)
    kept: Mapping[str, ActiveModel] = field(default_factory=dict)   # the previous, per model
    staged: Mapping[str, ActiveModel] = field(default_factory=dict)  # proven, held, per model
    last_sync: datetime | None = None
    last_error: str = ""

    @property
    def previous(self) -> Mapping[str, str]:
        """The previous version's sha256 per model name."""
        return {name: kept.ref.sha256 for name, kept in self.kept.items()}


class StatusBoard:
    """What the agent is doing, written by the sync thread, read by anyone."""

    def __init__(self, models: ModelTable) -> None:
        self._models = models
        self._lock = threading.Lock()
        self._device_id = ""
        self._server = ""
        self._held_sequence = 0
        self._install: dict[str, InstallStatus] = {}
        self._kept: dict[str, ActiveModel] = {}
        self._staged: dict[str, ActiveModel] = {}
        self._last_sync: datetime | None = None
        # Two kinds of trouble, shown as one last_error: a transport error lasts until the next
        # successful sync; a refused document or a failed install until a new desired state.
        self._transport_error = ""
        self._data_error = ""

    # -- reads -------------------------------------------------------------------------------

    def snapshot(self) -> StatusSnapshot:
        with self._lock:
            return StatusSnapshot(
                device_id=self._device_id,
                server=self._server,
                held_sequence=self._held_sequence,
                # The table publishes a new dict on every change: this one stays as it is.
                live=MappingProxyType(self._models.snapshot()),
                install=MappingProxyType(dict(self._install)),
                kept=MappingProxyType(dict(self._kept)),
                staged=MappingProxyType(dict(self._staged)),
                last_sync=self._last_sync,
                last_error=self._transport_error or self._data_error,
            )

    # -- writes: identity and sync -----------------------------------------------------------

    def set_server(self, server: str) -> None:
        with self._lock:
            self._server = server

    def set_device(self, device_id: str) -> None:
        with self._lock:
            self._device_id = device_id

    def accepted(self, sequence: int) -> None:
        """A desired state with ``sequence`` is held now; its predecessor's troubles are over."""
        with self._lock:
            self._held_sequence = sequence
            self._data_error = ""

    def synced(self, at: datetime) -> None:
        """A sync succeeded at ``at``; the server is reachable again."""
        with self._lock:
            self._last_sync = at
            self._transport_error = ""

    def set_transport_error(self, message: str) -> None:
        with self._lock:
            self._transport_error = message

    def set_data_error(self, message: str) -> None:
        with self._lock:
            self._data_error = message

    # -- writes: models ----------------------------------------------------------------------

    def set_install(self, ref: ModelRef, state: str, message: str) -> None:
        with self._lock:
            self._install[ref.model] = InstallStatus(ref, state, message)

    def install_failed(self, ref: ModelRef, message: str) -> None:
        """The install of ``ref`` failed: its state and the last error say so, together."""
        with self._lock:
            self._install[ref.model] = InstallStatus(ref, "failed", message)
            self._data_error = f"{ref}: {message}"

    def restore_kept(self, kept: Iterable[ActiveModel]) -> None:
        """The previous version per model, as the data dir kept them (start-up only)."""
        with self._lock:
            self._kept = {k.ref.model: k for k in kept}

    def restore_staged(self, staged: Iterable[ActiveModel]) -> None:
        """The staged version per model, as the data dir kept them (start-up only)."""
        with self._lock:
            self._staged = {s.ref.model: s for s in staged}

    def stage(self, staged: ActiveModel, message: str) -> None:
        """``staged`` is downloaded and proven but held: it is the model's staged version and
        its install state says so, in one step; what serves is unchanged."""
        with self._lock:
            self._staged[staged.ref.model] = staged
            self._install[staged.ref.model] = InstallStatus(staged.ref, "staged", message)

    def unstage(self, name: str) -> ActiveModel | None:
        """Forget the staged version of ``name`` (the desired state wants another, or none);
        returns it. An install state about it goes too."""
        with self._lock:
            staged = self._staged.pop(name, None)
            install = self._install.get(name)
            if staged is not None and install is not None and install.ref == staged.ref \
                    and install.state == "staged":
                del self._install[name]
        return staged

    def activate(self, live: LiveModel, message: str, *, keep_replaced: bool = True,
                 state: str = "active") -> LiveModel | None:
        """Make ``live`` answer for its model name and show it ``state`` (active), in one step;
        the model it replaced (returned) becomes the previous one, unless ``keep_replaced`` is
        False (a rollback: what it replaced is not worth going back to)."""
        name, sha256 = live.ref.model, live.ref.sha256
        with self._lock:
            replaced = self._models.activate(live)
            if keep_replaced and replaced is not None and replaced.ref.sha256 != sha256:
                self._kept[name] = ActiveModel(replaced.ref, replaced.signed_manifest)
            elif name in self._kept and (self._kept[name].ref.sha256 == sha256
                                         or not keep_replaced):
                # Back on the version that was kept as previous (removed then wanted again, or
                # rolled back to): it is not its own fallback.
                del self._kept[name]
            if name in self._staged and self._staged[name].ref == live.ref:
                del self._staged[name]   # serving now: no longer waiting
            self._install[name] = InstallStatus(live.ref, state, message)
        return replaced

    def remove(self, name: str) -> LiveModel | None:
        """Stop serving ``name`` and drop it from the board, in one step; returns what was live
        (kept as the previous one, for the artifact to stay on disk)."""
        with self._lock:
            removed = self._models.remove(name)
            if removed is not None:
                self._kept[name] = ActiveModel(removed.ref, removed.signed_manifest)
            self._install.pop(name, None)
        return removed

    def forget_unwanted(self, wanted: set[str]) -> None:
        """Drop the install state of names the desired state no longer lists (a model whose
        install failed and that is not live)."""
        with self._lock:
            for name in set(self._install) - wanted:
                del self._install[name]


def status_message(snapshot: StatusSnapshot, metrics: MetricsRecorder) -> pb.AgentStatus:
    """The ``AgentStatus`` a snapshot stands for, with each model's inference totals: a row per
    model name, and one more for a staged version beside the live one."""
    models = []
    for name in sorted(set(snapshot.live) | set(snapshot.install) | set(snapshot.staged)):
        for ref, state, message in _model_rows(snapshot, name):
            stats = metrics.stats(ref)
            models.append(
                pb.AgentModelStatus(
                    model=ref.model,
                    version=ref.version,
                    variant=ref.variant,
                    sha256=ref.sha256,
                    state=state,
                    message=message,
                    inferences=stats.inferences,
                    errors=stats.errors,
                    latency_p50_ms=stats.latency_p50_ms,
                    latency_p95_ms=stats.latency_p95_ms,
                    previous_sha256=snapshot.previous.get(name, ""),
                )
            )
    status = pb.AgentStatus(
        device_id=snapshot.device_id,
        server=snapshot.server,
        desired_sequence=snapshot.held_sequence,
        models=models,
        last_error=snapshot.last_error,
    )
    if snapshot.last_sync is not None:
        status.last_sync.FromDatetime(snapshot.last_sync)
    return status


def _model_rows(snapshot: StatusSnapshot, name: str) -> list[tuple[ModelRef, str, str]]:
    """What ``status`` shows for one model name: its live (or installing) version, and its
    staged version when that is another."""
    live, install, staged = (snapshot.live.get(name), snapshot.install.get(name),
                             snapshot.staged.get(name))
    rows = [_model_state(live, install)] if live is not None or install is not None else []
    if staged is not None and all(ref != staged.ref for ref, _, _ in rows):
        message = install.message if install is not None and install.ref == staged.ref else ""
        rows.append((staged.ref, "staged", message or STAGED_MESSAGE))
    return rows


def _model_state(
    live: LiveModel | None, install: InstallStatus | None
) -> tuple[ModelRef, str, str]:
    """The live version first, news about another."""
    if live is None:
        assert install is not None
        return install.ref, install.state, install.message
    if install is None or install.ref == live.ref:
        return live.ref, "active", install.message if install else ""
    note = f"{install.ref.version} ({install.ref.variant}) {install.state}"
    return live.ref, "active", f"{note}: {install.message}" if install.message else note
