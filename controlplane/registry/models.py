"""Tables for models, their versions, optimized variants and the artifacts behind them.

Invariants:
- ``Artifact.sha256`` is the content address of bytes in the artifact store; a row exists only
  after the bytes were committed to the store with that digest and size.
- (model, version) is unique; a version's uploaded file is its ``source`` artifact and one of its
  variants (kind ``float32`` or whatever the file is) until the optimize pipeline adds more.
- A variant is deployable only when ``status == "ready"`` and it carries a signed manifest, and
  only to devices whose interpreter its measurements (``VariantMeasurement``) did not reject.
- ``Variant.status``: ``pending`` (being built or measured), ``ready`` (built, measured, signed),
  ``rejected`` (measured, outside the accuracy tolerance in every interpreter measured),
  ``failed`` (could not be built or run; ``failure`` says why), ``skipped`` (not made;
  ``failure`` says why, e.g. "needs calibration data"). Only pending and ready variants have
  an artifact before they settle; skipped ones never do.
- A version is ``ready`` once its reference variant is ready, whatever became of the others;
  ``failed`` when the reference failed; ``pending`` while any variant is.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from controlplane.db import Base, new_id, utcnow


class Artifact(Base):
    __tablename__ = "artifacts"

    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Model(Base):
    __tablename__ = "models"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[ModelVersion]] = relationship(
        back_populates="model", order_by="ModelVersion.created_at"
    )


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    model_id: Mapped[str] = mapped_column(sa.ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    failure: Mapped[str] = mapped_column(sa.Text, default="")
    source_sha256: Mapped[str] = mapped_column(sa.ForeignKey("artifacts.sha256"))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    inputs: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    outputs: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    operators: Mapped[list[str]] = mapped_column(sa.JSON)
    min_runtime: Mapped[str] = mapped_column(sa.String(32))
    calibration_sha256: Mapped[str | None] = mapped_column(sa.ForeignKey("artifacts.sha256"))
    # The push's accuracy tolerance ({"min_cosine", "min_top1"}), None: the settings' defaults.
    tolerance: Mapped[dict[str, float] | None] = mapped_column(sa.JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(sa.String(32))

    model: Mapped[Model] = relationship(back_populates="versions")
    variants: Mapped[list[Variant]] = relationship(
        back_populates="model_version", order_by="Variant.kind"
    )

    __table_args__ = (
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
        sa.CheckConstraint("status in ('pending','ready','failed')", name="status"),
    )


class Variant(Base):
    __tablename__ = "variants"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    model_version_id: Mapped[str] = mapped_column(
        sa.ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(sa.String(32))
    # None until the variant is built (and forever for a skipped or unbuildable one).
    artifact_sha256: Mapped[str | None] = mapped_column(sa.ForeignKey("artifacts.sha256"),
                                                        index=True)
    size: Mapped[int | None] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    failure: Mapped[str] = mapped_column(sa.Text, default="")
    inputs: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    outputs: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    # The variant's own minimum TFLite runtime: quantized kernels need other operator versions.
    min_runtime: Mapped[str] = mapped_column(sa.String(32), default="")
    # Median latency in the reference interpreter (``measured_with``); per interpreter figures
    # are its ``measurements``.
    latency_ms: Mapped[float | None]
    # Bytes of the non-constant tensors the reference interpreter allocated for it (an upper
    # bound on its arena: no memory planning credited); selection's memory fit adds it to size.
    arena_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    measured_with: Mapped[str] = mapped_column(sa.String(64), default="")
    # The golden samples artifact the signed manifest references, and its sample count.
    golden_sha256: Mapped[str | None] = mapped_column(sa.ForeignKey("artifacts.sha256"))
    golden_samples: Mapped[int] = mapped_column(default=0)
    manifest_payload: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    manifest_signature: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    manifest_key_id: Mapped[str | None] = mapped_column(sa.String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    model_version: Mapped[ModelVersion] = relationship(back_populates="variants")
    measurements: Mapped[list[VariantMeasurement]] = relationship(
        back_populates="variant", order_by="VariantMeasurement.interpreter",
        cascade="all, delete-orphan",
    )

    __table_args__ = (
        sa.UniqueConstraint("model_version_id", "kind", name="uq_variants_version_kind"),
        sa.CheckConstraint(
            "status in ('pending','ready','rejected','failed','skipped')", name="status"),
    )


class VariantMeasurement(Base):
    """One variant run in one interpreter (name and version) against the version's reference.

    Invariants: one row per (variant, interpreter, interpreter_version); ``status`` is ``ok``
    (within the tolerance: offered to devices running this interpreter), ``rejected`` (ran, but
    ``reason`` names the figure outside the tolerance) or ``failed`` (could not load or run it;
    ``reason`` is the interpreter's message). ``accuracy`` is one entry per output:
    ``{"name", "max_abs_error", "mean_abs_error", "cosine", "top1"}`` (top1 None where the
    output is not class-like).
    """

    __tablename__ = "variant_measurements"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    variant_id: Mapped[str] = mapped_column(sa.ForeignKey("variants.id", ondelete="CASCADE"))
    interpreter: Mapped[str] = mapped_column(sa.String(32))
    interpreter_version: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    latency_p50_ms: Mapped[float | None]
    latency_p95_ms: Mapped[float | None]
    accuracy: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    inputs_source: Mapped[str] = mapped_column(sa.String(16))
    samples: Mapped[int]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    variant: Mapped[Variant] = relationship(back_populates="measurements")

    __table_args__ = (
        sa.UniqueConstraint("variant_id", "interpreter", "interpreter_version",
                            name="uq_variant_measurements_variant_interpreter"),
        sa.CheckConstraint("status in ('ok','rejected','failed')", name="status"),
        sa.CheckConstraint("inputs_source in ('calibration','synthetic')", name="inputs_source"),
    )
