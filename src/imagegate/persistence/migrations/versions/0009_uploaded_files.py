"""Files uploaded through the Gemini Files API (and batch results files), owned by a key, expiring.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "uploaded_files",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=True),
        sa.Column("mime_type", sa.String(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("received_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=True),
        sa.Column("storage_key", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("upload_token", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploaded_files")),
        sa.UniqueConstraint("upload_token", name=op.f("uq_uploaded_files_upload_token")),
    )
    op.create_index("ix_uploaded_files_expires_at", "uploaded_files", ["expires_at"])
    op.create_index("ix_uploaded_files_key_id_created_at", "uploaded_files", ["key_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_uploaded_files_key_id_created_at", table_name="uploaded_files")
    op.drop_index("ix_uploaded_files_expires_at", table_name="uploaded_files")
    op.drop_table("uploaded_files")
