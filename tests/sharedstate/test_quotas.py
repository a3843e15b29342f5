"""Per-key quotas in memory and through a real Redis shared by several limiters (as by several processes)."""

from __future__ import annotations

import pytest

from backend_servers import RedisServer
from imagegate.errors import RateLimited
from imagegate.sharedstate import KeyQuota, RedisLink
from imagegate.sharedstate.link import ACCEPTS, RUNS


async def test_a_burst_up_to_the_quota_then_a_retry_delay() -> None:
    quota = KeyQuota(3)
    for _ in range(3):
        await quota.check("k")
    with pytest.raises(RateLimited) as caught:
        await quota.check("k")
    assert caught.value.retry_after_s is not None and 0 < caught.value.retry_after_s <= 60
    await quota.check("other")  # keys have their own windows


async def test_processes_share_one_quota_through_redis(link: RedisLink, redis_server: RedisServer) -> None:
    other = RedisLink(redis_server.url)  # a second process
    await other.start()
    try:
        here, there = KeyQuota(4, link=link), KeyQuota(4, link=other)
        for quota in (here, there, here, there):
            await quota.check("k")
        for quota in (here, there):
            with pytest.raises(RateLimited, match="quota of 4 requests per minute"):
                await quota.check("k")
        await there.check("another key")
    finally:
        await other.aclose()


async def test_redis_down_fails_open_to_the_local_share_then_recovers(own_redis: RedisServer) -> None:
    links = [RedisLink(own_redis.url, retry_s=0.0) for _ in range(2)]
    for made in links:
        await made.start()
    await links[0].beat()  # sees both processes
    assert links[0].live_processes == 2
    quota = KeyQuota(6, link=links[0])
    await quota.check("k")  # one taken from the shared window

    own_redis.stop()
    for _ in range(3):  # half of 6: this process's share while it cannot ask Redis
        await quota.check("k")
    with pytest.raises(RateLimited):
        await quota.check("k")
    assert not links[0].up or links[0].outages == 1

    own_redis.start()  # an empty Redis on the same port: the shared window starts again
    await links[0].beat()
    assert links[0].up
    for _ in range(6):
        await quota.check("k")
    with pytest.raises(RateLimited):
        await quota.check("k")
    for made in links:
        await made.aclose()


async def test_a_limit_is_shared_only_among_the_processes_that_enforce_it(redis_server: RedisServer) -> None:
    """An API process and a worker: while Redis is down the API process keeps the whole quota (the worker
    accepts no request), and the worker the whole concurrency (the API process runs no job)."""
    api = RedisLink(redis_server.url, roles=frozenset({ACCEPTS}))
    worker = RedisLink(redis_server.url, roles=frozenset({RUNS}))
    await api.client.flushdb()  # no process left registered by an earlier test
    for made in (api, worker):
        await made.start()
    await api.beat()
    try:
        assert api.live_processes == 2 and api.role_processes == {ACCEPTS: 1}
        assert (api.local_share(6, ACCEPTS), worker.local_share(8, RUNS)) == (6, 8)
        both = RedisLink(redis_server.url)  # a serve process that also runs jobs
        await both.start()
        await api.beat()
        await worker.beat()
        assert (api.local_share(6, ACCEPTS), worker.local_share(8, RUNS)) == (3, 4)
        await both.aclose()
    finally:
        for made in (api, worker):
            await made.aclose()
