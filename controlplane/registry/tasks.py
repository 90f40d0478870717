"""Registry background work: run every pending variant in a real interpreter, then sign it.

Idempotent: a variant that is no longer pending is left alone, so a redelivered task is harmless.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from controlplane.celery_app import PlaneTask, app
from controlplane.registry import services
from controlplane.registry.errors import RegistryError
from controlplane.registry.measure import Measurement, measure_latency
from controlplane.registry.models import ModelVersion, Variant

log = logging.getLogger(__name__)


@app.task(base=PlaneTask, bind=True, name="registry.measure_version")
def measure_version(self: PlaneTask, version_id: str) -> None:
    plane = self.plane
    with plane.tx() as session:
        pending = session.execute(
            sa.select(Variant.id, Variant.artifact_sha256).where(
                Variant.model_version_id == version_id, Variant.status == "pending"
            )
        ).all()
    for variant_id, sha256 in pending:
        # Measure outside any transaction: it takes seconds and holds no database resources.
        measurement: Measurement | None = None
        failure = ""
        try:
            measurement = measure_latency(
                plane.store.path(sha256), runs=plane.settings.measure_runs
            )
        except RegistryError as exc:
            failure = str(exc)
        except Exception as exc:  # the interpreter may raise anything on a hostile model
            log.exception("measuring variant %s failed", variant_id)
            failure = f"interpreter error: {exc}"
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
