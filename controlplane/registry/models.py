"""Tables for models, their versions, optimized variants and the artifacts behind them.

Invariants:
- ``Artifact.sha256`` is the content address of bytes in the artifact store; a row exists only
  after the bytes were committed to the store with that digest and size.
- (model, version) is unique; a version's uploaded file is its ``source`` artifact and one of its
  variants (kind ``float32`` or whatever the file is) until the optimize pipeline adds more.
- A variant is deployable only when ``status == "ready"`` and it carries a signed manifest.
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
    artifact_sha256: Mapped[str] = mapped_column(sa.ForeignKey("artifacts.sha256"), index=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    failure: Mapped[str] = mapped_column(sa.Text, default="")
    inputs: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    outputs: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    latency_ms: Mapped[float | None]
    measured_with: Mapped[str] = mapped_column(sa.String(64), default="")
    manifest_payload: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    manifest_signature: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    manifest_key_id: Mapped[str | None] = mapped_column(sa.String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    model_version: Mapped[ModelVersion] = relationship(back_populates="variants")

    __table_args__ = (
        sa.UniqueConstraint("model_version_id", "kind", name="uq_variants_version_kind"),
        sa.CheckConstraint("status in ('pending','ready','failed')", name="status"),
    )
