"""Registry background work: run every pending variant in a real interpreter, then sign it.

Idempotent: a variant that is no longer pending is left alone, so a redelivered task is harmless.
"""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from controlplane.jobs.app import app
from controlplane.jobs.base import TRANSIENT, PlaneTask
from controlplane.jobs.outbox import enqueue_after_commit
from controlplane.registry import push, services
from controlplane.registry.errors import (
    ArtifactNotFoundError,
    InterpreterUnavailableError,
    ModelRunError,
)
from controlplane.registry.isolation import measure_isolated
from controlplane.registry.measure import Measurement
from controlplane.registry.models import ModelVersion, Variant

log = logging.getLogger(__name__)


# Missing bytes or a missing interpreter are this host's fault, not the model's: retry (and the
# periodic sweep re-sends the task after the retries), never mark the model failed for them.
HOST_TROUBLE = (*TRANSIENT, ArtifactNotFoundError, InterpreterUnavailableError)


@app.task(base=PlaneTask, bind=True, name=push.MEASURE_TASK, autoretry_for=HOST_TROUBLE)
def measure_version(self: PlaneTask, version_id: str) -> None:
    plane = self.plane
    with plane.tx() as session:
        pending = session.execute(
            sa.select(Variant.id, Variant.artifact_sha256).where(
                Variant.model_version_id == version_id, Variant.status == "pending"
            )
        ).all()
    for variant_id, sha256 in pending:
        if not plane.store.exists(sha256):
            raise ArtifactNotFoundError(
                f"artifact {sha256} is not in this host's store ({plane.settings.artifact_dir}): "
                "workers and servers must share the data dir"
            )
        # Measure outside any transaction, in a child process: it takes seconds, holds no
        # database resources, and a model that crashes the interpreter only kills the child.
        measurement: Measurement | None = None
        failure = ""
        try:
            measurement = measure_isolated(
                plane.store.path(sha256),
                runs=plane.settings.measure_runs,
                timeout=plane.settings.measure_timeout_seconds,
            )
        except ModelRunError as exc:
            failure = str(exc)
        with plane.tx() as session:
            variant = session.scalars(
                sa.select(Variant)
                .where(Variant.id == variant_id)
                .options(
                    selectinload(Variant.model_version).selectinload(ModelVersion.variants),
                    selectinload(Variant.model_version).selectinload(ModelVersion.model),
                )
                .with_for_update()
            ).one()
            if variant.status != "pending":
                continue  # another delivery of this task got here first
            if measurement is None:
                services.mark_variant_failed(session, variant, failure)
                continue
            services.mark_variant_measured(
                session,
                variant,
                signer=plane.signer,
                latency_ms=measurement.latency_ms_median,
                measured_with=f"{measurement.interpreter_name} {measurement.interpreter_version}",
                now=plane.clock(),
            )


@app.task(base=PlaneTask, bind=True, name="registry.sweep_pending")
def sweep_pending(self: PlaneTask) -> None:
    """Re-send ``measure_version`` for versions pending longer than ``measure_resend_seconds``:
    a message lost with an in-memory broker at a restart, or a task that gave up retrying, must
    not leave a version pending forever (measuring is idempotent). Also deletes upload temp
    files a killed server left (untouched for ``upload_stale_seconds``; live uploads write on)."""
    plane = self.plane
    removed = plane.store.remove_stale_uploads(plane.settings.upload_stale_seconds)
    if removed:
        log.warning("deleted %d upload temp file(s) left by an interrupted push", removed)
    cutoff = plane.clock() - dt.timedelta(seconds=plane.settings.measure_resend_seconds)
    with plane.tx() as session:
        stale = services.pending_version_ids(session, created_before=cutoff)
        for version_id in stale:
            enqueue_after_commit(session, measure_version, version_id)
    if stale:
        log.info("re-sent measurement of %d pending version(s)", len(stale))
