"""The audit log's one table.

Invariants:
- Rows are only ever added, never changed or deleted by the control plane: the log is the
  record of what happened (a rollout deleted with its model version keeps its entries).
- ``id`` starts with the nanoseconds of its making, strictly increasing within a process, then
  random digits (unique across servers): ``at`` then ``id`` order the log as it was written,
  also among the entries of one transaction, which share their ``at``.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from controlplane.db import Base, utcnow

_last_ns = 0
_lock = threading.Lock()


def event_id() -> str:
    """20 digits of nanoseconds (strictly increasing here), a dash, 15 random hex digits."""
    global _last_ns
    with _lock:
        _last_ns = max(time.time_ns(), _last_ns + 1)
        ns = _last_ns
    return f"{ns:020d}-{secrets.token_hex(8)[:15]}"


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        sa.Index("ix_audit_events_subject", "subject_id", "at"),
        sa.Index("ix_audit_events_at", "at"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=event_id)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The operator token's id, or "engine" for what the rollout engine decided by itself.
    actor: Mapped[str] = mapped_column(sa.String(36))
    actor_role: Mapped[str] = mapped_column(sa.String(16))
    action: Mapped[str] = mapped_column(sa.String(64))
    subject: Mapped[str] = mapped_column(sa.String(16))
    subject_id: Mapped[str] = mapped_column(sa.String(64))
    wave: Mapped[int] = mapped_column(default=-1)
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
