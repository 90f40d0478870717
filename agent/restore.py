"""Start-up: serve again what the data dir says was served, trusting nothing that does not verify
again against the configured trust key.

Invariants:
- The stored desired state is re-verified through the trust state (signature, type, device,
  every manifest); if it does not verify, nothing is held and nothing is served until the
  server sends a valid desired state, and the status says why.
- Each stored active model goes live again only after its manifest verified against the trust
  key and described it, and it passed the installer's ``restore_steps`` (length and sha256 of
  the file on disk, a fresh runner, its smoke test). One that does not is reported failed and
  not served; the next sync installs it again if it is still wanted.
- Runs before the sync thread starts and before the local endpoint serves.
"""

from __future__ import annotations

import logging

from agent.errors import AgentDataError
from agent.installer import InstallContext, Installer, restore_steps
from agent.reporter import Reporter
from agent.serving import LiveModel
from agent.settings import AgentSettings
from agent.status import StatusBoard
from agent.store import AgentStore
from agent.trust_state import TrustState

log = logging.getLogger(__name__)


def restore(store: AgentStore, trust: TrustState, board: StatusBoard, reporter: Reporter,
            settings: AgentSettings) -> None:
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
    board.restore_previous(stored.previous)
    checks = Installer(restore_steps(store=store, settings=settings))
    for active in stored.active:
        try:
            manifest = trust.manifest(active.signed_manifest, active.ref)
            ctx = checks.run(InstallContext(active.ref, manifest, active.signed_manifest))
        except AgentDataError as exc:
            # Nothing else would tell the person at the device why it serves nothing: the
            # server hears of it in the next status report, the log says it now.
            log.error("not serving %s: it could not be reloaded at start (%s); the next sync "
                      "downloads it again if it is still desired", active.ref, exc)
            reporter.progress(active.ref, "failed", f"could not reload at start: {exc}")
            continue
        assert ctx.runner is not None   # restore_steps end with a validated runner
        board.activate(LiveModel(active.ref, ctx.runner, active.signed_manifest),
                       "reloaded at start")
        log.info("serving %s again", active.ref)
