"""SQLite transactions on the loop's thread never block it: another process's lock, a full pool, checkpoints."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError

from imagegate.core.jobs import JobStatus
from imagegate.core.ports import LedgerEntry
from imagegate.persistence import inline_sqlite
from imagegate.persistence.db import create_engine, upgrade_database
from imagegate.persistence.inline_sqlite import InlineSqlTransaction
from imagegate.persistence.uow import SqlUnitOfWorkFactory, unit_of_work_factory

from .records import T0, finished_job, make_file, make_job, make_key


@pytest.fixture
async def database(tmp_path: Path) -> Path:
    path = tmp_path / "inline.db"
    engine = create_engine(f"sqlite:///{path}")
    await upgrade_database(engine)
    await engine.dispose()
    return path


@pytest.fixture
async def factory(database: Path) -> AsyncIterator[SqlUnitOfWorkFactory]:
    engine = create_engine(f"sqlite:///{database}")
    uow_factory = unit_of_work_factory(engine)
    yield uow_factory
    uow_factory.dispose()
    await engine.dispose()


class Ticker:
    """Counts how often the loop got to run a task while something else was waiting."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self.ticks += 1

    def stop(self) -> None:
        self._task.cancel()


def hold_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another process's writer, as SQLite sees it: a connection of its own holding the lock for a while."""
    locked = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(seconds)
        connection.execute("ROLLBACK")
        connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    locked.wait(5)
    return thread


async def test_the_hot_path_runs_inline_and_a_scan_on_the_thread(factory: SqlUnitOfWorkFactory) -> None:
    async with factory() as uow:
        assert isinstance(uow._require_tx(), InlineSqlTransaction)
    async with factory(scan=True) as uow:
        assert not isinstance(uow._require_tx(), InlineSqlTransaction)


async def test_every_transaction_lets_other_tasks_run(factory: SqlUnitOfWorkFactory) -> None:
    ran = asyncio.Event()
    other = asyncio.create_task(asyncio.sleep(0, result=None))
    other.add_done_callback(lambda _: ran.set())
    for _ in range(3):  # a caller polling in a tight loop, with nothing else to await
        async with factory() as uow:
            await uow.keys.count()
        if ran.is_set():
            break
    assert ran.is_set()


async def test_a_finished_transaction_keeps_its_connection_open_for_the_next(factory: SqlUnitOfWorkFactory) -> None:
    inline = factory._inline
    assert inline is not None
    checkouts = 0

    def counted(*_: object) -> None:
        nonlocal checkouts
        checkouts += 1

    event.listen(inline.engine, "checkout", counted)
    for number in range(5):
        async with factory() as uow:
            await uow.keys.add(make_key(f"key_{number}"))
            await uow.commit()
    assert checkouts == 1  # one connection, kept between transactions
    async with factory() as uow:
        assert await uow.keys.count() == 5


async def test_what_a_transaction_left_uncommitted_is_gone_before_its_connection_serves_the_next(
    factory: SqlUnitOfWorkFactory, database: Path
) -> None:
    async with factory() as uow:
        await uow.keys.add(make_key("key_1"))  # never committed
    async with factory() as uow:
        assert await uow.keys.count() == 0
        await uow.keys.add(make_key("key_2"))
        await uow.commit()
    with sqlite3.connect(database) as other:  # and the kept connection holds no lock: another writer gets in
        other.execute("UPDATE api_keys SET name = 'renamed'")
    async with factory() as uow:
        assert (await uow.keys.get("key_2")).name == "renamed"  # type: ignore[union-attr]


async def test_an_inline_insert_stores_exactly_what_sqlalchemys_insert_stores(
    factory: SqlUnitOfWorkFactory, database: Path
) -> None:
    spec = {"prompt": "a lighthouse", "nested": {"unicode": "phare é 灯台", "big": 2**70, "none": None}}
    for scan, suffix in ((False, "inline"), (True, "threaded")):  # scan=True: SQLAlchemy's own INSERT
        async with factory(scan=scan) as uow:
            if suffix == "inline":
                await uow.keys.add(make_key())
            await uow.jobs.add(finished_job(make_job(f"job_{suffix}", status=JobStatus.RUNNING)), spec)
            await uow.files.add(make_file(f"file_{suffix}", job_id=f"job_{suffix}"))
            entry = LedgerEntry(f"led_{suffix}", "key_1", "hold", 1_250_000, None, T0, job_id=f"job_{suffix}")
            await uow.ledger.add(entry)
            await uow.commit()
    with sqlite3.connect(database) as raw:
        for table, key in (("jobs", "job"), ("files", "file"), ("ledger", "led")):
            stored = {}
            for suffix in ("inline", "threaded"):
                row = raw.execute(f"SELECT * FROM {table} WHERE id = ?", (f"{key}_{suffix}",)).fetchone()
                stored[suffix] = tuple(v.replace(suffix, "*") if isinstance(v, str) else v for v in row)
            assert stored["inline"] == stored["threaded"], table  # the same text, numbers and NULLs
    async with factory() as uow:
        job = await uow.jobs.get("job_inline")
        expected = finished_job(make_job("job_inline", status=JobStatus.RUNNING))
        assert job is not None and job.results == expected.results
        assert await uow.jobs.get_spec_doc("job_inline") == spec


async def test_an_inline_fenced_update_stores_exactly_what_sqlalchemys_update_stores(
    factory: SqlUnitOfWorkFactory, database: Path
) -> None:
    async with factory() as uow:
        await uow.keys.add(make_key())
        for suffix in ("inline", "threaded"):
            await uow.jobs.add(make_job(f"job_{suffix}", status=JobStatus.RUNNING), {})
        await uow.commit()
    for scan, suffix in ((False, "inline"), (True, "threaded")):  # scan=True: SQLAlchemy's own UPDATE
        async with factory(scan=scan) as uow:
            done = finished_job(make_job(f"job_{suffix}", status=JobStatus.RUNNING))
            assert await uow.jobs.update(done, expected_status=JobStatus.RUNNING, expected_attempts=0)
            await uow.commit()
    with sqlite3.connect(database) as raw:
        stored = {}
        for suffix in ("inline", "threaded"):
            row = raw.execute("SELECT * FROM jobs WHERE id = ?", (f"job_{suffix}",)).fetchone()
            stored[suffix] = tuple(v.replace(suffix, "*") if isinstance(v, str) else v for v in row)
        assert stored["inline"] == stored["threaded"]
    async with factory() as uow:
        job = await uow.jobs.get("job_inline")
        assert job is not None and job.status is JobStatus.SUCCEEDED
        assert job.results == finished_job(make_job("job_inline", status=JobStatus.RUNNING)).results


async def test_an_inline_fenced_update_that_misses_the_row_writes_nothing(factory: SqlUnitOfWorkFactory) -> None:
    async with factory() as uow:
        await uow.keys.add(make_key())
        await uow.jobs.add(make_job(status=JobStatus.RUNNING), {})
        await uow.commit()
    done = finished_job(make_job(status=JobStatus.RUNNING))
    async with factory() as uow:  # another worker took the job since: its attempt count moved on
        assert not await uow.jobs.update(done, expected_status=JobStatus.RUNNING, expected_attempts=1)
        assert not await uow.jobs.update(done, expected_status=JobStatus.QUEUED, expected_attempts=0)
        await uow.commit()
    async with factory() as uow:
        job = await uow.jobs.get("job_1")
        assert job is not None and job.status is JobStatus.RUNNING and job.results == ()


def test_a_statement_sqlalchemy_adds_to_at_execution_keeps_sqlalchemys_path() -> None:
    from sqlalchemy import bindparam, column, select, table, update
    from sqlalchemy.dialects import sqlite

    plan = inline_sqlite._DirectPlan.compiled
    things = table("things", column("id"), column("name"))
    dialect = sqlite.dialect()
    fixed = update(things).where(things.c.id == "a").values(name=bindparam("name")).returning(things.c.id)
    assert plan(fixed, dialect) is None  # a value inside the statement: only SQLAlchemy binds it
    expanding = select(things.c.id).where(things.c.id.in_(bindparam("ids", expanding=True)))
    assert plan(expanding, dialect) is None
    reused = update(things).where(things.c.id == bindparam("key")).values(name=bindparam("name"))
    direct = plan(reused, dialect)
    assert direct is not None and direct.names == ("name", "key") and direct.sql.count("?") == 2


async def test_an_inline_insert_breaking_a_constraint_is_sqlalchemys_integrity_error(
    factory: SqlUnitOfWorkFactory,
) -> None:
    async with factory() as uow:
        await uow.keys.add(make_key())
        await uow.jobs.add(make_job(), {})
        await uow.commit()
    async with factory() as uow:
        with pytest.raises(IntegrityError, match="UNIQUE"):
            await uow.jobs.add(make_job(), {})
    async with factory() as uow:  # nothing of it stayed, and the connection serves the next transaction
        await uow.jobs.add(make_job("job_2"), {})
        await uow.commit()
        assert len(await uow.jobs.list_for_key("key_1", limit=10)) == 2


async def test_an_inline_insert_waits_for_another_process_without_blocking_the_loop(
    factory: SqlUnitOfWorkFactory, database: Path
) -> None:
    async with factory() as uow:
        await uow.keys.add(make_key())
        await uow.commit()
    ticker = Ticker()
    holder = hold_write_lock(database, 0.3)
    try:
        async with factory() as uow:
            await uow.jobs.add(make_job(), {})  # busy at first: retried after awaiting
            await uow.commit()
        assert ticker.ticks >= 10
    finally:
        holder.join()
        ticker.stop()
    with sqlite3.connect(database) as other:  # committed: another connection sees it
        assert other.execute("SELECT count(*) FROM jobs WHERE id = 'job_1'").fetchone() == (1,)


async def test_a_write_waits_for_another_process_without_blocking_the_loop(
    factory: SqlUnitOfWorkFactory, database: Path
) -> None:
    holder = hold_write_lock(database, 0.4)
    ticker = Ticker()
    started = time.monotonic()
    try:
        async with factory() as uow:
            await uow.keys.add(make_key("key_1"))
            await uow.commit()
        waited = time.monotonic() - started
    finally:
        ticker.stop()
        holder.join()
    assert waited >= 0.3  # it really waited for the lock
    assert ticker.ticks >= 15  # and the loop went on meanwhile (a blocking wait would allow none)
    async with factory() as uow:
        assert await uow.keys.get("key_1") is not None


async def test_a_lock_held_too_long_fails_the_write_and_keeps_nothing(
    factory: SqlUnitOfWorkFactory, database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline_sqlite, "LOCK_WAIT_S", 0.1)
    holder = hold_write_lock(database, 0.5)
    try:
        async with factory() as uow:
            with pytest.raises(OperationalError, match="locked"):
                await uow.keys.add(make_key("key_1"))
    finally:
        holder.join()
    async with factory() as uow:
        assert await uow.keys.count() == 0
        await uow.keys.add(make_key("key_2"))  # and the connection it used is healthy again
        await uow.commit()


async def test_transactions_past_the_pool_wait_their_turn_without_blocking_the_loop(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline_sqlite, "POOL_SIZE", 2)
    engine = create_engine(f"sqlite:///{database}")
    factory = unit_of_work_factory(engine)
    ticker = Ticker()
    try:
        first, second = factory(), factory()
        async with first, second:
            await first.keys.count()
            await second.keys.count()  # both connections of the pool are taken
            third = asyncio.create_task(_count(factory))
            await asyncio.sleep(0.1)
            assert not third.done() and ticker.ticks >= 5
        assert await asyncio.wait_for(third, 5) == 0
    finally:
        ticker.stop()
        factory.dispose()
        await engine.dispose()


async def _count(factory: SqlUnitOfWorkFactory) -> int:
    async with factory() as uow:
        return await uow.keys.count()


async def test_checkpoints_run_off_the_loop_and_keep_the_log_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def log_size_after_commits(name: str) -> int:
        path = tmp_path / f"{name}.db"
        engine = create_engine(f"sqlite:///{path}")
        await upgrade_database(engine)
        factory = unit_of_work_factory(engine)
        try:
            for index in range(300):
                async with factory() as uow:
                    await uow.keys.add(make_key(f"key_{index}"))
                    await uow.commit()
                if index % 10 == 9:
                    await asyncio.sleep(0.02)  # the checkpoint thread's turn
            return (tmp_path / f"{name}.db-wal").stat().st_size
        finally:
            factory.dispose()
            await engine.dispose()

    monkeypatch.setattr(inline_sqlite, "CHECKPOINT_EVERY", 10**9)
    never = await log_size_after_commits("never")
    monkeypatch.setattr(inline_sqlite, "CHECKPOINT_EVERY", 10)
    often = await log_size_after_commits("often")
    # The inline connections never checkpoint themselves: without ours the log grows with every commit;
    # with ours it is rewound once a checkpoint has copied it into the database.
    assert often * 4 < never


async def test_an_in_memory_database_keeps_the_threaded_path() -> None:
    engine = create_engine("sqlite://")
    await upgrade_database(engine)
    factory = unit_of_work_factory(engine)
    try:
        async with factory() as uow:
            assert not isinstance(uow._require_tx(), InlineSqlTransaction)
    finally:
        factory.dispose()
        await engine.dispose()
