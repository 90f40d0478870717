"""Rollouts, their waves and which device is in which wave.

Invariants:
- A rollout's state moves only along ``TRANSITIONS``; terminal states never change again
  (``rolled_back`` aside, which any finished rollout may still become).
- A device is in at most one wave of a rollout (primary key (rollout, device)).
- A target is ``queued`` until the engine gives it the version (``assigned_at``), after which it
  is ``pending`` (or ``held``: outside the maintenance window) until it ``succeeded`` or ended
  in one of ``FINISHED`` states. ``step_at`` is when it last made progress: the step timeout
  runs from there.
- Plan and gate readings are JSON written by ``rollouts.plan`` and ``rollouts.gates`` only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from controlplane.db import Base, new_id, utcnow

TERMINAL = frozenset({"succeeded", "failed", "aborted", "rolled_back"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"running", "paused", "aborted", "failed"}),
    "running": frozenset({"succeeded", "failed", "paused", "aborted", "rolled_back"}),
    "paused": frozenset({"running", "aborted", "rolled_back", "failed"}),
    "succeeded": frozenset({"rolled_back"}),
    "failed": frozenset({"rolled_back"}),
    "aborted": frozenset({"rolled_back"}),
    "rolled_back": frozenset(),
}
#: Rollouts that still own their devices: one at a time per model and device.
OPEN = frozenset({"pending", "running", "paused"})

#: A target in one of these is done: the engine neither waits for it nor changes it again.
FINISHED = frozenset({"succeeded", "failed", "timed_out", "superseded",
                      "no_compatible_variant", "rolled_back"})
#: Finished badly: what the failure threshold counts.
FAILED = frozenset({"failed", "timed_out"})


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
    # rollouts.plan.Plan.to_json(); {} for rollouts made before plans (one wave, no gates).
    plan: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    # Why it is paused, failed or rolled back; "" otherwise.
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    started_at: Mapped[dt.datetime | None]
    # The model the version belongs to, copied so "one rollout per model and device" is one
    # indexed read.
    model_name: Mapped[str] = mapped_column(sa.String(200), default="", index=True)

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
    # The cumulative number of devices this wave reaches (its members are those beyond the
    # previous wave's target), fixed at the start.
    target: Mapped[int] = mapped_column(default=0)
    # pending | running | baking | succeeded | failed | aborted | rolled_back
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    started_at: Mapped[dt.datetime | None]
    completed_at: Mapped[dt.datetime | None]   # reached the success threshold: bake began
    bake_until: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    # The latest gate readings over this wave's bake (rollouts.gates.Reading.to_json each).
    gates: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)

    rollout: Mapped[Rollout] = relationship(back_populates="waves")


class RolloutDevice(Base):
    """One device's part in a rollout: which wave, which variant, how it went."""

    __tablename__ = "rollout_devices"
    __table_args__ = (
        sa.Index("ix_rollout_devices_rollout_state", "rollout_id", "state"),
    )

    rollout_id: Mapped[str] = mapped_column(
        sa.ForeignKey("rollouts.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[str] = mapped_column(
        sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    wave_index: Mapped[int]
    # None while queued: the variant is chosen when the device is started, on what its hardware
    # and the class's figures are then.
    variant_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("variants.id", ondelete="RESTRICT"))
    # The variant the device ran for this model before, for rollback (None: nothing).
    previous_variant_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("variants.id", ondelete="RESTRICT")
    )
    # queued, pending, held, succeeded, failed, timed_out, superseded, no_compatible_variant,
    # rolled_back (message: why).
    state: Mapped[str] = mapped_column(sa.String(32), default="queued")
    message: Mapped[str] = mapped_column(sa.Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The order the device was drawn in at the start (a hash of rollout and device): waves take
    # devices in this order, so a canary wave is spread over the fleet, not its oldest devices.
    position: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    assigned_at: Mapped[dt.datetime | None]
    step_at: Mapped[dt.datetime | None]
    # The device's last reported install step for this rollout (downloading, verified, ...).
    step: Mapped[str] = mapped_column(sa.String(32), default="")

    rollout: Mapped[Rollout] = relationship(back_populates="targets")
