"""Deployment concurrency across processes: leased Redis slots, freed by a killed holder's lease running out."""

from __future__ import annotations

import asyncio

from backend_servers import RedisServer
from imagegate.sharedstate import RedisLink, RedisSlots
from imagegate.sharedstate.slots import slot_key


async def test_two_processes_never_exceed_the_limit_together(link: RedisLink, redis_server: RedisServer) -> None:
    other = RedisLink(redis_server.url)
    await other.start()
    slots = [RedisSlots(link), RedisSlots(other)]
    running = 0
    most = 0
    release = asyncio.Event()

    async def call(i: int) -> None:
        nonlocal running, most
        async with slots[i % 2].hold("dep", 3):
            running += 1
            most = max(most, running)
            if running == 3:
                release.set()
            await release.wait()
            await asyncio.sleep(0)
            running -= 1

    await asyncio.gather(*(call(i) for i in range(10)))
    assert most == 3
    assert await slots[0].fleet_in_use(["dep"]) == {"dep": 0}
    await other.aclose()


async def test_a_killed_holder_frees_its_slot_when_its_lease_ends(link: RedisLink) -> None:
    # a process that died holding the only slot: its member is there, with a lease that has run out
    await link.client.zadd(slot_key("dep"), {"dead-process:token": 0})
    slots = RedisSlots(link, lease_s=5)
    async with asyncio.timeout(5):
        async with slots.hold("dep", 1):
            assert await slots.fleet_in_use(["dep"]) == {"dep": 1}


async def test_a_live_holder_keeps_its_slot_by_renewing(link: RedisLink) -> None:
    slots = RedisSlots(link, lease_s=0.3)  # renewed every 0.1 s
    waiter = RedisSlots(link, lease_s=0.3)
    async with slots.hold("dep", 1):
        blocked = asyncio.create_task(_take(waiter))
        done, _ = await asyncio.wait({blocked}, timeout=0.8)  # well past one lease: still held
        assert not done
    await asyncio.wait_for(blocked, 5)


async def _take(slots: RedisSlots) -> None:
    async with slots.hold("dep", 1):
        pass


async def test_redis_down_fails_open_to_a_local_share(own_redis: RedisServer) -> None:
    link = RedisLink(own_redis.url, retry_s=0.0)
    await link.start()
    link.role_processes = {"accepts": 2, "runs": 2}  # as the heartbeat would have seen with a second process
    slots = RedisSlots(link)
    own_redis.stop()
    running = 0
    most = 0
    gate = asyncio.Event()

    async def call() -> None:
        nonlocal running, most
        async with slots.hold("dep", 4):
            running += 1
            most = max(most, running)
            if running == 2:
                gate.set()
            await gate.wait()
            running -= 1

    await asyncio.wait_for(asyncio.gather(*(call() for _ in range(6))), 5)
    assert most == 2  # half of 4 while alone
    own_redis.start()
    await link.beat()
    async with slots.hold("dep", 4):
        assert await slots.fleet_in_use(["dep"]) == {"dep": 1}  # back on the shared slots
    await link.aclose()
