"""The rollout engine: ``rollouts.start`` when a rollout is created, ``rollouts.tick`` on beat.

Both are idempotent and take the rollout's row lock, so any number of workers may run them.
Each rollout is handled in its own transaction: one broken rollout cannot stall the others.
"""

from __future__ import annotations

import logging

from controlplane.db import is_contention
from controlplane.jobs.app import app
from controlplane.jobs.base import PlaneTask
from controlplane.rollouts import services

log = logging.getLogger(__name__)


@app.task(base=PlaneTask, bind=True, name=services.START_TASK)
def start(self: PlaneTask, rollout_id: str) -> None:
    plane = self.plane
    with plane.tx() as session:
        services.start(
            session, rollout_id, signer=plane.signer, settings=plane.settings, now=plane.clock()
        )


@app.task(base=PlaneTask, bind=True, name="rollouts.tick")
def tick(self: PlaneTask) -> None:
    plane = self.plane
    with plane.tx() as session:
        ids = services.active_rollout_ids(session)
    for rollout_id in ids:
        try:
            with plane.tx() as session:
                # a pending rollout whose start message was lost is started here
                services.start(
                    session,
                    rollout_id,
                    signer=plane.signer,
                    settings=plane.settings,
                    now=plane.clock(),
                )
                services.progress(session, rollout_id, now=plane.clock())
        except Exception as exc:
            if is_contention(exc):   # another worker held the row: routine, no traceback
                log.info("rollout %s: busy (%s); the next tick steps it", rollout_id,
                         type(exc).__name__)
            else:
                log.exception("rollout %s: tick failed; will retry on the next tick", rollout_id)
