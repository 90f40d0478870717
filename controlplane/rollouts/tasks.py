"""The rollout engine's tasks: ``rollouts.step`` after a commit that asked for it (creation,
resume, a device report), ``rollouts.tick`` on beat.

Both are idempotent and take the rollout's row lock, so any number of workers may run them.
Each rollout is stepped in its own transaction: one broken rollout cannot stall the others.
``rollouts.start`` is the previous release's name for a step, kept for messages still queued
during an upgrade.
"""

from __future__ import annotations

import logging

from controlplane.db import is_contention
from controlplane.errors import NotFoundError
from controlplane.jobs.app import app
from controlplane.jobs.base import PlaneTask
from controlplane.rollouts import services

log = logging.getLogger(__name__)


def _step(task: PlaneTask, rollout_id: str) -> None:
    plane = task.plane
    try:
        with plane.tx() as session:
            services.step(session, rollout_id, signer=plane.signer, settings=plane.settings,
                          now=plane.clock())
    except NotFoundError:   # a step sent for a rollout since deleted: nothing to do
        log.info("rollout %s: gone; nothing to step", rollout_id)
    except Exception as exc:
        if is_contention(exc):   # another worker held the row: routine, no traceback
            log.info("rollout %s: busy (%s); the next tick steps it", rollout_id,
                     type(exc).__name__)
        else:
            raise


@app.task(base=PlaneTask, bind=True, name=services.STEP_TASK)
def step(self: PlaneTask, rollout_id: str) -> None:
    _step(self, rollout_id)


@app.task(base=PlaneTask, bind=True, name="rollouts.start")
def start(self: PlaneTask, rollout_id: str) -> None:
    _step(self, rollout_id)


@app.task(base=PlaneTask, bind=True, name="rollouts.tick")
def tick(self: PlaneTask) -> None:
    plane = self.plane
    with plane.tx() as session:
        ids = services.open_rollout_ids(session)
    for rollout_id in ids:
        try:
            _step(self, rollout_id)
        except Exception:
            log.exception("rollout %s: step failed; will retry on the next tick", rollout_id)
