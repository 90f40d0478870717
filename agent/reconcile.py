"""Reconciling: make what the agent serves equal to the desired state the trust state holds,
and keep that on disk.

Invariants:
- Every wanted model that is not live in the wanted version goes through the installer; one
  whose install a step refused, or that probation rolled back, is not tried again while the
  same desired state is held (a new sequence clears the memory: the server may have fixed it).
  One refused for want of space is tried again every pass (space may be freed), reported once.
- A wanted version that is the kept previous one (the server rolled back) goes back live from
  disk through ``reactivate_steps``: nothing is downloaded.
- An entry the desired state holds (``hold``) goes through ``stage_steps``: downloaded and
  proven, staged, never served; what served before serves on (a model not running stays
  inactive). It is staged once and reported ``staged`` once per desired-state sequence (again
  after a restart); later passes and sequences that hold it still do not run its steps again.
  The same ref wanted without ``hold`` goes live from its staged file through
  ``unstage_steps``: nothing is downloaded (a staged file that is gone or does not verify any
  more is forgotten and the ref installed as any other). A staged version the desired state no
  longer wants is forgotten (its file pruned).
- A model on probation that broke a limit is swapped back to the kept previous version
  (``watch``) and reported ``rolled_back`` with the finding; without a kept version it keeps
  serving and is reported ``failed``.
- A model the desired state no longer lists leaves the live table and the status board in one
  step, and its artifact is kept as the previous one.
- ``StateWriter`` writes the accepted desired state, the live models and the kept previous ones
  (crash-safe) after every change of either, and prunes the artifacts nothing refers to; the
  artifacts of the desired, the live, the previous and the staged versions stay, and the golden
  samples of the staged ones (their proof is run again when they go live).
- Sync thread only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent.errors import (
    AgentDataError,
    AgentTransportError,
    IncompatibleVariantError,
    InstallStepError,
    InsufficientStorageError,
)
from agent.installer import InstallContext, Installer
from agent.probation import Breach, Probation
from agent.reporter import Reporter
from agent.status import STAGED_MESSAGE, StatusBoard
from agent.store import ActiveModel, AgentStore, StoredState
from agent.trust import DesiredEntry, DesiredState
from agent.trust_state import TrustState

log = logging.getLogger(__name__)


class StateWriter:
    """Writes what the agent holds to the data dir; call it after every change."""

    def __init__(self, store: AgentStore, trust: TrustState, board: StatusBoard,
                 probation: Probation | None = None) -> None:
        self._store, self._trust, self._board = store, trust, board
        self._probation = probation

    def __call__(self) -> None:
        """Raises OSError when the data dir cannot be written."""
        view = self._board.snapshot()
        desired = self._trust.desired
        self._store.write_state(
            StoredState(
                desired_state=desired.signed if desired else None,
                active=tuple(ActiveModel(m.ref, m.signed_manifest) for m in view.live.values()),
                kept=tuple(view.kept.values()),
                staged=tuple(view.staged.values()),
                probation=self._probation.deadlines() if self._probation else {},
            )
        )
        keep = {m.ref.sha256 for m in view.live.values()} | set(view.previous.values())
        keep |= {s.ref.sha256 for s in view.staged.values()}
        if desired is not None:
            keep |= {e.sha256 for e in desired.entries}
            staged = {s.ref for s in view.staged.values()}
            keep |= {e.manifest["golden"]["sha256"] for e in desired.entries
                     if e.ref in staged and e.manifest.get("golden") is not None}
        self._store.prune(keep)


#: Makes the installer that puts a kept version back live; its argument is the message of a
#: local rollback ("" for the server's).
Reactivator = Callable[[str], Installer]


class Reconciler:
    """Installs what the held desired state wants, unloads what it no longer lists, and rolls
    back what fails its probation."""

    def __init__(self, trust: TrustState, board: StatusBoard, installer: Installer,
                 reporter: Reporter, persist: StateWriter, *, stage: Installer,
                 unstage: Installer, reactivate: Reactivator | None = None,
                 probation: Probation | None = None) -> None:
        """``installer`` installs a wanted model, ``stage`` one the desired state holds,
        ``unstage`` a staged one whose hold was lifted."""
        self._trust = trust
        self._board = board
        self._installer = installer
        self._stage = stage
        self._unstage = unstage
        self._reactivate = reactivate
        self._probation = probation
        self._reporter = reporter
        self._persist = persist
        self._refused: set[str] = set()     # sha256s a step refused under ...
        self._refused_under = 0             # ... this desired-state sequence
        self._short_of_space: set[str] = set()   # ... and those told insufficient_storage
        self._told_staged: set[str] = set()      # ... and those told staged

    def reconcile(self) -> None:
        """One pass. Raises AgentTransportError (an install could not download: the sync loop
        backs off and the next pass tries again); refused installs are reported, not raised."""
        desired = self._trust.desired
        if desired is None:
            return
        if desired.sequence != self._refused_under:
            self._refused, self._refused_under = set(), desired.sequence
            self._short_of_space, self._told_staged = set(), set()
        self._forget_stale_staged(desired)
        for entry in desired.entries:
            live = self._board.snapshot().live.get(entry.model)
            if (live is None or live.ref != entry.ref) and entry.sha256 not in self._refused:
                if entry.hold:
                    self._hold(entry)
                else:
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

    def watch(self) -> None:
        """Judge the models on probation; roll back each that broke a limit."""
        if self._probation is None:
            return
        for breach in self._probation.check():
            self._roll_back(breach)

    @property
    def watching(self) -> bool:
        """A model is on probation (the sync loop then checks it every
        ``probation_check_seconds``)."""
        return self._probation is not None and self._probation.watching

    def _forget_stale_staged(self, desired: DesiredState) -> None:
        """Forget each staged version the desired state no longer lists (another version, or
        the model gone); persisted, so its file is pruned."""
        stale = [name for name, staged in self._board.snapshot().staged.items()
                 if (entry := desired.entry(name)) is None or entry.ref != staged.ref]
        for name in stale:
            forgotten = self._board.unstage(name)
            log.info("forgot staged %s: the desired state no longer wants it", forgotten)
        if stale:
            self._persist()

    def _hold(self, entry: DesiredEntry) -> None:
        """Stage ``entry`` (held by the desired state) unless it is staged already; tell the
        server once per desired state."""
        ref = entry.ref
        staged = self._board.snapshot().staged.get(entry.model)
        if staged is not None and staged.ref == ref:
            if entry.sha256 not in self._told_staged:
                self._told_staged.add(entry.sha256)
                self._reporter.event(ref, "staged", STAGED_MESSAGE)
            return
        if not self._run(entry, self._stage):
            return
        self._told_staged.add(entry.sha256)   # Stage told it
        live = self._board.snapshot().live.get(entry.model)
        log.info("staged %s: held by the desired state; %s", ref,
                 f"still serving {live.ref}" if live else "not serving it")

    def _install(self, entry: DesiredEntry) -> None:
        ref = entry.ref
        view = self._board.snapshot()
        kept, staged = view.kept.get(entry.model), view.staged.get(entry.model)
        if staged is not None and staged.ref == ref:
            if self._run(entry, self._unstage, staged=True):
                log.info("now serving %s (staged earlier, from disk)", ref)
                return
            if entry.model in self._board.snapshot().staged:
                return   # refused by a step after its file checked out (reported)
        from_disk = self._reactivate is not None and kept is not None and kept.ref == ref
        installer = self._reactivate("") if from_disk and self._reactivate else self._installer
        if self._run(entry, installer):
            log.info("now serving %s%s", ref, " (the kept previous version, from disk)"
                     if from_disk else "")

    def _run(self, entry: DesiredEntry, installer: Installer, *, staged: bool = False) -> bool:
        """Run ``entry`` through ``installer``; True when every step passed, False when one
        refused it (reported). ``staged``: from its staged file, which, gone or no longer
        verifying, is forgotten instead (nothing reported: the caller installs the ref
        afresh). Raises AgentTransportError."""
        ref = entry.ref
        try:
            installer.run(InstallContext.of(entry, self._reporter.progress))
        except AgentTransportError as exc:
            self._board.set_install(ref, "downloading", f"interrupted, will retry: {exc}")
            raise
        except InstallStepError as exc:
            if staged and exc.step == "verify":
                self._board.unstage(entry.model)
                self._persist()
                log.warning("staged %s is gone from disk (%s): downloading it again", ref,
                            exc.cause)
                return False
            self._refused_install(entry, exc)
            return False
        self._short_of_space.discard(entry.sha256)
        return True

    def _refused_install(self, entry: DesiredEntry, exc: InstallStepError) -> None:
        ref = entry.ref
        self._board.install_failed(ref, str(exc))
        if isinstance(exc.cause, InsufficientStorageError):
            if entry.sha256 not in self._short_of_space:   # once, not every poll
                self._short_of_space.add(entry.sha256)
                self._reporter.event(ref, "insufficient_storage", str(exc), exc.finding)
                log.error("cannot install %s: %s; still serving what was active", ref,
                          exc.cause)
            return
        self._refused.add(entry.sha256)
        # "incompatible": it runs here, but wrongly; the control plane learns which variant
        # this interpreter cannot be trusted with (the finding names it and the figures).
        state = "incompatible" if isinstance(exc.cause, IncompatibleVariantError) else "failed"
        self._reporter.event(ref, state, str(exc), exc.finding)
        log.error("install of %s failed at %s: %s; still serving what was active", ref,
                  exc.step, exc.cause)

    def _roll_back(self, breach: Breach) -> None:
        ref = breach.ref
        self._refused.add(ref.sha256)   # not installed again under this desired state
        kept = self._board.snapshot().kept.get(ref.model)
        if kept is None or self._reactivate is None:
            message = f"{breach.message}; no previous version to roll back to, still serving it"
            self._board.install_failed(ref, message)
            self._reporter.event(ref, "failed", message, breach.finding)
            log.error("%s failed probation: %s", ref, message)
            return
        note = f"rolled back from {ref.version} ({ref.variant}): {breach.message}"
        try:
            manifest = self._trust.manifest(kept.signed_manifest, kept.ref)
            self._reactivate(note).run(InstallContext(kept.ref, manifest, kept.signed_manifest,
                                                      self._reporter.progress))
        except AgentDataError as exc:
            message = f"{breach.message}; the rollback to {kept.ref.version} failed ({exc}), " \
                      "still serving it"
            self._board.install_failed(ref, message)
            self._reporter.event(ref, "failed", message, breach.finding)
            log.error("%s failed probation: %s", ref, message)
            return
        self._reporter.event(ref, "rolled_back", breach.message, breach.finding)
        log.warning("%s failed probation (%s): serving %s again", ref, breach.message, kept.ref)
