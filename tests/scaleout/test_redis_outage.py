"""Redis dying under a real fleet on the database queue (two ``serve``, two ``worker`` on a fresh PostgreSQL
database, a Redis the test starts on its own port): the quota fails open to each API process's share (the
workers take none of it), sync answers still come back from the workers, no 5xx, and the books balance; when
Redis is back the quota is shared again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from backend_servers import RedisServer

from .fleet import Fleet, Proc, books, fleet_on_fresh_database

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

QUOTA = 12  # requests per key and minute, fleet-wide


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, postgres_admin_url: str, redis: RedisServer) -> Iterator[Fleet]:
    env = {"IMAGEGATE_RATE_LIMIT_URL": redis.url, "IMAGEGATE_RATE_LIMIT_PER_MINUTE": str(QUOTA)}
    with fleet_on_fresh_database(tmp_path_factory.mktemp("fleet"), postgres_admin_url, lease_s=6.0, env=env) as on:
        yield on


def _apis(fleet: Fleet) -> list[Proc]:
    return [p for p in fleet.procs if p.name.startswith("api")]


def _generate(api: Proc, fleet: Fleet, text: str) -> httpx.Response:
    return httpx.post(
        f"{api.url}/v1beta/models/gemini-2.5-flash-image:generateContent",
        json={"contents": [{"parts": [{"text": text}]}]},
        headers={"x-goog-api-key": fleet.key},
        timeout=60,
    )


def _scope(api: Proc, fleet: Fleet) -> str:
    answer = httpx.get(f"{api.url}/v1/providers", headers={"x-goog-api-key": fleet.key}, timeout=30)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["scope"])


def _wait_for_scope(fleet: Fleet, scope: str) -> None:
    deadline = time.monotonic() + 30
    for api in _apis(fleet):
        while _scope(api, fleet) != scope:
            assert time.monotonic() < deadline, f"{api.name} never reported {scope} figures"
            time.sleep(0.1)  # waiting for the heartbeat (or the figures' cache) to catch up


def test_redis_stopping_under_the_database_queue_fails_open_and_recovers(fleet: Fleet, redis: RedisServer) -> None:
    apis = _apis(fleet)
    _wait_for_scope(fleet, "fleet")
    answers = [_generate(apis[i % 2], fleet, f"shared {i}").status_code for i in range(QUOTA + 2)]
    assert answers.count(200) == QUOTA and answers.count(429) == 2, answers  # one quota over both processes

    redis.stop()
    with ThreadPoolExecutor(4) as pool:
        during = list(pool.map(lambda i: _generate(apis[i % 2], fleet, f"outage {i}"), range(16)))
    statuses = [answer.status_code for answer in during]
    assert all(status in (200, 429) for status in statuses), [a.text for a in during if a.status_code >= 500]
    # each API process enforces half the quota from a fresh local window: the two workers count for nothing
    assert statuses.count(200) == QUOTA, statuses
    _wait_for_scope(fleet, "process")

    redis.start()  # an empty Redis on the same port: a fresh shared window
    _wait_for_scope(fleet, "fleet")
    after = [_generate(apis[i % 2], fleet, f"after {i}").status_code for i in range(QUOTA + 2)]
    assert after.count(200) == QUOTA and after.count(429) == 2, after
    books(fleet)
    done = fleet.sql("SELECT status, count(*) FROM jobs GROUP BY status")
    assert dict(done) == {"succeeded": 3 * QUOTA}, done
