"""Install events and inference metric windows.

Invariants:
- (device, ``window_id``) is the primary key, with the id chosen by the agent, so a window the
  agent re-sends after a lost acknowledgement is stored once, and no device can shadow another's
  windows by reusing their ids.
- ``MetricWindow.nonfinite`` and ``errors`` are each at most ``count``
  (``protos.contract.histograms.check_window`` before every insert).
- ``InstallEvent.finding`` is None or a finding as ``telemetry.findings.check_finding`` returns
  it: every field present, bounded and finite.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from controlplane.db import Base, utcnow


class InstallEvent(Base):
    __tablename__ = "install_events"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    device_id: Mapped[str] = mapped_column(
        sa.ForeignKey("devices.id", ondelete="CASCADE"), index=True
    )
    model_name: Mapped[str] = mapped_column(sa.String(200))
    version: Mapped[str] = mapped_column(sa.String(64))
    variant: Mapped[str] = mapped_column(sa.String(32))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    state: Mapped[str] = mapped_column(sa.String(32))
    message: Mapped[str] = mapped_column(sa.Text, default="")
    # Why the device refused or rolled back the variant (the proto's Finding), when it said.
    # none_as_null: an event without one stores SQL NULL (so it can be filtered), not JSON null.
    finding: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON(none_as_null=True))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class MetricWindow(Base):
    __tablename__ = "metric_windows"
    __table_args__ = (
        # The per-device read (telemetry.device_metrics): a device's most recent windows.
        sa.Index("ix_metric_windows_device_id_end", "device_id", "end"),
        # The per-class read (telemetry.class_metrics): a version's windows by class.
        sa.Index("ix_metric_windows_version_class", "model_name", "version", "hardware_class"),
    )

    device_id: Mapped[str] = mapped_column(
        sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    window_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(200))
    version: Mapped[str] = mapped_column(sa.String(64))
    variant: Mapped[str] = mapped_column(sa.String(32))
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    # The device's hardware class when the window arrived (controlplane.fleet.classes): figures
    # compare like for like even after the device's profile changes; "" when it had none (and
    # for windows stored before migration 0006, or by the previous release during an upgrade).
    hardware_class: Mapped[str] = mapped_column(sa.String(16), default="",
                                                server_default=sa.text("''"))
    start: Mapped[dt.datetime]
    end: Mapped[dt.datetime]
    count: Mapped[int] = mapped_column(sa.BigInteger)
    errors: Mapped[int] = mapped_column(sa.BigInteger)
    # Inferences whose outputs held NaN or Inf. The server default is for rows written before
    # migration 0005 and by the previous release during an upgrade: they counted none.
    nonfinite: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    bucket_bounds_ms: Mapped[list[float]] = mapped_column(sa.JSON)
    bucket_counts: Mapped[list[int]] = mapped_column(sa.JSON)
    latency_sum_ms: Mapped[float]
    latency_max_ms: Mapped[float]
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
