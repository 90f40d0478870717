"""staged rollouts: a rollout's plan, reason, start and model name; wave targets, bake times
and gate readings; queued targets with their draw position, assignment and step times; the
maintenance-window hold on a device's model; the audit log

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("device_models") as batch:
        batch.add_column(sa.Column("hold", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("rollouts") as batch:
        # Rollouts made before plans have {}: one wave of everyone, no gates (Plan.from_json).
        batch.add_column(sa.Column("plan", sa.JSON(), nullable=False,
                                   server_default=sa.text("'{}'")))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("started_at", TZ, nullable=True))
        batch.add_column(sa.Column("model_name", sa.String(200), nullable=False,
                                   server_default=""))
        batch.create_index(batch.f("ix_rollouts_model_name"), ["model_name"])
    op.execute(
        "UPDATE rollouts SET model_name = (SELECT models.name FROM model_versions "
        "JOIN models ON models.id = model_versions.model_id "
        "WHERE model_versions.id = rollouts.model_version_id)")
    with op.batch_alter_table("waves") as batch:
        batch.add_column(sa.Column("target", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("completed_at", TZ, nullable=True))
        batch.add_column(sa.Column("bake_until", TZ, nullable=True))
        batch.add_column(sa.Column("gates", sa.JSON(), nullable=False,
                                   server_default=sa.text("'[]'")))
    with op.batch_alter_table("rollout_devices") as batch:
        batch.alter_column("variant_id", existing_type=sa.String(36), nullable=True)
        batch.add_column(sa.Column("position", sa.BigInteger(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("assigned_at", TZ, nullable=True))
        batch.add_column(sa.Column("step_at", TZ, nullable=True))
        batch.add_column(sa.Column("step", sa.String(32), nullable=False, server_default=""))
        batch.create_index("ix_rollout_devices_rollout_state", ["rollout_id", "state"])
    # Targets of earlier rollouts were all started when their rollout was.
    op.execute("UPDATE rollout_devices SET assigned_at = updated_at, step_at = updated_at")
    # The defaults above only fill existing rows; the models give new rows their values.
    for table, columns in (
        ("rollouts", (("plan", sa.JSON()), ("reason", sa.Text()), ("model_name", sa.String(200)))),
        ("waves", (("target", sa.Integer()), ("gates", sa.JSON()))),
        ("rollout_devices", (("position", sa.BigInteger()), ("step", sa.String(32)))),
    ):
        with op.batch_alter_table(table) as batch:
            for name, type_ in columns:
                batch.alter_column(name, existing_type=type_, server_default=None)
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.String(length=36), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_subject", "audit_events", ["subject_id", "at"])
    op.create_index("ix_audit_events_at", "audit_events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    op.drop_index("ix_audit_events_subject", table_name="audit_events")
    op.drop_table("audit_events")
    # The previous release knows no queued targets: they were never given the version.
    op.execute("DELETE FROM rollout_devices WHERE variant_id IS NULL")
    op.execute("UPDATE rollout_devices SET state = 'failed' WHERE state = 'timed_out'")
    op.execute("UPDATE rollout_devices SET state = 'pending' WHERE state = 'held'")
    with op.batch_alter_table("rollout_devices") as batch:
        batch.drop_index("ix_rollout_devices_rollout_state")
        batch.drop_column("step")
        batch.drop_column("step_at")
        batch.drop_column("assigned_at")
        batch.drop_column("position")
        batch.alter_column("variant_id", existing_type=sa.String(36), nullable=False)
    op.execute("UPDATE waves SET state = 'running' WHERE state = 'baking'")
    with op.batch_alter_table("waves") as batch:
        batch.drop_column("gates")
        batch.drop_column("bake_until")
        batch.drop_column("completed_at")
        batch.drop_column("target")
    with op.batch_alter_table("rollouts") as batch:
        batch.drop_index(batch.f("ix_rollouts_model_name"))
        batch.drop_column("model_name")
        batch.drop_column("started_at")
        batch.drop_column("reason")
        batch.drop_column("plan")
    with op.batch_alter_table("device_models") as batch:
        batch.drop_column("hold")
