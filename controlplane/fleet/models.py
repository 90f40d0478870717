"""Devices, their hardware profiles, and per-(device, model name) desired and active state.

Invariants:
- ``Device.desired_sequence`` only grows; every new desired state takes the next number (an atomic
  ``UPDATE ... SET desired_sequence = desired_sequence + 1``), so agents can refuse older documents.
- ``DesiredState`` holds the signed document for the device's current sequence: the sync hot path
  answers from this one row (primary-key read) and never writes.
- A device runs at most one version per model name: ``DeviceModel`` is keyed by (device, model).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from controlplane.db import Base, new_id, utcnow

if TYPE_CHECKING:
    from controlplane.registry.models import Variant


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (
        sa.Index("ix_devices_enrollment_key", "enrollment_token_id", "enrollment_key_hash",
                 unique=True),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(sa.String(200))
    labels: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    enrolled_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    enrollment_token_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("enrollment_tokens.id", ondelete="SET NULL")
    )
    # sha256 of the agent's enrollment key: a repeated Enroll (lost answer) finds this device.
    enrollment_key_hash: Mapped[str | None] = mapped_column(sa.String(64))
    last_seen: Mapped[dt.datetime | None]
    desired_sequence: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # Set once, never cleared: a revoked device's credential is refused and it gets no rollouts.
    revoked_at: Mapped[dt.datetime | None]

    hardware: Mapped[HardwareProfile | None] = relationship(
        back_populates="device", cascade="all, delete-orphan", uselist=False
    )
    models: Mapped[list[DeviceModel]] = relationship(
        back_populates="device", cascade="all, delete-orphan", order_by="DeviceModel.model_name"
    )


class HardwareProfile(Base):
    """The device's latest reported profile; the full document plus indexed columns to select on."""

    __tablename__ = "hardware_profiles"

    device_id: Mapped[str] = mapped_column(
        sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    profile: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    arch: Mapped[str] = mapped_column(sa.String(32), default="")
    cpu_cores: Mapped[int] = mapped_column(default=0)
    ram_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    interpreter_name: Mapped[str] = mapped_column(sa.String(64), default="")
    interpreter_version: Mapped[str] = mapped_column(sa.String(32), default="")
    # The profile's hardware class (controlplane.fleet.classes): its key and readable name.
    hardware_class: Mapped[str] = mapped_column(sa.String(16), default="", index=True)
    class_name: Mapped[str] = mapped_column(sa.String(64), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    device: Mapped[Device] = relationship(back_populates="hardware")


class HardwareProfileChange(Base):
    """A profile the device reported that differed from the one before it; the newest
    ``max_profile_history`` per device are kept."""

    __tablename__ = "hardware_profile_history"
    __table_args__ = (sa.Index("ix_hardware_profile_history_device", "device_id", "recorded_at"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    device_id: Mapped[str] = mapped_column(sa.ForeignKey("devices.id", ondelete="CASCADE"))
    profile: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    hardware_class: Mapped[str] = mapped_column(sa.String(16))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class VariantIncompatibility(Base):
    """Learned: a variant a device of ``hardware_class`` could not load or validate. Selection
    avoids it on that class until an operator clears the mark (``edgefleet fleet compat``)."""

    __tablename__ = "variant_incompatibilities"

    variant_id: Mapped[str] = mapped_column(
        sa.ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True)
    hardware_class: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    class_name: Mapped[str] = mapped_column(sa.String(64), default="")
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    finding: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    # The device that reported it first, and how many reports agreed since.
    device_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("devices.id", ondelete="SET NULL"))
    reports: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DeviceModel(Base):
    """What one device should run and runs for one model name."""

    __tablename__ = "device_models"

    device_id: Mapped[str] = mapped_column(
        sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    model_name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    desired_variant_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("variants.id", ondelete="RESTRICT"), index=True
    )
    active_variant_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("variants.id", ondelete="RESTRICT"), index=True
    )
    rollout_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("rollouts.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[str] = mapped_column(sa.String(32), default="pending")
    message: Mapped[str] = mapped_column(sa.Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Outside its rollout's maintenance window: the device may download and prove the desired
    # variant but must not activate it (the desired state's entry says "hold").
    hold: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    device: Mapped[Device] = relationship(back_populates="models")
    desired_variant: Mapped[Variant | None] = relationship(foreign_keys=[desired_variant_id])
    active_variant: Mapped[Variant | None] = relationship(foreign_keys=[active_variant_id])


class DesiredState(Base):
    """The signed desired-state document a device is served, for its current sequence."""

    __tablename__ = "desired_states"

    device_id: Mapped[str] = mapped_column(
        sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    sequence: Mapped[int] = mapped_column(sa.BigInteger)
    payload: Mapped[bytes] = mapped_column(sa.LargeBinary)
    signature: Mapped[bytes] = mapped_column(sa.LargeBinary)
    key_id: Mapped[str] = mapped_column(sa.String(16))
    issued_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    # Artifacts this document lets the device download (authorisation for DownloadArtifact).
    artifacts: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
