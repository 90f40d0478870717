"""metric windows count non-finite outputs, install events keep their finding, and windows are
indexed for the per-device metrics read

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("metric_windows") as batch:
        # The server default stays (unlike 0004's): windows stored before this revision had no
        # figure, and a server of the previous release still inserting windows during a rolling
        # upgrade sends none either; both mean "none seen", which 0 says.
        batch.add_column(sa.Column("nonfinite", sa.BigInteger(), nullable=False,
                                   server_default="0"))
        # GetDevice reads a device's most recent windows: WHERE device_id = ? ORDER BY end DESC.
        batch.create_index(batch.f("ix_metric_windows_device_id_end"), ["device_id", "end"],
                           unique=False)
    # Nullable: most events carry no finding, and those stored before this revision none.
    op.add_column("install_events", sa.Column("finding", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("install_events") as batch:
        batch.drop_column("finding")
    with op.batch_alter_table("metric_windows") as batch:
        batch.drop_index(batch.f("ix_metric_windows_device_id_end"))
        batch.drop_column("nonfinite")
