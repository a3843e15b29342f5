"""What a key has: its balance and holds, and what it spent by day and model (admins see every key)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from imagegate.core.ports import ApiKey, LedgerEntry
from imagegate.errors import NotFound
from imagegate.services.context import Services


@dataclass(frozen=True)
class Account:
    key: ApiKey
    held: int
    spent: int


@dataclass(frozen=True)
class UsageRow:
    day: str  # YYYY-MM-DD, UTC
    model: str
    key_id: str
    requests: int
    images: int
    input_tokens: int
    output_tokens: int
    spend: int


async def account(svc: Services, principal: ApiKey) -> Account:
    async with svc.uow(scan=True) as uow:
        key = await uow.keys.get(principal.id)
        held = await uow.ledger.held(principal.id)
        captures = await uow.ledger.captures(principal.id)
    if key is None:
        raise NotFound("this key no longer exists")
    return Account(key, held, sum(c.amount for c in captures))


async def usage(
    svc: Services, principal: ApiKey, *, since: datetime | None = None, key_id: str | None = None
) -> list[UsageRow]:
    """Settled requests by (day, model, key), oldest first. A non-admin key sees only itself."""
    scope = key_id if principal.is_admin else principal.id
    async with svc.uow(scan=True) as uow:
        captures = await uow.ledger.captures(scope, since)
    totals: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for entry in captures:
        row = totals[(entry.created_at.date().isoformat(), entry.model or "", entry.key_id)]
        for index, value in enumerate((1, entry.images, entry.input_tokens, entry.output_tokens, entry.amount)):
            row[index] += value
    return [UsageRow(day, model, key, *values) for (day, model, key), values in sorted(totals.items())]


async def ledger_entries(svc: Services, principal: ApiKey, *, since: datetime | None = None) -> list[LedgerEntry]:
    """Every movement of money since ``since``: all keys' for an admin, the key's own otherwise."""
    async with svc.uow(scan=True) as uow:
        return await uow.ledger.entries(None if principal.is_admin else principal.id, since)
