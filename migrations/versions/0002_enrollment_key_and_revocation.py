"""devices remember the agent's enrollment key (a repeated Enroll is idempotent); devices and
enrollment tokens can be revoked

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 22:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: devices enrolled before this revision simply have no key (their
    # agents are enrolled already and never send Enroll again).
    op.add_column("devices", sa.Column("enrollment_key_hash", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_devices_enrollment_key",
        "devices",
        ["enrollment_token_id", "enrollment_key_hash"],
        unique=True,
    )
    op.add_column("devices", sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "enrollment_tokens", sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_index("ix_devices_enrollment_key", table_name="devices")
    # SQLite drops columns by copying the table; batch mode does that on every backend alike.
    with op.batch_alter_table("enrollment_tokens") as batch:
        batch.drop_column("revoked_at")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("revoked_at")
        batch.drop_column("enrollment_key_hash")
