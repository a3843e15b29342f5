"""Two real servers sharing quotas, concurrency and provider figures through a Redis the test starts, and what
happens when that Redis dies mid-run: limits fail open to each process's share, no 5xx, money unchanged,
sharing resumes when Redis is back."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from backend_servers import RedisServer

from .invariants import check_jobs_and_money
from .server import Server, cli, start_server

pytestmark = pytest.mark.e2e

GENERATE = "/v1beta/models/gemini-2.5-flash-image:generateContent"


def _generate(server: Server, key: str, text: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}{GENERATE}",
        json={"contents": [{"parts": [{"text": text}]}]},
        headers={"x-goog-api-key": key},
        timeout=60,
    )


def _scope(server: Server, key: str) -> str:
    answer = httpx.get(f"{server.url}/v1/providers", headers={"x-goog-api-key": key}, timeout=30)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["scope"])


def test_stopping_redis_mid_run_fails_open_and_recovers(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    home = tmp_path / "home"
    env = {
        "IMAGEGATE_RATE_LIMIT_URL": redis.url,
        "IMAGEGATE_RATE_LIMIT_PER_MINUTE": "12",
        "IMAGEGATE_STORAGE_SHARED": "true",
        "IMAGEGATE_EMULATOR__LATENCY_MS": "10",
    }
    # Two API processes over one database and one files directory (one host), one shared Redis.
    first = start_server(home, env=env)
    second = start_server(home, env=env)
    customer = json.loads(cli(home, "keys", "create", "--name", "paying", "--credits", "5", "--json", env=env))
    key = customer["key"]
    try:
        servers = [first, second]
        answers = [_generate(servers[i % 2], key, f"shared {i}").status_code for i in range(14)]
        assert answers.count(200) == 12 and answers.count(429) == 2  # one quota over both processes

        assert _scope(first, key) == "fleet"

        redis.stop()  # mid-run: the quota's window lived only in Redis
        with ThreadPoolExecutor(4) as pool:
            during = list(pool.map(lambda i: _generate(servers[i % 2], key, f"outage {i}"), range(16)))
        statuses = [answer.status_code for answer in during]
        assert all(status in (200, 429) for status in statuses), [a.text for a in during if a.status_code >= 500]
        # each process enforces its share, 12 / 2 processes = 6 a minute, from a fresh local window
        assert statuses.count(200) == 12, statuses
        deadline = time.monotonic() + 30
        while _scope(first, key) != "process":  # figures read from Redis are cached for up to 2 s
            assert time.monotonic() < deadline, "the server kept claiming fleet figures without Redis"
            time.sleep(0.1)  # waiting for the cached fleet figures to age out

        redis.start()  # an empty Redis on the same port: a fresh shared window
        deadline = time.monotonic() + 30
        for server in servers:
            while _scope(server, key) != "fleet":
                assert time.monotonic() < deadline, "a server never used Redis again"
                time.sleep(0.1)  # waiting for the process's heartbeat to find Redis again
        after = [_generate(servers[i % 2], key, f"after {i}").status_code for i in range(14)]
        assert after.count(200) == 12 and after.count(429) == 2, after
    finally:
        first.stop()
        second.stop()
        redis.stop()
    counts = check_jobs_and_money(home / "imagegate.db")
    assert counts == {"succeeded": 36}, counts
