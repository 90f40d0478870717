"""optimized variants: per-interpreter measurements, golden samples, skipped and rejected
variants, a rollout's forced variant

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_OLD_STATUS = "status in ('pending','ready','failed')"
_NEW_STATUS = "status in ('pending','ready','rejected','failed','skipped')"


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("tolerance", sa.JSON(), nullable=True))
    op.add_column("rollouts", sa.Column("variant", sa.String(32), nullable=True))
    # Batch mode: SQLite rebuilds the table to relax NOT NULL and replace the CHECK.
    with op.batch_alter_table("variants") as batch:
        batch.alter_column("artifact_sha256", existing_type=sa.String(64), nullable=True)
        batch.alter_column("size", existing_type=sa.BigInteger(), nullable=True)
        batch.add_column(sa.Column("min_runtime", sa.String(32), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("golden_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("golden_samples", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.create_foreign_key(op.f("fk_variants_golden_sha256_artifacts"), "artifacts",
                                 ["golden_sha256"], ["sha256"])
        batch.drop_constraint(op.f("ck_variants_status"), type_="check")
        batch.create_check_constraint("status", _NEW_STATUS)
    with op.batch_alter_table("variants") as batch:
        # The defaults only filled existing rows; the models give every new row its value.
        batch.alter_column("min_runtime", existing_type=sa.String(32), server_default=None)
        batch.alter_column("golden_samples", existing_type=sa.Integer(), server_default=None)
    op.create_table(
        "variant_measurements",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("variant_id", sa.String(length=36), nullable=False),
        sa.Column("interpreter", sa.String(length=32), nullable=False),
        sa.Column("interpreter_version", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("latency_p50_ms", sa.Double(), nullable=True),
        sa.Column("latency_p95_ms", sa.Double(), nullable=True),
        sa.Column("accuracy", sa.JSON(), nullable=False),
        sa.Column("inputs_source", sa.String(length=16), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status in ('ok','rejected','failed')",
                           name=op.f("ck_variant_measurements_status")),
        sa.CheckConstraint("inputs_source in ('calibration','synthetic')",
                           name=op.f("ck_variant_measurements_inputs_source")),
        sa.ForeignKeyConstraint(["variant_id"], ["variants.id"],
                                name=op.f("fk_variant_measurements_variant_id_variants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_variant_measurements")),
        sa.UniqueConstraint("variant_id", "interpreter", "interpreter_version",
                            name="uq_variant_measurements_variant_interpreter"),
    )


def downgrade() -> None:
    op.drop_table("variant_measurements")
    op.execute("DELETE FROM variants WHERE artifact_sha256 IS NULL")
    op.execute("UPDATE variants SET status = 'failed' WHERE status IN ('rejected', 'skipped')")
    with op.batch_alter_table("variants") as batch:
        batch.drop_constraint(op.f("ck_variants_status"), type_="check")
        batch.create_check_constraint("status", _OLD_STATUS)
        batch.drop_constraint(op.f("fk_variants_golden_sha256_artifacts"), type_="foreignkey")
        batch.drop_column("golden_samples")
        batch.drop_column("golden_sha256")
        batch.drop_column("min_runtime")
        batch.alter_column("size", existing_type=sa.BigInteger(), nullable=False)
        batch.alter_column("artifact_sha256", existing_type=sa.String(64), nullable=False)
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("tolerance")
    with op.batch_alter_table("rollouts") as batch:
        batch.drop_column("variant")
