"""On SQLite a process's transactions write one after another (no busy-handler sleeps); reads never wait."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.ports import UnitOfWorkFactory
from imagegate.persistence.db import create_engine, upgrade_database
from imagegate.persistence.uow import unit_of_work_factory

from .records import make_key


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite:///{tmp_path / 'gate.db'}")
    await upgrade_database(engine)
    return engine


async def test_a_second_writer_waits_for_the_first_to_commit(sqlite_engine: AsyncEngine) -> None:
    uow_factory = unit_of_work_factory(sqlite_engine)
    order: list[str] = []

    async def second() -> None:
        async with uow_factory() as uow:
            await uow.keys.add(make_key("key_2"))
            order.append("second wrote")
            await uow.commit()

    try:
        async with uow_factory() as first:
            await first.keys.add(make_key("key_1"))
            rival = asyncio.create_task(second())
            await asyncio.sleep(0.05)
            assert order == []  # parked at the gate, not inside SQLite's busy handler
            order.append("first commits")
            await first.commit()
        await asyncio.wait_for(rival, 5)
        assert order == ["first commits", "second wrote"]
    finally:
        await sqlite_engine.dispose()


async def test_reads_pass_while_a_writer_holds_the_gate(sqlite_engine: AsyncEngine) -> None:
    uow_factory = unit_of_work_factory(sqlite_engine)
    try:
        async with uow_factory() as writer:
            await writer.keys.add(make_key("key_1"))
            async with uow_factory() as reader:
                assert await asyncio.wait_for(reader.keys.count(), 5) == 0  # WAL: the reader sees the last commit
            await writer.commit()
    finally:
        await sqlite_engine.dispose()


@pytest.mark.parametrize("ending", ["rollback", "exception", "no commit"])
async def test_the_gate_reopens_however_a_writer_ends(sqlite_engine: AsyncEngine, ending: str) -> None:
    uow_factory = unit_of_work_factory(sqlite_engine)
    try:
        with pytest.raises(RuntimeError) if ending == "exception" else contextlib.nullcontext():
            async with uow_factory() as uow:
                await uow.keys.add(make_key("key_1"))
                if ending == "rollback":
                    await uow.rollback()
                elif ending == "exception":
                    raise RuntimeError("the use case failed")
        async with uow_factory() as uow:
            await asyncio.wait_for(uow.keys.add(make_key("key_1")), 5)  # the first write was undone
            await uow.commit()
    finally:
        await sqlite_engine.dispose()


async def test_a_writer_can_write_again_after_its_commit(sqlite_engine: AsyncEngine) -> None:
    uow_factory = unit_of_work_factory(sqlite_engine)
    try:
        async with uow_factory() as uow:
            await uow.keys.add(make_key("key_1"))
            await uow.commit()
            await asyncio.wait_for(uow.keys.add(make_key("key_2")), 5)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.keys.count() == 2
    finally:
        await sqlite_engine.dispose()


async def test_many_concurrent_writers_never_see_database_is_locked(sqlite_engine: AsyncEngine) -> None:
    """200 writers at once through a pool of 15 connections: all land, in turn."""
    uow_factory: UnitOfWorkFactory = unit_of_work_factory(sqlite_engine)

    async def write(number: int) -> None:
        async with uow_factory() as uow:
            await uow.keys.add(make_key(f"key_{number}"))
            await asyncio.sleep(0)  # let the others pile up at the gate while this one holds it
            await uow.commit()

    try:
        await asyncio.gather(*(write(n) for n in range(200)))
        async with uow_factory() as uow:
            assert await uow.keys.count() == 200
    finally:
        await sqlite_engine.dispose()


def test_postgresql_has_no_gate() -> None:
    engine = create_engine("postgresql://user@localhost/none")
    factory = unit_of_work_factory(engine)
    assert getattr(factory, "_gate", "absent") is None
