"""One database transaction as the repositories see it: statements on one connection, writes taken in turn.

SQLite lets one transaction write at a time and makes the others wait in its busy handler, which sleeps in
steps of up to 100 ms whatever the writer is doing. Under a burst of writers those sleeps, not the writes, set
the pace, and a writer that sleeps past ``busy_timeout`` fails with "database is locked" (docs/benchmarks.md).
So on SQLite the transactions of one process queue for an asyncio lock before their first write statement and
give it back when they end: the writers inside a process follow each other without sleeping, and SQLite's own
lock only has to settle who writes between processes. PostgreSQL locks rows, not the database: no gate there.

A transaction runs on a Core ``AsyncConnection`` rather than an ORM session: the repositories map rows
themselves, and the session's identity map and unit-of-work machinery cost time on every statement.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Executable, Result, Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class Transaction(Protocol):
    """What the repositories need of a transaction: statements, and its end (``SqlTransaction`` or the
    inline SQLite one in ``inline_sqlite``)."""

    @property
    def dialect_name(self) -> str: ...

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
    ) -> Result[Any]: ...

    async def insert(self, table: Table, row: Mapping[str, Any]) -> None:
        """One row into ``table``: the hot path's inserts (a job, its files, its ledger entries)."""
        ...

    async def matched(self, statement: Executable, parameters: Mapping[str, Any]) -> bool:
        """Run a fenced write (an UPDATE or DELETE with RETURNING, built once and reused): whether it matched a
        row. The hot path's fence at a job's end."""
        ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    async def close(self) -> None: ...


class WriteGate:
    """The one-writer-at-a-time lock of a process, made afresh for each event loop that uses it."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()

    def lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # an asyncio.Lock belongs to the loop it first waited on
            self._loop, self._lock = loop, asyncio.Lock()
        return self._lock


class WriterTurn:
    """A transaction's turn at the ``WriteGate``: taken before its first write, given back when it ends."""

    def __init__(self, gate: WriteGate | None) -> None:
        self._gate = gate
        self._lock: asyncio.Lock | None = None

    async def take(self) -> None:
        if self._gate is not None and self._lock is None:
            lock = self._gate.lock()
            await lock.acquire()
            self._lock = lock

    def give_back(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()


class SqlTransaction:
    """Statements on one pooled connection, in one transaction, until ``commit``, ``rollback`` or ``close``."""

    def __init__(self, engine: AsyncEngine, gate: WriteGate | None) -> None:
        self._engine = engine
        self._turn = WriterTurn(gate)
        self._connection: AsyncConnection | None = None

    @property
    def dialect_name(self) -> str:
        return self._engine.dialect.name

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
    ) -> Result[Any]:
        if self._connection is None:
            self._connection = await self._engine.connect()
        if statement.is_dml:  # connection first, then the turn: the writer holding it never waits for the pool
            await self._turn.take()
        return await self._connection.execute(statement, parameters)

    async def insert(self, table: Table, row: Mapping[str, Any]) -> None:
        await self.execute(insert(table), [row])  # parameters apart: the compiled INSERT is reused

    async def matched(self, statement: Executable, parameters: Mapping[str, Any]) -> bool:
        return (await self.execute(statement, parameters)).first() is not None

    async def commit(self) -> None:
        try:
            if self._connection is not None:
                await self._connection.commit()
        finally:
            self._turn.give_back()

    async def rollback(self) -> None:
        try:
            if self._connection is not None:
                await self._connection.rollback()
        finally:
            self._turn.give_back()

    async def close(self) -> None:
        """Give the connection back to the pool (rolling back whatever was not committed)."""
        connection, self._connection = self._connection, None
        try:
            if connection is not None:
                await connection.close()
        finally:
            self._turn.give_back()
