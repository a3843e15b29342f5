"""Billing: metered keys, a job's hold and final charge, and the ledger of every movement of money.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Keys made before billing existed stay unmetered, as they behaved until now.
    op.add_column("api_keys", sa.Column("metered", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("jobs", sa.Column("held", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("jobs", sa.Column("charged", sa.BigInteger(), nullable=True))
    op.create_table(
        "ledger",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=True),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger")),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], name=op.f("fk_ledger_key_id_api_keys")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_ledger_job_id_jobs")),
        sa.CheckConstraint("kind IN ('grant', 'hold', 'capture', 'release')", name=op.f("ck_ledger_kind")),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_ledger_amount")),
    )
    op.create_index(op.f("ix_ledger_job_id_kind"), "ledger", ["job_id", "kind"], unique=True)
    op.create_index(op.f("ix_ledger_key_id_kind_created_at"), "ledger", ["key_id", "kind", "created_at"])


def downgrade() -> None:
    op.drop_table("ledger")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("charged")
        batch.drop_column("held")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("metered")
