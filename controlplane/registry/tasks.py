"""Registry background work: the sweep that keeps no version pending forever.

(Building, measuring and signing variants is the optimize pipeline's task, ``optimize.tasks``.)
"""

from __future__ import annotations

import datetime as dt
import logging

from controlplane.jobs.app import app
from controlplane.jobs.base import PlaneTask
from controlplane.jobs.outbox import enqueue_after_commit
from controlplane.registry import push, services

log = logging.getLogger(__name__)


@app.task(base=PlaneTask, bind=True, name="registry.sweep_pending")
def sweep_pending(self: PlaneTask) -> None:
    """Re-send the optimize pipeline's task for versions pending longer than
    ``measure_resend_seconds``: a message lost with an in-memory broker at a restart, or a task
    that gave up retrying, must not leave a version pending forever (the pipeline is
    idempotent). Also deletes upload temp files a killed server left (untouched for
    ``upload_stale_seconds``; live uploads write on)."""
    plane = self.plane
    removed = plane.store.remove_stale_uploads(plane.settings.upload_stale_seconds)
    if removed:
        log.warning("deleted %d upload temp file(s) left by an interrupted push", removed)
    cutoff = plane.clock() - dt.timedelta(seconds=plane.settings.measure_resend_seconds)
    with plane.tx() as session:
        stale = services.pending_version_ids(session, created_before=cutoff)
        for version_id in stale:
            enqueue_after_commit(session, push.PIPELINE_TASK, version_id)
    if stale:
        log.info("re-sent measurement of %d pending version(s)", len(stale))
