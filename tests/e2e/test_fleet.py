"""Routing across real upstreams on loopback: an imagegate server with two fake Google AI Studio deployments.

One dies mid-run and every request still succeeds; a slow one is timed out and failed over; a 429 storm; the
breaker's whole cycle (failing, paused with 503 + Retry-After and nothing charged, probed, closed); and a
refusing upstream that does not look healthy at /v1/providers. /metrics is checked on the same servers.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .fake_gemini import POISON, FakeGemini
from .server import Server, cli, start_server

pytestmark = pytest.mark.e2e

MODEL = "gemini-2.5-flash-image"


def _config(tmp: Path, upstreams: list[tuple[FakeGemini, str]], routing: str = "") -> Path:
    blocks = [
        f"""
[[deployments]]
name = "{up.name}"
model = "{MODEL}"
provider = "gemini"
base_url = "{up.url}"
api_key = "env:FLEET_UPSTREAM_KEY"
options = {{ max_retries = 0 }}
{extra}
"""
        for up, extra in upstreams
    ]
    path = tmp / "imagegate.toml"
    path.write_text(f"[routing]\nretry_base_delay_s = 0.05\n{routing}\n" + "".join(blocks))
    return path


@pytest.fixture
def upstreams() -> Iterator[tuple[FakeGemini, FakeGemini]]:
    a, b = FakeGemini("up-a").start(), FakeGemini("up-b").start()
    yield a, b
    a.stop()
    b.stop()


def _serve(tmp: Path, config: Path) -> Server:
    return start_server(tmp / "home", config=config, env={"FLEET_UPSTREAM_KEY": "upstream-secret"})


def _generate(server: Server, prompt: str = "a lighthouse") -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1beta/models/{MODEL}:generateContent",
        json={"contents": [{"parts": [{"text": prompt}]}]},
        headers={"x-goog-api-key": server.key},
        timeout=60,
    )


def _providers(server: Server) -> dict[str, dict]:  # type: ignore[type-arg]
    response = httpx.get(f"{server.url}/v1/providers", headers={"authorization": f"Bearer {server.key}"})
    assert response.status_code == 200
    return {d["name"]: d for d in response.json()["data"]}


def _served_by(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    parts = response.json()["candidates"][0]["content"]["parts"]
    assert any("inlineData" in p for p in parts)
    return next(p["text"] for p in parts if "text" in p).removeprefix("from ")


def test_one_upstream_dies_mid_run_and_every_request_still_succeeds(tmp_path: Path, upstreams) -> None:  # type: ignore[no-untyped-def]
    a, b = upstreams
    server = _serve(tmp_path, _config(tmp_path, [(a, ""), (b, "")]))
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            first = list(pool.map(lambda _: _generate(server), range(16)))
            a.stop()  # up-a dies; connections to it are refused from now on
            second = list(pool.map(lambda _: _generate(server), range(24)))
        served_first = [_served_by(r) for r in first]
        served_second = [_served_by(r) for r in second]
        assert {"up-a", "up-b"} <= set(served_first)  # both carried traffic while alive
        assert set(served_second) == {"up-b"}
        stats = _providers(server)
        assert stats["up-a"]["stats"]["5m"]["errors"] >= 1 and stats["up-b"]["health"] == "healthy"
        assert "upstream-secret" not in server.output()
    finally:
        server.stop()


def test_a_slow_upstream_is_timed_out_and_failed_over(tmp_path: Path, upstreams) -> None:  # type: ignore[no-untyped-def]
    a, b = upstreams
    a.mode, a.delay_s = "slow", 3.0
    server = _serve(
        tmp_path, _config(tmp_path, [(a, "priority = 1\ntimeout_s = 0.5\nretries = 0"), (b, "priority = 2")])
    )
    try:
        started = time.monotonic()
        assert _served_by(_generate(server)) == "up-b"
        assert time.monotonic() - started < 2.5  # the deadline cut the wait, not the upstream's 3 s
        slow = _providers(server)["up-a"]
        assert slow["timeout_s"] == 0.5 and slow["stats"]["5m"]["errors"] == 1
        assert slow["stats"]["5m"]["latency_ms"]["p50"] >= 450
    finally:
        server.stop()


def test_a_429_storm_is_absorbed_by_the_other_upstream(tmp_path: Path, upstreams) -> None:  # type: ignore[no-untyped-def]
    a, b = upstreams
    a.mode = "rate_limited"  # every call: 429 with RetryInfo 30s, longer than the router waits
    server = _serve(tmp_path, _config(tmp_path, [(a, ""), (b, "")], routing="breaker_failures = 3"))
    try:
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            responses = list(pool.map(lambda _: _generate(server), range(40)))
        assert {_served_by(r) for r in responses} == {"up-b"}
        assert a.calls <= 3 + 10  # the breaker stopped the storm (a few calls were already in flight)
        storm = _providers(server)["up-a"]
        assert storm["state"] == "open" and storm["health"] == "unhealthy"
    finally:
        server.stop()


def test_the_breaker_cycle_end_to_end(tmp_path: Path, upstreams) -> None:  # type: ignore[no-untyped-def]
    a, _ = upstreams
    a.mode = "unavailable"
    routing = "breaker_failures = 2\nbreaker_cooldown_s = 1"
    server = _serve(tmp_path, _config(tmp_path, [(a, "retries = 0")], routing=routing))
    try:
        for _ in range(2):
            failed = _generate(server)
            assert failed.status_code == 503 and "overloaded" in failed.json()["error"]["message"]
        calls = a.calls
        paused = _generate(server)
        assert paused.status_code == 503 and a.calls == calls  # failed fast: the upstream was not called
        assert "paused" in paused.json()["error"]["message"] and int(paused.headers["retry-after"]) >= 1
        assert _providers(server)["up-a"]["state"] == "open"
        account = httpx.get(f"{server.url}/v1/account", headers={"authorization": f"Bearer {server.key}"}).json()
        assert account["spent"] in ("0", "0.00", "0.000000") or float(account["spent"]) == 0
        a.mode = "ok"  # it recovers
        time.sleep(1.1)
        assert _providers(server)["up-a"]["state"] == "half_open"
        assert _served_by(_generate(server)) == "up-a"  # the probe
        assert _providers(server)["up-a"]["state"] == "closed"
    finally:
        server.stop()


def test_one_callers_bad_requests_never_pause_the_model_for_another(tmp_path: Path, upstreams) -> None:  # type: ignore[no-untyped-def]
    a, _ = upstreams
    server = _serve(tmp_path, _config(tmp_path, [(a, "retries = 2")], routing="breaker_failures = 2"))
    try:
        created = cli(
            server.home, "keys", "create", "--name", "careless", "--credits", "1", "--json", env=server.extra_env
        )
        careless = json.loads(created)["key"]
        for _ in range(6):  # three times the breaker's threshold, each one refused by Google itself
            bad = httpx.post(
                f"{server.url}/v1beta/models/{MODEL}:generateContent",
                json={"contents": [{"parts": [{"text": f"a {POISON} prompt"}]}]},
                headers={"x-goog-api-key": careless},
                timeout=60,
            )
            assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT", bad.text
        assert a.calls == 6  # the caller's mistake was not retried, here or elsewhere
        health = _providers(server)["up-a"]
        assert health["state"] == "closed" and health["stats"]["5m"]["errors"] == 0
        assert _served_by(_generate(server)) == "up-a"  # another key is served at once
        account = httpx.get(f"{server.url}/v1/account", headers={"authorization": f"Bearer {careless}"}).json()
        assert float(account["spent"]) == 0  # and the careless key paid nothing
    finally:
        server.stop()


def test_a_refusing_upstream_does_not_look_healthy(tmp_path: Path, upstreams) -> None:  # type: ignore[no-untyped-def]
    a, b = upstreams
    a.mode = "refuse"
    server = _serve(tmp_path, _config(tmp_path, [(a, ""), (b, "")]))
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(lambda _: _generate(server), range(30)))
        assert all(r.status_code == 200 for r in responses)
        stats = _providers(server)
        refuser = stats["up-a"]
        assert refuser["stats"]["5m"]["refusals"] >= 1 and refuser["stats"]["5m"]["success_rate"] < 0.5
        assert refuser["health"] in ("unhealthy", "degraded") and stats["up-b"]["health"] == "healthy"
        assert stats["up-b"]["stats"]["5m"]["requests"] > refuser["stats"]["5m"]["requests"]
    finally:
        server.stop()


def test_metrics_need_an_admin_key_and_count_the_fleet(tmp_path: Path, upstreams) -> None:  # type: ignore[no-untyped-def]
    a, b = upstreams
    server = _serve(tmp_path, _config(tmp_path, [(a, ""), (b, "")]))
    try:
        _served_by(_generate(server))
        assert httpx.get(f"{server.url}/metrics").status_code in (401, 403)
        user = httpx.get(f"{server.url}/metrics", headers={"authorization": f"Bearer {server.key}"})
        assert user.status_code == 403 and "admin" in user.json()["error"]["message"]
        created = cli(server.home, "keys", "create", "--name", "prom", "--admin", "--json", env=server.extra_env)
        admin = json.loads(created)["key"]
        scraped = httpx.get(f"{server.url}/metrics", headers={"authorization": f"Bearer {admin}"})
        assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
        text = scraped.text
        assert 'imagegate_provider_requests_total{deployment="up-' in text
        assert 'imagegate_images_delivered_total{model="gemini-2.5-flash-image"} 1.0' in text
        assert "imagegate_queue_depth 0.0" in text and "imagegate_jobs_in_flight 0.0" in text
        assert "imagegate_provider_latency_seconds_bucket" in text and "imagegate_credits_captured_micro_total" in text
        live = json.loads(cli(server.home, "providers", "--server", server.url, "--key", server.key, "--json"))
        assert {d["name"] for d in live} == {"up-a", "up-b"} and sum(d["stats"]["5m"]["successes"] for d in live) == 1
        wide = {**server.extra_env, "COLUMNS": "200"}  # rich fits tables to the terminal; give it room
        table = cli(server.home, "providers", "--server", server.url, "--key", server.key, "--window", "1h", env=wide)
        # health in words (the same word /v1/providers reports), not the breaker's jargon
        assert "health" in table and "p95 ms" in table and "closed" not in table
    finally:
        server.stop()
