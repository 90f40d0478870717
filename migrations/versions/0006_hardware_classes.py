"""hardware classes and profile history, windows stamped with the device's class, learned
variant incompatibilities, arena estimates, a rollout's variant preference, and room for the
no_compatible_variant device state

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hardware_profiles") as batch:
        batch.add_column(sa.Column("hardware_class", sa.String(16), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("class_name", sa.String(64), nullable=False,
                                   server_default=""))
        batch.create_index(batch.f("ix_hardware_profiles_hardware_class"), ["hardware_class"])
    with op.batch_alter_table("hardware_profiles") as batch:
        # Filled for existing rows at the next report; the model gives new rows their value.
        batch.alter_column("hardware_class", existing_type=sa.String(16), server_default=None)
        batch.alter_column("class_name", existing_type=sa.String(64), server_default=None)
    with op.batch_alter_table("variants") as batch:
        batch.add_column(sa.Column("arena_bytes", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("metric_windows") as batch:
        # Windows stored before classes existed belong to none (""); new ones get the class.
        batch.add_column(sa.Column("hardware_class", sa.String(16), nullable=False,
                                   server_default=sa.text("''")))
        batch.create_index("ix_metric_windows_version_class",
                           ["model_name", "version", "hardware_class"])
    with op.batch_alter_table("rollouts") as batch:
        batch.add_column(sa.Column("prefer", sa.String(16), nullable=False,
                                   server_default="latency"))
    with op.batch_alter_table("rollouts") as batch:
        batch.alter_column("prefer", existing_type=sa.String(16), server_default=None)
    with op.batch_alter_table("rollout_devices") as batch:
        batch.alter_column("state", existing_type=sa.String(16), type_=sa.String(32))
    op.create_table(
        "hardware_profile_history",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("hardware_class", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"],
                                name=op.f("fk_hardware_profile_history_device_id_devices"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hardware_profile_history")),
    )
    op.create_index("ix_hardware_profile_history_device", "hardware_profile_history",
                    ["device_id", "recorded_at"])
    op.create_table(
        "variant_incompatibilities",
        sa.Column("variant_id", sa.String(length=36), nullable=False),
        sa.Column("hardware_class", sa.String(length=16), nullable=False),
        sa.Column("class_name", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("finding", sa.JSON(), nullable=True),
        sa.Column("device_id", sa.String(length=36), nullable=True),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["variant_id"], ["variants.id"],
                                name=op.f("fk_variant_incompatibilities_variant_id_variants"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"],
                                name=op.f("fk_variant_incompatibilities_device_id_devices"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("variant_id", "hardware_class",
                                name=op.f("pk_variant_incompatibilities")),
    )


def downgrade() -> None:
    op.drop_table("variant_incompatibilities")
    op.drop_index("ix_hardware_profile_history_device", table_name="hardware_profile_history")
    op.drop_table("hardware_profile_history")
    op.execute("UPDATE rollout_devices SET state = 'failed' "
               "WHERE state = 'no_compatible_variant'")
    with op.batch_alter_table("rollout_devices") as batch:
        batch.alter_column("state", existing_type=sa.String(32), type_=sa.String(16))
    with op.batch_alter_table("rollouts") as batch:
        batch.drop_column("prefer")
    with op.batch_alter_table("metric_windows") as batch:
        batch.drop_index("ix_metric_windows_version_class")
        batch.drop_column("hardware_class")
    with op.batch_alter_table("variants") as batch:
        batch.drop_column("arena_bytes")
    with op.batch_alter_table("hardware_profiles") as batch:
        batch.drop_index(batch.f("ix_hardware_profiles_hardware_class"))
        batch.drop_column("class_name")
        batch.drop_column("hardware_class")
