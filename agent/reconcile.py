"""Reconciling: make what the agent serves equal to the desired state the trust state holds,
and keep that on disk.

Invariants:
- Every wanted model that is not live in the wanted version goes through the installer; one
  whose install a step refused is not tried again while the same desired state is held (a new
  sequence clears the memory: the server may have fixed it).
- A model the desired state no longer lists leaves the live table and the status board in one
  step, and its artifact is kept as the previous one.
- ``StateWriter`` writes the accepted desired state, the live models and the previous sha256s
  (crash-safe) after every change of either, and prunes the artifacts nothing refers to; the
  artifacts of the desired, the live and the previous versions stay.
- Sync thread only.
"""

from __future__ import annotations

import logging

from agent.errors import AgentTransportError, IncompatibleVariantError, InstallStepError
from agent.installer import InstallContext, Installer
from agent.reporter import Reporter
from agent.status import StatusBoard
from agent.store import ActiveModel, AgentStore, StoredState
from agent.trust import DesiredEntry
from agent.trust_state import TrustState

log = logging.getLogger(__name__)


class StateWriter:
    """Writes what the agent holds to the data dir; call it after every change."""

    def __init__(self, store: AgentStore, trust: TrustState, board: StatusBoard) -> None:
        self._store, self._trust, self._board = store, trust, board

    def __call__(self) -> None:
        """Raises OSError when the data dir cannot be written."""
        view = self._board.snapshot()
        desired = self._trust.desired
        self._store.write_state(
            StoredState(
                desired_state=desired.signed if desired else None,
                active=tuple(ActiveModel(m.ref, m.signed_manifest) for m in view.live.values()),
                previous=dict(view.previous),
            )
        )
        keep = {m.ref.sha256 for m in view.live.values()} | set(view.previous.values())
        keep |= {e.sha256 for e in desired.entries} if desired else set()
        self._store.prune(keep)


class Reconciler:
    """Installs what the held desired state wants and unloads what it no longer lists."""

    def __init__(self, trust: TrustState, board: StatusBoard, installer: Installer,
                 reporter: Reporter, persist: StateWriter) -> None:
        self._trust = trust
        self._board = board
        self._installer = installer
        self._reporter = reporter
        self._persist = persist
        self._refused: set[str] = set()     # sha256s a step refused under ...
        self._refused_under = 0             # ... this desired-state sequence

    def reconcile(self) -> None:
        """One pass. Raises AgentTransportError (an install could not download: the sync loop
        backs off and the next pass tries again); refused installs are reported, not raised."""
        desired = self._trust.desired
        if desired is None:
            return
        if desired.sequence != self._refused_under:
            self._refused, self._refused_under = set(), desired.sequence
        for entry in desired.entries:
            live = self._board.snapshot().live.get(entry.model)
            if (live is None or live.ref != entry.ref) and entry.sha256 not in self._refused:
                self._install(entry)
        wanted = {e.model for e in desired.entries}
        unwanted = set(self._board.snapshot().live) - wanted
        for name in unwanted:
            removed = self._board.remove(name)
            if removed is not None:
                self._reporter.event(removed.ref, "removed", "no longer in the desired state")
                log.info("unloaded %s: no longer in the desired state", removed.ref)
        self._board.forget_unwanted(wanted)
        if unwanted:
            self._persist()

    def _install(self, entry: DesiredEntry) -> None:
        ref = entry.ref
        try:
            self._installer.run(InstallContext.of(entry, self._reporter.progress))
        except AgentTransportError as exc:
            self._board.set_install(ref, "downloading", f"interrupted, will retry: {exc}")
            raise
        except InstallStepError as exc:
            self._refused.add(entry.sha256)
            self._board.install_failed(ref, str(exc))
            # "incompatible": it runs here, but wrongly; the control plane learns which variant
            # this interpreter cannot be trusted with (the reason names it and the figures).
            state = "incompatible" if isinstance(exc.cause, IncompatibleVariantError) \
                else "failed"
            self._reporter.event(ref, state, str(exc))
            log.error("install of %s failed at %s: %s; still serving what was active", ref,
                      exc.step, exc.cause)
            return
        log.info("now serving %s", ref)
