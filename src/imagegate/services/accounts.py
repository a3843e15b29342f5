"""API keys: create, list, revoke, and authenticate a presented key.

A presented key is checked for shape and checksum first (no database query for garbage), then looked up
by its hash (in this process's short-lived cache of verified keys, else the database) and compared in
constant time. Every change to a key clears that cache.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, replace

from imagegate.core.ids import new_id
from imagegate.core.keys import display_prefix, generate_key, hash_key, is_well_formed
from imagegate.core.money import MAX_MICROS, format_amount
from imagegate.core.ports import ApiKey
from imagegate.errors import InvalidApiKey, InvalidRequest, MissingApiKey, NotFound
from imagegate.services.billing import grant_credits
from imagegate.services.context import Services
from imagegate.services.inputs import check_text


@dataclass(frozen=True)
class CreatedKey:
    record: ApiKey
    key: str  # shown once, never stored


async def create_key(svc: Services, *, name: str, credits: int | None = None, is_admin: bool = False) -> CreatedKey:
    """A new key. With ``credits`` (even 0) it is metered: requests must be covered by its balance."""
    check_text(name, "name")
    if credits is not None and credits > MAX_MICROS:
        raise InvalidRequest(f"credits may be at most {format_amount(MAX_MICROS)}", field="credits")
    raw = generate_key()
    record = ApiKey(
        id=new_id("key"),
        name=name,
        prefix=display_prefix(raw),
        key_hash=hash_key(raw),
        credits=0,
        is_admin=is_admin,
        created_at=svc.clock(),
        metered=credits is not None,
    )
    async with svc.uow() as uow:
        await uow.keys.add(record)
        if credits:
            await grant_credits(uow, record.id, credits, record.created_at)
        await uow.commit()
    svc.key_cache.clear()
    return CreatedKey(replace(record, credits=credits or 0), raw)


async def add_credits(svc: Services, key_id: str, amount: int) -> int:
    """Grant ``amount`` to a key (which is metered from now on); its new balance."""
    if amount <= 0:
        raise InvalidRequest("the amount must be positive", field="amount")
    async with svc.uow() as uow:
        current = await uow.keys.get(key_id)
        if current is not None and current.credits + amount > MAX_MICROS:
            limit = format_amount(MAX_MICROS)
            raise InvalidRequest(f"a balance may be at most {limit}; this grant would exceed it", field="amount")
        balance = await grant_credits(uow, key_id, amount, svc.clock())
        if balance is None:
            raise NotFound(f"no key with id {key_id}")
        await uow.commit()
    svc.key_cache.clear()  # the key is metered from now on
    return balance


async def list_keys(svc: Services) -> list[ApiKey]:
    async with svc.uow(scan=True) as uow:
        return await uow.keys.list()


async def revoke_key(svc: Services, key_id: str) -> None:
    async with svc.uow() as uow:
        if not await uow.keys.revoke(key_id, svc.clock()):
            raise NotFound(f"no active key with id {key_id}")
        await uow.commit()
    svc.key_cache.clear()


async def ensure_admin_key(svc: Services) -> CreatedKey | None:
    """On an empty database, the first admin key (returned so it can be printed once); otherwise None."""
    async with svc.uow() as uow:
        if await uow.keys.count() > 0:
            return None
    return await create_key(svc, name="admin", is_admin=True)


async def authenticate(svc: Services, presented: str | None) -> ApiKey:
    if not presented:
        raise MissingApiKey("no API key")
    presented = presented.strip()
    if not is_well_formed(presented):
        raise InvalidApiKey("API key not valid. Please pass a valid API key.")
    digest = hash_key(presented)
    record = svc.key_cache.get(digest)
    if record is None:
        async with svc.uow() as uow:
            record = await uow.keys.find_by_hash(digest)
        if record is not None and record.active:
            svc.key_cache.put(record)
    if record is None or not hmac.compare_digest(record.key_hash, digest) or not record.active:
        raise InvalidApiKey("API key not valid. Please pass a valid API key.")
    return record
