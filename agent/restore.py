"""Start-up: serve again what the data dir says was served, trusting nothing that does not verify
again against the configured trust key.

Invariants:
- The stored desired state is re-verified through the trust state (signature, type, device,
  every manifest); if it does not verify, nothing is held and nothing is served until the
  server sends a valid desired state, and the status says why.
- Each stored active model goes live again only after its manifest verified against the trust
  key and described it, and it passed the installer's ``restore_steps`` (length and sha256 of
  the file on disk, a fresh runner, its smoke test). One that does not is reported failed (a
  file that fails re-verification is quarantined by the store) and the kept previous version of
  that model serves instead if it passes the same checks: the last verified model, so a device
  killed mid-update, or whose file rotted, still serves. The next sync installs what is wanted.
- What goes live again is reported ``active`` again: the server may never have heard it (a kill
  between writing the state and telling the server).
- A staged version (proven under a desired state's ``hold``) stays staged only if the stored
  desired state still lists its ref and its file still verifies; otherwise it is forgotten and
  the next sync stages it again. Nothing staged is served.
- Runs before the sync thread starts and before the local endpoint serves.
"""

from __future__ import annotations

import logging

from agent.errors import AgentDataError
from agent.installer import InstallContext, Installer, restore_steps
from agent.probation import Probation
from agent.reporter import Reporter
from agent.serving import LiveModel
from agent.settings import AgentSettings
from agent.status import StatusBoard
from agent.store import ActiveModel, AgentStore
from agent.trust_state import TrustState

log = logging.getLogger(__name__)


def restore(store: AgentStore, trust: TrustState, board: StatusBoard, reporter: Reporter,
            settings: AgentSettings, probation: Probation | None = None) -> None:
    """Hold the stored desired state again and serve the stored active models that re-verify.

    Raises nothing for bad stored data (it is logged, reported and not used); OSError when the
    data dir cannot be read at all.
    """
    try:
        stored = store.read_state()
        if stored.desired_state is not None:
            board.accepted(trust.restore(stored.desired_state).sequence)
    except AgentDataError as exc:
        message = (f"the stored desired state was refused ({exc}); serving nothing until the "
                   "control plane sends a valid one")
        log.error("%s", message)
        board.set_data_error(message)
        return
    board.restore_kept(stored.kept)
    board.restore_staged(s for s in stored.staged if _still_staged(s, trust, store))
    kept = {k.ref.model: k for k in stored.kept}
    checks = Installer(restore_steps(store=store, settings=settings))
    for active in stored.active:
        ctx = _reload(active, trust, checks, reporter)
        note = "reloaded at start"
        fallback = kept.get(active.ref.model)
        if ctx is None and fallback is not None:
            ctx = _reload(fallback, trust, checks, reporter)
            note = f"reloaded at start in place of {active.ref.version}, which did not verify"
        if ctx is None:
            continue
        assert ctx.runner is not None and ctx.budget is not None   # restore_steps validated it
        board.activate(LiveModel(ctx.ref, ctx.runner, ctx.signed_manifest), note)
        # Told again: a kill after the state file named it but before the server heard
        # "active" would otherwise leave the server waiting for an event that never comes.
        reporter.event(ctx.ref, "active", note)
        log.info("serving %s again (%s)", ctx.ref, note)
        watched = stored.probation.get(ctx.ref.model)
        if probation is not None and watched is not None and watched[0] == ctx.ref.sha256:
            probation.resume(ctx.ref, ctx.budget, watched[1])


def _still_staged(staged: ActiveModel, trust: TrustState, store: AgentStore) -> bool:
    """The held desired state still lists ``staged`` and its file verifies (a file that does
    not is quarantined by the store)."""
    entry = trust.desired.entry(staged.ref.model) if trust.desired is not None else None
    try:
        if entry is not None and entry.ref == staged.ref \
                and store.verified_artifact(entry.manifest) is not None:
            return True
    except AgentDataError as exc:
        log.warning("staged %s does not verify any more (%s): it is staged again", staged.ref,
                    exc)
        return False
    log.info("staged %s is no longer staged: the desired state does not list it or its file "
             "is gone", staged.ref)
    return False


def _reload(model: ActiveModel, trust: TrustState, checks: Installer,
            reporter: Reporter) -> InstallContext | None:
    """``model`` through the restore steps (a validated runner), or None (reported) when it
    does not re-verify."""
    try:
        manifest = trust.manifest(model.signed_manifest, model.ref)
        return checks.run(InstallContext(model.ref, manifest, model.signed_manifest))
    except AgentDataError as exc:
        # Nothing else would tell the person at the device why it serves nothing: the
        # server hears of it in the next status report, the log says it now.
        log.error("not serving %s: it could not be reloaded at start (%s); the next sync "
                  "downloads it again if it is still desired", model.ref, exc)
        reporter.progress(model.ref, "failed", f"could not reload at start: {exc}")
        return None
