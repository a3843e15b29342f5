"""The SQL unit of work: one ``AsyncSession`` (one transaction) shared by the key, job and file repositories.

Used as ``async with uow_factory() as uow: ...; await uow.commit()``. Leaving the block without ``commit()``
(normally or by an exception) rolls back, so a use case either changes everything it meant to or nothing.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from imagegate.core.ports import (
    FileRepository,
    IdempotencyRepository,
    JobRepository,
    KeyRepository,
    LedgerRepository,
    UnitOfWorkFactory,
    WebhookRepository,
)
from imagegate.persistence.db import session_factory
from imagegate.persistence.idempotency_repository import SqlIdempotencyRepository
from imagegate.persistence.ledger_repository import SqlLedgerRepository
from imagegate.persistence.repositories import SqlFileRepository, SqlJobRepository, SqlKeyRepository
from imagegate.persistence.webhook_repository import SqlWebhookRepository


class SqlUnitOfWork:
    """One transaction over every repository; single use per ``async with`` block."""

    keys: KeyRepository
    jobs: JobRepository
    files: FileRepository
    webhooks: WebhookRepository
    idempotency: IdempotencyRepository
    ledger: LedgerRepository

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("this unit of work is already open; make a new one per transaction")
        session = self._sessions()
        self._session = session
        self.keys = SqlKeyRepository(session)
        self.jobs = SqlJobRepository(session)
        self.files = SqlFileRepository(session)
        self.webhooks = SqlWebhookRepository(session)
        self.idempotency = SqlIdempotencyRepository(session)
        self.ledger = SqlLedgerRepository(session)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session, self._session = self._require_session(), None
        try:
            # After a commit this is a no-op; otherwise it discards whatever was not committed.
            await session.rollback()
        finally:
            await session.close()

    async def commit(self) -> None:
        await self._require_session().commit()

    async def rollback(self) -> None:
        await self._require_session().rollback()

    def _require_session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("use the unit of work inside 'async with'")
        return self._session


class SqlUnitOfWorkFactory:
    """Makes a fresh ``SqlUnitOfWork`` per call: what the services take as a ``UnitOfWorkFactory``."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions)


def unit_of_work_factory(engine: AsyncEngine) -> UnitOfWorkFactory:
    """The composition root's one-liner: a unit-of-work factory over ``engine``."""
    return SqlUnitOfWorkFactory(session_factory(engine))
