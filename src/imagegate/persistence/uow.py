"""The SQL unit of work: one ``SqlTransaction`` shared by the key, job, file, ledger and other repositories.

Used as ``async with uow_factory() as uow: ...; await uow.commit()``. Leaving the block without ``commit()``
(normally or by an exception) rolls back, so a use case either changes everything it meant to or nothing.
On a SQLite file the transaction runs on the loop's thread (``inline_sqlite``) unless it asks for
``scan=True``: a read over many rows, which goes to aiosqlite's thread instead.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.ports import (
    BatchRepository,
    FileRepository,
    HistoryRepository,
    IdempotencyRepository,
    JobRepository,
    KeyRepository,
    LedgerRepository,
    UploadedFileRepository,
    WebhookRepository,
)
from imagegate.persistence.batch_repository import SqlBatchRepository
from imagegate.persistence.history_repository import SqlHistoryRepository
from imagegate.persistence.idempotency_repository import SqlIdempotencyRepository
from imagegate.persistence.inline_sqlite import InlineSqlite, InlineSqlTransaction, inline_capable
from imagegate.persistence.ledger_repository import SqlLedgerRepository
from imagegate.persistence.repositories import SqlFileRepository, SqlJobRepository, SqlKeyRepository
from imagegate.persistence.transaction import SqlTransaction, Transaction, WriteGate
from imagegate.persistence.upload_repository import SqlUploadedFileRepository
from imagegate.persistence.webhook_repository import SqlWebhookRepository


class SqlUnitOfWork:
    """One transaction over every repository; single use per ``async with`` block."""

    keys: KeyRepository
    jobs: JobRepository
    files: FileRepository
    webhooks: WebhookRepository
    idempotency: IdempotencyRepository
    ledger: LedgerRepository
    history: HistoryRepository
    uploads: UploadedFileRepository
    batches: BatchRepository

    def __init__(self, engine: AsyncEngine, gate: WriteGate | None, inline: InlineSqlite | None) -> None:
        self._engine = engine
        self._gate = gate
        self._inline = inline
        self._tx: Transaction | None = None

    async def __aenter__(self) -> Self:
        if self._tx is not None:
            raise RuntimeError("this unit of work is already open; make a new one per transaction")
        tx: Transaction
        if self._inline is not None:
            tx = InlineSqlTransaction(self._inline, self._gate)
        else:
            tx = SqlTransaction(self._engine, self._gate)
        self._tx = tx
        self.keys = SqlKeyRepository(tx)
        self.jobs = SqlJobRepository(tx)
        self.files = SqlFileRepository(tx)
        self.webhooks = SqlWebhookRepository(tx)
        self.idempotency = SqlIdempotencyRepository(tx)
        self.ledger = SqlLedgerRepository(tx)
        self.history = SqlHistoryRepository(tx)
        self.uploads = SqlUploadedFileRepository(tx)
        self.batches = SqlBatchRepository(tx)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        tx, self._tx = self._require_tx(), None
        await tx.close()  # after a commit nothing is left; otherwise what was not committed is discarded

    async def commit(self) -> None:
        await self._require_tx().commit()

    async def rollback(self) -> None:
        await self._require_tx().rollback()

    def _require_tx(self) -> Transaction:
        if self._tx is None:
            raise RuntimeError("use the unit of work inside 'async with'")
        return self._tx


class SqlUnitOfWorkFactory:
    """Makes a fresh ``SqlUnitOfWork`` per call: what the services take as a ``UnitOfWorkFactory``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._gate = WriteGate() if engine.dialect.name == "sqlite" else None
        self._inline = InlineSqlite(engine.url) if inline_capable(engine.url) else None

    def __call__(self, *, scan: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine, self._gate, None if scan else self._inline)

    def dispose(self) -> None:
        """Close the inline engine's connections (the async engine is its owner's to dispose)."""
        if self._inline is not None:
            self._inline.dispose()


def unit_of_work_factory(engine: AsyncEngine) -> SqlUnitOfWorkFactory:
    """The composition root's one-liner: a unit-of-work factory over ``engine`` (``dispose`` it before the
    engine)."""
    return SqlUnitOfWorkFactory(engine)
