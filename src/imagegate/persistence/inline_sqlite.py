"""SQLite transactions run on the event loop's own thread: no thread hop per statement.

A hot-path statement on SQLite (insert a job, claim it, fence its end) costs tens of microseconds; carrying
it to aiosqlite's thread and back costs more than that, twice per statement, plus SQLAlchemy's greenlet
bridge (docs/benchmarks.md, issue #18). So short transactions use plain ``sqlite3`` through a synchronous
SQLAlchemy engine, called directly from the loop. What could block the loop is kept off it:

- **Waiting for another process's write lock.** These connections have ``busy_timeout=0``: SQLite answers
  "busy" at once and the transaction awaits ``asyncio.sleep`` before trying again (writers inside one
  process already take turns through the ``WriteGate``). ``sqlite3`` begins a transaction only at its first
  write, and under WAL a transaction that holds the write lock is never busy, so "busy" can only come
  before or at that first write, when nothing was changed yet: retrying the statement is safe.
- **fsync.** Under WAL with ``synchronous=NORMAL`` a commit only appends to the log; the syncs happen at
  checkpoints. These connections never checkpoint themselves (``wal_autocheckpoint=0``); a checkpoint runs
  on a worker thread every ``CHECKPOINT_EVERY`` commits.
- **Waiting for a pooled connection.** Checkout waits on an ``asyncio.Semaphore`` sized to the pool, so the
  synchronous pool always has a connection ready and never blocks.

A finished transaction's SQLAlchemy ``Connection`` is kept open for the next one instead of being returned to
the pool: a checkout and its reset on return cost ~0.1 ms per transaction, three per image request. The hot
path's single-row inserts (``insert``) go to the ``sqlite3`` connection directly, with the SQL and the column
types' bind processing SQLAlchemy would use, prepared once per table and column set: through SQLAlchemy's
execution machinery an insert costs 20 µs warm and 165-345 µs with cold caches, directly 8 and ~90 µs
(micro-timing of the ledger insert).

Each transaction still yields to the loop once, as a thread hop did, so a caller looping over short
transactions cannot starve other tasks. Long reads (usage sums, listings, sweeps) ask for ``scan=True`` and
keep the threaded ``aiosqlite`` path.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Dialect, Engine, Executable, Result, Table, create_engine, event, insert
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError

from imagegate.persistence.db import JSON_CODEC, set_sqlite_pragmas
from imagegate.persistence.transaction import WriteGate, WriterTurn

log = logging.getLogger(__name__)
T = TypeVar("T")

POOL_SIZE = 64
CHECKPOINT_EVERY = 200
#: How long a write waits for another process's lock before failing, as ``busy_timeout`` does elsewhere.
LOCK_WAIT_S = 30.0
_FIRST_RETRY_S = 0.001
_MAX_RETRY_S = 0.05


def inline_capable(url: URL) -> bool:
    """True for a SQLite database in a file, which a second engine can open (an in-memory one it cannot)."""
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and database not in ("", ":memory:") and not database.startswith("file:")


class InlineSqlite:
    """A synchronous engine over the same SQLite file, its connection limit and its checkpoints."""

    def __init__(self, url: URL) -> None:
        # The semaphore below is the limit; the pool itself never makes a checkout wait (that would block the loop).
        self.engine: Engine = create_engine(
            url.set(drivername="sqlite+pysqlite"), pool_size=POOL_SIZE, max_overflow=-1, **JSON_CODEC
        )
        event.listen(self.engine, "connect", _tune)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(POOL_SIZE)
        self._idle: list[Connection] = []  # open, outside any transaction, ready for the next one
        self._insert_plans: dict[tuple[str, tuple[str, ...]], _DirectPlan | None] = {}
        self._statement_plans: dict[Executable, _DirectPlan | None] = {}
        self._commits = 0
        self._checkpoint: asyncio.Task[None] | None = None

    async def connect(self) -> Connection:
        # A transaction stays a point where other tasks get their turn, as it was with a thread hop: a caller
        # that loops over short transactions (polling a job in-process) must not starve the job it waits for.
        await asyncio.sleep(0)
        slots = self._slots_of_this_loop()
        await slots.acquire()
        try:
            return self._idle.pop() if self._idle else self.engine.connect()
        except BaseException:
            slots.release()
            raise

    def release(self, connection: Connection) -> None:
        try:
            if connection.in_transaction():
                connection.rollback()  # what was not committed is dropped, as closing would
            if connection.invalidated or connection.closed:
                connection.close()
            else:
                self._idle.append(connection)
        except BaseException:
            connection.close()  # a connection that failed to roll back is not reused
            raise
        finally:
            self._slots_of_this_loop().release()

    def insert_plan(self, table: Table, columns: tuple[str, ...]) -> _DirectPlan | None:
        """How to insert a row of these columns into ``table`` directly; None when SQLAlchemy must."""
        key = (table.name, columns)
        if key not in self._insert_plans:
            self._insert_plans[key] = _DirectPlan.insert(table, columns, self.engine.dialect)
        return self._insert_plans[key]

    def statement_plan(self, statement: Executable) -> _DirectPlan | None:
        """How to run ``statement`` (one built once and reused, so the cache stays small) directly; None when
        SQLAlchemy must."""
        if statement not in self._statement_plans:
            self._statement_plans[statement] = _DirectPlan.compiled(statement, self.engine.dialect)
        return self._statement_plans[statement]

    def _slots_of_this_loop(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # an asyncio primitive belongs to the loop it first waited on (as WriteGate)
            self._loop, self._slots = loop, asyncio.Semaphore(POOL_SIZE)
        return self._slots

    def committed(self) -> None:
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY and (self._checkpoint is None or self._checkpoint.done()):
            self._commits = 0
            self._checkpoint = asyncio.get_running_loop().create_task(asyncio.to_thread(self._run_checkpoint))

    def dispose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        self.engine.dispose()

    def _run_checkpoint(self) -> None:
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:  # a checkpoint is housekeeping: the next one catches up
            log.warning("SQLite checkpoint failed", exc_info=True)


@dataclass(frozen=True, slots=True)
class _DirectPlan:
    """A statement as SQLAlchemy would send it to ``sqlite3``: its SQL, the parameter each ``?`` takes, and each
    one's bind processing."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def insert(cls, table: Table, columns: tuple[str, ...], dialect: Dialect) -> _DirectPlan | None:
        """A single-row INSERT of ``columns``; None when a column left out has a Python-side default that only
        SQLAlchemy's INSERT fills in."""
        given = set(columns)
        if any(column.default is not None for column in table.columns if column.name not in given):
            return None
        quote = dialect.identifier_preparer
        names = ", ".join(quote.quote(name) for name in columns)
        sql = f"INSERT INTO {quote.format_table(table)} ({names}) VALUES ({', '.join('?' * len(columns))})"
        # the type as this dialect has it (SQLite's DATETIME renders a string), decorators' own conversion included
        processors = tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns)
        return cls(sql, columns, processors)

    @classmethod
    def compiled(cls, statement: Executable, dialect: Dialect) -> _DirectPlan | None:
        """``statement`` compiled once; None when SQLAlchemy adds to it at execution (a Python-side ``onupdate``,
        an expanding IN, a literal rendered per call) or a parameter has a fixed value, which only it fills in."""
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        names = tuple(compiled.positiontup or ())
        binds = [compiled.binds.get(name) for name in names]
        if any(b is None or b.expanding or b.literal_execute or b.value is not None or b.callable for b in binds):
            return None
        processors = tuple(b.type.dialect_impl(dialect).bind_processor(dialect) for b in binds)
        return cls(compiled.string, names, processors)

    def run(self, connection: Connection, parameters: Mapping[str, Any]) -> sqlite3.Cursor:
        values = tuple(
            parameters[name] if process is None else process(parameters[name])
            for name, process in zip(self.names, self.processors, strict=True)
        )
        if not connection.in_transaction():
            connection.begin()  # so that SQLAlchemy's commit commits it: sqlite3 itself begins at the write
        try:
            return connection.connection.driver_connection.execute(self.sql, values)  # type: ignore[union-attr,no-any-return]
        except sqlite3.Error as exc:  # the same errors SQLAlchemy raises (IntegrityError, OperationalError, ...)
            raise DBAPIError.instance(self.sql, values, exc, sqlite3.Error) from exc


def _tune(dbapi_connection: Any, record: Any) -> None:
    set_sqlite_pragmas(dbapi_connection, record)  # as every imagegate connection (WAL, foreign keys, sync level)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run on a worker thread (``committed``)
        cursor.execute("PRAGMA busy_timeout=0")  # "busy" at once; the transaction awaits and tries again
    finally:
        cursor.close()


def _is_busy(exc: OperationalError) -> bool:
    orig = exc.orig
    return isinstance(orig, sqlite3.OperationalError) and getattr(orig, "sqlite_errorcode", None) in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    )


class InlineSqlTransaction:
    """``SqlTransaction``'s interface over a synchronous connection called on the loop's thread."""

    def __init__(self, inline: InlineSqlite, gate: WriteGate | None) -> None:
        self._inline = inline
        self._turn = WriterTurn(gate)
        self._connection: Connection | None = None
        self._wrote = False

    @property
    def dialect_name(self) -> str:
        return "sqlite"

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
    ) -> Result[Any]:
        if self._connection is None:
            self._connection = await self._inline.connect()
        if statement.is_dml:
            await self._turn.take()
        if self._wrote:  # this transaction holds SQLite's write lock: nothing can be busy any more
            return self._connection.execute(statement, parameters)
        connection = self._connection
        result = await self._until_not_busy(lambda: connection.execute(statement, parameters))
        self._wrote = statement.is_dml
        return result

    async def insert(self, table: Table, row: Mapping[str, Any]) -> None:
        plan = self._inline.insert_plan(table, tuple(row))
        if plan is None:
            await self.execute(insert(table), [row])
        else:
            await self._write(plan, row)

    async def matched(self, statement: Executable, parameters: Mapping[str, Any]) -> bool:
        plan = self._inline.statement_plan(statement)
        if plan is None:
            return (await self.execute(statement, parameters)).first() is not None
        return bool((await self._write(plan, parameters)).fetchall())

    async def _write(self, plan: _DirectPlan, parameters: Mapping[str, Any]) -> sqlite3.Cursor:
        if self._connection is None:
            self._connection = await self._inline.connect()
        await self._turn.take()
        connection = self._connection
        if self._wrote:
            return plan.run(connection, parameters)
        cursor = await self._until_not_busy(lambda: plan.run(connection, parameters))
        self._wrote = True
        return cursor

    async def _until_not_busy(self, run: Callable[[], T]) -> T:
        """A statement before the transaction's first write: retried while SQLite says "busy" (another process
        holds the write lock, or is recovering the log), awaiting between tries instead of blocking the loop."""
        deadline = time.monotonic() + LOCK_WAIT_S
        delay = _FIRST_RETRY_S
        while True:
            try:
                return run()
            except OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_S)

    async def commit(self) -> None:
        try:
            if self._connection is not None:
                self._connection.commit()
                if self._wrote:
                    self._inline.committed()
        finally:
            self._wrote = False
            self._turn.give_back()

    async def rollback(self) -> None:
        try:
            if self._connection is not None:
                self._connection.rollback()
        finally:
            self._wrote = False
            self._turn.give_back()

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        try:
            if connection is not None:
                self._inline.release(connection)
        finally:
            self._turn.give_back()
