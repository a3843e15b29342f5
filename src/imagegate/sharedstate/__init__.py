"""State that must hold across processes, chosen by ``rate_limit_url``: quotas, concurrency slots, breakers, stats.

``memory://`` (the default) keeps everything in the process, as one embedded server needs. ``redis://...``
shares it through Redis; see ``link`` for how an outage fails open to each process's local share.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from imagegate.core.ports import RequestQuota
from imagegate.metrics import Metrics
from imagegate.routing.router import Router
from imagegate.sharedstate.health import FleetHealth
from imagegate.sharedstate.link import ACCEPTS, RUNS, RedisLink
from imagegate.sharedstate.quotas import KeyQuota
from imagegate.sharedstate.slots import RedisSlots

__all__ = ["FleetHealth", "KeyQuota", "RedisLink", "RedisSlots", "SharedState", "open_shared_state"]


@dataclass
class SharedState:
    quota: RequestQuota | None
    link: RedisLink | None = None
    fleet: FleetHealth | None = None

    async def aclose(self) -> None:
        if self.fleet is not None:
            await self.fleet.aclose()
        if self.link is not None:
            await self.link.aclose()


async def open_shared_state(
    url: str,
    router: Router,
    *,
    per_minute: int,
    metrics: Metrics | None = None,
    slot_lease_s: float = 30.0,
    roles: frozenset[str] = frozenset({ACCEPTS, RUNS}),
) -> SharedState:
    """Wire quotas (``per_minute`` > 0), slots and the health observer into ``router`` for ``url``; ``roles``:
    what this process does (it shares those limits with the processes that do the same)."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return SharedState(KeyQuota(per_minute) if per_minute else None)
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"rate_limit_url {url!r}: use memory:// or redis://host:port/db (rediss:// for TLS)")
    link = RedisLink(url, roles=roles)
    await link.start()  # an unreachable Redis is not fatal: limits start on their local share
    slots = RedisSlots(link, lease_s=slot_lease_s)
    router.slots = slots
    fleet = FleetHealth(link, router, slots, metrics=metrics)
    router.observer = fleet
    await fleet.start()
    return SharedState(KeyQuota(per_minute, link=link) if per_minute else None, link, fleet)
