"""The database queue: who holds a running job, and the partial indexes its claims and backlog reads use.

``ix_jobs_queued_claim`` holds only queued rows, in claim order (model, priority, age), so a claim reads the
few rows it takes however many jobs have ended; ``ix_jobs_model_finished_at`` gives the measured throughput
behind a backlog's Retry-After.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("worker", sa.String(), nullable=True))
    queued = sa.text("status = 'queued'")
    op.create_index(
        "ix_jobs_queued_claim",
        "jobs",
        ["model", "priority", "created_at"],
        postgresql_where=queued,
        sqlite_where=queued,
    )
    finished = sa.text("finished_at IS NOT NULL")
    op.create_index(
        "ix_jobs_model_finished_at",
        "jobs",
        ["model", "finished_at"],
        postgresql_where=finished,
        sqlite_where=finished,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_model_finished_at", table_name="jobs")
    op.drop_index("ix_jobs_queued_claim", table_name="jobs")
    op.drop_column("jobs", "worker")
