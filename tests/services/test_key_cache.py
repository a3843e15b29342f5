"""Verified keys are trusted for a few seconds without a read; any change made here is seen at once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from imagegate.core.ports import ApiKey
from imagegate.errors import InvalidApiKey
from imagegate.services import accounts
from imagegate.services.context import Services
from imagegate.services.key_cache import KeyCache

from .conftest import ServicesFactory


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _record(key_hash: str) -> ApiKey:
    return ApiKey(
        id=f"key_{key_hash}",
        name="k",
        prefix="ig-",
        key_hash=key_hash,
        credits=0,
        is_admin=False,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_an_entry_lives_its_ttl() -> None:
    clock = _Clock()
    cache = KeyCache(5.0, clock=clock)
    cache.put(_record("h1"))
    clock.now += 4.9
    assert cache.get("h1") == _record("h1")
    clock.now += 0.1
    assert cache.get("h1") is None
    assert len(cache) == 0


def test_the_oldest_entry_goes_when_full() -> None:
    cache = KeyCache(60.0, max_entries=2)
    for name in ("h1", "h2", "h3"):
        cache.put(_record(name))
    assert [cache.get(n) is not None for n in ("h1", "h2", "h3")] == [False, True, True]


def test_a_ttl_of_zero_caches_nothing() -> None:
    cache = KeyCache(0)
    cache.put(_record("h1"))
    assert cache.get("h1") is None


async def _revoke_behind_our_back(svc: Services, key_id: str) -> None:
    """What another imagegate process (or the CLI) does: the row changes, this process's cache does not know."""
    async with svc.uow() as uow:
        assert await uow.keys.revoke(key_id, svc.clock())
        await uow.commit()


async def test_a_key_revoked_elsewhere_works_until_its_entry_expires(make_services: ServicesFactory) -> None:
    clock = _Clock()
    svc = replace(make_services(), key_cache=KeyCache(5.0, clock=clock))
    created = await accounts.create_key(svc, name="t")
    assert (await accounts.authenticate(svc, created.key)).id == created.record.id  # read, then cached
    await _revoke_behind_our_back(svc, created.record.id)
    assert (await accounts.authenticate(svc, created.key)).id == created.record.id  # from the cache
    clock.now += 5
    with pytest.raises(InvalidApiKey):
        await accounts.authenticate(svc, created.key)


async def test_a_key_revoked_here_stops_working_at_once(make_services: ServicesFactory) -> None:
    svc = replace(make_services(), key_cache=KeyCache(60.0))
    created = await accounts.create_key(svc, name="t")
    await accounts.authenticate(svc, created.key)
    await accounts.revoke_key(svc, created.record.id)
    with pytest.raises(InvalidApiKey):
        await accounts.authenticate(svc, created.key)


async def test_credits_granted_here_meter_the_key_at_once(make_services: ServicesFactory) -> None:
    svc = replace(make_services(), key_cache=KeyCache(60.0))
    created = await accounts.create_key(svc, name="t")
    assert not (await accounts.authenticate(svc, created.key)).metered
    await accounts.add_credits(svc, created.record.id, 1_000_000)
    assert (await accounts.authenticate(svc, created.key)).metered


async def test_unknown_keys_are_not_cached(make_services: ServicesFactory) -> None:
    svc = replace(make_services(), key_cache=KeyCache(60.0))
    created = await accounts.create_key(svc, name="t")
    await _revoke_behind_our_back(svc, created.record.id)
    with pytest.raises(InvalidApiKey):
        await accounts.authenticate(svc, created.key)
    assert len(svc.key_cache) == 0
