"""Rollouts, their waves and which device is in which wave.

Invariants:
- A rollout's state moves only along ``TRANSITIONS``; terminal states never change again.
- A device is in at most one wave of a rollout (primary key (rollout, device)).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from controlplane.db import Base, new_id, utcnow

TERMINAL = frozenset({"succeeded", "failed", "aborted", "rolled_back"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"running", "paused", "aborted", "failed"}),
    "running": frozenset({"succeeded", "failed", "paused", "aborted", "rolled_back"}),
    "paused": frozenset({"running", "aborted", "rolled_back"}),
    "succeeded": frozenset({"rolled_back"}),
    "failed": frozenset({"rolled_back"}),
    "aborted": frozenset({"rolled_back"}),
    "rolled_back": frozenset(),
}


class Rollout(Base):
    __tablename__ = "rollouts"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    model_version_id: Mapped[str] = mapped_column(
        sa.ForeignKey("model_versions.id", ondelete="RESTRICT"), index=True
    )
    selector: Mapped[str] = mapped_column(sa.Text)
    # The variant kind every device must get (rollout create --variant); None: chosen per device.
    variant: Mapped[str | None] = mapped_column(sa.String(32))
    # What selection prefers among a device's eligible variants (rollout create --prefer).
    prefer: Mapped[str] = mapped_column(sa.String(16), default="latency")
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(sa.String(32))

    waves: Mapped[list[Wave]] = relationship(
        back_populates="rollout", order_by="Wave.index", cascade="all, delete-orphan"
    )
    targets: Mapped[list[RolloutDevice]] = relationship(
        back_populates="rollout", cascade="all, delete-orphan"
    )


class Wave(Base):
    __tablename__ = "waves"

    rollout_id: Mapped[str] = mapped_column(
        sa.ForeignKey("rollouts.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(primary_key=True)
    percent: Mapped[float] = mapped_column(default=100.0)
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]

    rollout: Mapped[Rollout] = relationship(back_populates="waves")


class RolloutDevice(Base):
    """One device's part in a rollout: which wave, which variant, how it went."""

    __tablename__ = "rollout_devices"

    rollout_id: Mapped[str] = mapped_column(
        sa.ForeignKey("rollouts.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[str] = mapped_column(
        sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    wave_index: Mapped[int]
    variant_id: Mapped[str] = mapped_column(sa.ForeignKey("variants.id", ondelete="RESTRICT"))
    # The variant the device ran for this model before, for rollback (None: nothing).
    previous_variant_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("variants.id", ondelete="RESTRICT")
    )
    # pending, succeeded, failed, superseded, no_compatible_variant (message: every reason).
    state: Mapped[str] = mapped_column(sa.String(32), default="pending")
    message: Mapped[str] = mapped_column(sa.Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    rollout: Mapped[Rollout] = relationship(back_populates="targets")
