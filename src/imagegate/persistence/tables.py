"""The database schema as SQLAlchemy Core tables: api_keys, jobs and files, and their column types.

This is the single description of what the migrations create (a test compares the two); the repositories
read and write through these tables. Timestamps are always timezone-aware UTC in Python, whatever the backend
stores, and JSON documents are JSONB on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeEngine

# Deterministic constraint names, so later migrations can address them on every backend
# (SQLite batch migrations cannot alter an unnamed constraint).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in aware, is stored as UTC, and comes out aware UTC on every backend.

    SQLite keeps no offset (SQLAlchemy silently drops tzinfo there), so the value is converted to UTC first;
    a naive datetime is refused because its meaning is a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: imagegate stores only timezone-aware timestamps")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_document() -> TypeEngine[Any]:
    """JSON on SQLite, JSONB on PostgreSQL; Python ``None`` is SQL NULL, not the JSON ``null``."""
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


metadata = MetaData(naming_convention=NAMING_CONVENTION)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("prefix", String, nullable=False),
    Column("key_hash", String, nullable=False, unique=True, index=True),
    Column("credits", BigInteger, nullable=False),  # micro-units
    Column("is_admin", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("metered", Boolean, nullable=False, server_default=false()),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String, primary_key=True),
    Column("key_id", String, ForeignKey("api_keys.id"), nullable=False, index=True),
    Column("model", String, nullable=False),
    Column("dialect", String, nullable=False),
    Column("n", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("lease_expires_at", UtcDateTime, nullable=True),
    Column("deployment", String, nullable=True),
    Column("request_id", String, nullable=True),
    Column("spec", json_document(), nullable=False),
    Column("results", json_document(), nullable=False),
    Column("error", json_document(), nullable=True),
    Column("held", BigInteger, nullable=False, server_default="0"),  # micro-units reserved at submission
    Column("charged", BigInteger, nullable=True),  # the final price, once settled
    Column("progress_done", Integer, nullable=True),  # steps finished, while a provider reports them
    Column("progress_total", Integer, nullable=True),
    # JobPriority: 0 interactive (sync), 1 async tasks, 2 batch; claims take the lowest first.
    Column("priority", SmallInteger, nullable=False, server_default="1"),
    Column("worker", String, nullable=True),  # the process that claimed it last (database queue)
    CheckConstraint("status IN ({})".format(", ".join(f"'{s}'" for s in JOB_STATUSES)), name="status"),
    # Both start with status, so they also serve plain status lookups: the first for the oldest jobs of a
    # status (ids_with_status), the second for the lease sweeper (expired_leases).
    Index("ix_jobs_status_created_at", "status", "created_at"),
    Index("ix_jobs_status_lease_expires_at", "status", "lease_expires_at"),
    # The database queue's claims (queued rows only, in claim order) and its throughput reading.
    Index(
        "ix_jobs_queued_claim",
        "model",
        "priority",
        "created_at",
        postgresql_where=text("status = 'queued'"),
        sqlite_where=text("status = 'queued'"),
    ),
    Index(
        "ix_jobs_model_finished_at",
        "model",
        "finished_at",
        postgresql_where=text("finished_at IS NOT NULL"),
        sqlite_where=text("finished_at IS NOT NULL"),
    ),
)

files = Table(
    "files",
    metadata,
    Column("id", String, primary_key=True),
    Column("job_id", String, ForeignKey("jobs.id"), nullable=False, index=True),
    Column("key_id", String, nullable=False, index=True),
    Column("storage_key", String, nullable=False),
    Column("mime_type", String, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True, index=True),
)

WEBHOOK_STATES = ("pending", "delivered", "failed")

# One webhook per job, announced when the job ends; a row outlives restarts, so deliveries are retried
# (with backoff) by whichever process is up.
webhooks = Table(
    "webhooks",
    metadata,
    Column("job_id", String, ForeignKey("jobs.id"), primary_key=True),
    Column("key_id", String, nullable=False),
    Column("url", String, nullable=False),
    Column("state", String, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("last_error", String, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    CheckConstraint("state IN ({})".format(", ".join(f"'{s}'" for s in WEBHOOK_STATES)), name="state"),
    Index("ix_webhooks_state_next_attempt_at", "state", "next_attempt_at"),
)

LEDGER_KINDS = ("grant", "hold", "capture", "release")

# Every movement of money, written in the same transaction as the change it belongs to. A job has at most one
# hold, one capture and one release (the unique index), so nothing is ever charged or refunded twice.
ledger = Table(
    "ledger",
    metadata,
    Column("id", String, primary_key=True),
    Column("key_id", String, ForeignKey("api_keys.id"), nullable=False),
    Column("job_id", String, ForeignKey("jobs.id"), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=True),
    Column("images", Integer, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("model", String, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint("kind IN ({})".format(", ".join(f"'{k}'" for k in LEDGER_KINDS)), name="kind"),
    CheckConstraint("amount >= 0", name="amount"),
    Index("ix_ledger_job_id_kind", "job_id", "kind", unique=True),
    Index("ix_ledger_key_id_kind_created_at", "key_id", "kind", "created_at"),
)

# One row per (API key, Idempotency-Key): while its first request runs, a claim (``status`` NULL); once answered,
# the answer, replayed to retries until ``expires_at``. ``scope`` is a hash of the API key, never the key itself.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("idempotency_key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("token", String, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
    Column("status", Integer, nullable=True),
    Column("headers", json_document(), nullable=True),
    Column("body", LargeBinary, nullable=True),
    Column("completed_at", UtcDateTime, nullable=True),
    Column("job_id", String, nullable=True),  # the job the first request created (answers a retry after a crash)
)

HISTORY_KINDS = ("run", "thread", "preset")

# The playground's history per key (Create runs and Threads), so it survives reloads and other browsers.
playground_history = Table(
    "playground_history",
    metadata,
    Column("id", String, primary_key=True),
    Column("key_id", String, ForeignKey("api_keys.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("title", String, nullable=False),
    Column("doc", json_document(), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("kind IN ({})".format(", ".join(f"'{k}'" for k in HISTORY_KINDS)), name="kind"),
    Index("ix_playground_history_key_id_kind_updated_at", "key_id", "kind", "updated_at"),
)

# Jobs a key deleted from its history: the job row stays (its money moved), the gallery no longer lists it.
playground_hidden_jobs = Table(
    "playground_hidden_jobs",
    metadata,
    Column("key_id", String, ForeignKey("api_keys.id"), primary_key=True),
    Column("job_id", String, ForeignKey("jobs.id"), primary_key=True),
    Column("hidden_at", UtcDateTime, nullable=False),
)


#: Files uploaded through the Gemini Files API, and batch results files: owned by a key, gone after their expiry.
uploaded_files = Table(
    "uploaded_files",
    metadata,
    Column("id", String, primary_key=True),
    Column("key_id", String, nullable=False),
    Column("display_name", String, nullable=True),
    Column("mime_type", String, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("received_bytes", BigInteger, nullable=False),
    Column("sha256", String, nullable=True),
    Column("storage_key", String, nullable=False),
    Column("state", String, nullable=False),
    Column("source", String, nullable=False),
    Column("upload_token", String, nullable=True, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False, index=True),
    Index("ix_uploaded_files_key_id_created_at", "key_id", "created_at"),
)


#: Batches of the Gemini Batch API: the requests' jobs and errors in order, in one JSON document.
batches = Table(
    "batches",
    metadata,
    Column("id", String, primary_key=True),
    Column("key_id", String, nullable=False),
    Column("model", String, nullable=False),
    Column("display_name", String, nullable=True),
    Column("cancelled", Boolean, nullable=False),
    Column("doc", json_document(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_batches_key_id_created_at", "key_id", "created_at"),
)
