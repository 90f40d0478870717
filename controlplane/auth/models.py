"""Tables for secrets that authenticate callers. Only sha256 hashes of secrets are stored.

A token reads ``ef<kind>_<id>_<secret>``: the id finds the row with one indexed read, the secret is
compared in constant time against its hash. Secrets are 256-bit random values, so a fast hash is
enough (there is nothing to brute-force that a slow KDF would protect).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from controlplane.db import Base, utcnow


class OperatorToken(Base):
    __tablename__ = "operator_tokens"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    role: Mapped[str] = mapped_column(sa.String(16))
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(sa.String(32))
    revoked_at: Mapped[dt.datetime | None]
    expires_at: Mapped[dt.datetime | None]   # None: never expires

    __table_args__ = (sa.CheckConstraint("role in ('admin','operator','viewer')", name="role"),)

    def works_at(self, now: dt.datetime) -> bool:
        """Not revoked and not expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


class EnrollmentToken(Base):
    __tablename__ = "enrollment_tokens"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    labels: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    uses_left: Mapped[int]
    uses_total: Mapped[int]
    expires_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(sa.String(32))
    revoked_at: Mapped[dt.datetime | None]

    __table_args__ = (sa.CheckConstraint("uses_left >= 0", name="uses_left"),)
