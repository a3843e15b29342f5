"""The playground's history on the server: runs and threads per key, and jobs a key deleted from it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "playground_history",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("doc", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('run', 'thread')", name=op.f("ck_playground_history_kind")),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], name=op.f("fk_playground_history_key_id_api_keys")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_playground_history")),
    )
    op.create_index(
        "ix_playground_history_key_id_kind_updated_at", "playground_history", ["key_id", "kind", "updated_at"]
    )
    op.create_table(
        "playground_hidden_jobs",
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("hidden_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], name=op.f("fk_playground_hidden_jobs_key_id_api_keys")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_playground_hidden_jobs_job_id_jobs")),
        sa.PrimaryKeyConstraint("key_id", "job_id", name=op.f("pk_playground_hidden_jobs")),
    )


def downgrade() -> None:
    op.drop_table("playground_hidden_jobs")
    op.drop_index("ix_playground_history_key_id_kind_updated_at", table_name="playground_history")
    op.drop_table("playground_history")
