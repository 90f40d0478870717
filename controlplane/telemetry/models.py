"""Install events and inference metric windows.

Invariant: (device, ``window_id``) is the primary key, with the id chosen by the agent, so a
window the agent re-sends after a lost acknowledgement is stored once, and no device can shadow
another's windows by reusing their ids.
"""

from __future__ import annotations

import datetime as dt

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
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class MetricWindow(Base):
    __tablename__ = "metric_windows"

    device_id: Mapped[str] = mapped_column(
        sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    window_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(200))
    version: Mapped[str] = mapped_column(sa.String(64))
    variant: Mapped[str] = mapped_column(sa.String(32))
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    start: Mapped[dt.datetime]
    end: Mapped[dt.datetime]
    count: Mapped[int] = mapped_column(sa.BigInteger)
    errors: Mapped[int] = mapped_column(sa.BigInteger)
    bucket_bounds_ms: Mapped[list[float]] = mapped_column(sa.JSON)
    bucket_counts: Mapped[list[int]] = mapped_column(sa.JSON)
    latency_sum_ms: Mapped[float]
    latency_max_ms: Mapped[float]
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
