"""The idempotency repository keeps claims and answers exactly, and its conditional writes hold on both backends."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from imagegate.core.ports import IdempotencyRecord, UnitOfWorkFactory

from .records import T0

SCOPE = "a" * 64


def claim(key: str = "idem-1", *, token: str = "tok_1", scope: str = SCOPE) -> IdempotencyRecord:
    return IdempotencyRecord(
        scope=scope,
        key=key,
        fingerprint="f" * 64,
        token=token,
        created_at=T0,
        expires_at=T0 + timedelta(hours=24),
    )


def answered(record: IdempotencyRecord) -> IdempotencyRecord:
    return replace(
        record,
        status=200,
        headers=(("content-type", "application/json"), ("x-custom", "é-latin-1")),
        body=bytes(range(256)) * 10_000,  # binary, and megabytes: an answer with inline images
        completed_at=T0 + timedelta(seconds=3),
        expires_at=T0 + timedelta(hours=24, seconds=3),
    )


async def test_a_claim_and_its_answer_round_trip(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        assert await uow.idempotency.add(claim()) is True
        await uow.commit()

    async with uow_factory() as uow:
        stored = await uow.idempotency.get(SCOPE, "idem-1")
        assert stored == claim() and not stored.completed
        assert await uow.idempotency.replace(answered(claim()), expected_token="tok_1") is True
        await uow.commit()

    async with uow_factory() as uow:
        done = await uow.idempotency.get(SCOPE, "idem-1")
        assert done == answered(claim()) and done.completed
        assert await uow.idempotency.get(SCOPE, "other") is None
        assert await uow.idempotency.get("b" * 64, "idem-1") is None


async def test_add_does_not_overwrite_an_existing_entry(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        assert await uow.idempotency.add(claim()) is True
        await uow.commit()

    async with uow_factory() as uow:
        # The transaction stays usable after losing: a lost race is an answer, not an error.
        assert await uow.idempotency.add(claim(token="tok_2")) is False
        assert await uow.idempotency.add(claim(scope="b" * 64, token="tok_3")) is True
        await uow.commit()

    async with uow_factory() as uow:
        first = await uow.idempotency.get(SCOPE, "idem-1")
        other_scope = await uow.idempotency.get("b" * 64, "idem-1")
    assert first is not None and first.token == "tok_1"
    assert other_scope is not None and other_scope.token == "tok_3"


async def test_concurrent_adds_let_exactly_one_win(uow_factory: UnitOfWorkFactory) -> None:
    async def add(token: str) -> bool:
        async with uow_factory() as uow:
            won = await uow.idempotency.add(claim(token=token))
            await uow.commit()
            return won

    results = await asyncio.gather(*(add(f"tok_{i}") for i in range(4)))
    assert sorted(results) == [False, False, False, True]


async def test_replace_and_delete_are_fenced_by_the_token(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        await uow.idempotency.add(claim())
        await uow.commit()

    async with uow_factory() as uow:
        taken_over = replace(claim(token="tok_2"), created_at=T0 + timedelta(minutes=30))
        assert await uow.idempotency.replace(taken_over, expected_token="tok_1") is True
        # The first attempt, back from the dead, can neither answer nor release what is no longer its own.
        assert await uow.idempotency.replace(answered(claim()), expected_token="tok_1") is False
        assert await uow.idempotency.delete(SCOPE, "idem-1", expected_token="tok_1") is False
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.idempotency.get(SCOPE, "idem-1") == taken_over
        assert await uow.idempotency.delete(SCOPE, "idem-1", expected_token="tok_2") is True
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.idempotency.get(SCOPE, "idem-1") is None


async def test_delete_expired_removes_only_entries_past_their_time(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        for i, hours in enumerate((1, 2, 3)):
            await uow.idempotency.add(replace(claim(f"idem-{i}"), expires_at=T0 + timedelta(hours=hours)))
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.idempotency.delete_expired(T0 + timedelta(hours=2, seconds=1)) == 2
        assert await uow.idempotency.delete_expired(T0 + timedelta(hours=2, seconds=1)) == 0
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.idempotency.get(SCOPE, "idem-0") is None
        assert await uow.idempotency.get(SCOPE, "idem-2") is not None
