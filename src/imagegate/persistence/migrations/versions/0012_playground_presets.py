"""Presets of the playground's Create form kept on the server, beside runs and threads (a third history kind).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _kinds(*kinds: str) -> None:
    # SQLite cannot alter a CHECK constraint: batch mode copies the table (env.py turns it on there)
    with op.batch_alter_table("playground_history") as batch:
        batch.drop_constraint(op.f("ck_playground_history_kind"), type_="check")
        batch.create_check_constraint(
            op.f("ck_playground_history_kind"), "kind IN ({})".format(", ".join(f"'{k}'" for k in kinds))
        )


def upgrade() -> None:
    _kinds("run", "thread", "preset")


def downgrade() -> None:
    op.execute("DELETE FROM playground_history WHERE kind = 'preset'")
    _kinds("run", "thread")
