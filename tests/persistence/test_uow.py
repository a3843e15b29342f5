"""The SQL unit of work commits everything or nothing: only an explicit ``commit()`` makes changes last."""

from __future__ import annotations

import pytest

from imagegate.core.ports import UnitOfWorkFactory

from .records import SPEC_DOC, make_job, make_key


class Boom(Exception):
    pass


async def _key_count(uow_factory: UnitOfWorkFactory) -> int:
    async with uow_factory() as uow:
        return await uow.keys.count()


async def test_commit_makes_changes_last(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        await uow.keys.add(make_key("key_1"))
        await uow.jobs.add(make_job(key_id="key_1"), SPEC_DOC)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.keys.count() == 1
        assert await uow.jobs.get("job_1") is not None


async def test_leaving_without_commit_rolls_back(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        await uow.keys.add(make_key("key_1"))
    assert await _key_count(uow_factory) == 0


async def test_an_exception_rolls_back_and_propagates(uow_factory: UnitOfWorkFactory) -> None:
    async def add_then_fail() -> None:
        async with uow_factory() as uow:
            await uow.keys.add(make_key("key_1"))
            await uow.jobs.add(make_job(key_id="key_1"), SPEC_DOC)
            raise Boom

    with pytest.raises(Boom):
        await add_then_fail()
    async with uow_factory() as uow:
        assert await uow.keys.count() == 0
        assert await uow.jobs.get("job_1") is None


async def test_explicit_rollback_discards_only_uncommitted_work(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        await uow.keys.add(make_key("key_1"))
        await uow.commit()
        await uow.keys.add(make_key("key_2"))
        await uow.rollback()
        assert await uow.keys.count() == 1
        await uow.keys.add(make_key("key_3"))
        await uow.commit()
        await uow.keys.add(make_key("key_4"))  # never committed: gone when the block ends
    async with uow_factory() as uow:
        assert [key.id for key in await uow.keys.list()] == ["key_1", "key_3"]


async def test_work_is_invisible_to_others_until_committed(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as writer:
        await writer.keys.add(make_key("key_1"))
        assert await _key_count(uow_factory) == 0
        await writer.commit()
        assert await _key_count(uow_factory) == 1


async def test_a_unit_of_work_is_opened_once(uow_factory: UnitOfWorkFactory) -> None:
    uow = uow_factory()
    with pytest.raises(RuntimeError, match="inside 'async with'"):
        await uow.commit()
    async with uow:
        with pytest.raises(RuntimeError, match="already open"):
            await uow.__aenter__()
