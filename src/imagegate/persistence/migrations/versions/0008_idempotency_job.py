"""Idempotency entries name the job their request created, so a retry after a crash answers from that job.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("idempotency_keys", sa.Column("job_id", sa.String(), nullable=True))


def downgrade() -> None:
    op.drop_column("idempotency_keys", "job_id")
