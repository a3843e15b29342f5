"""The async images API and /v1/tasks over real HTTP: submit, poll to completion, list, cancel, isolation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .images import open_bytes
from .server import Server, cli, start_server

pytestmark = pytest.mark.e2e


def auth(server: Server, key: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key or server.key}"}


def poll(server: Server, task_id: str, *, key: str | None = None, **params: str) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 30
    while True:
        task = httpx.get(f"{server.url}/v1/tasks/{task_id}", headers=auth(server, key), params=params, timeout=30)
        assert task.status_code == 200, task.text
        body = task.json()
        if body["status"] not in ("queued", "running"):
            return body  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, body
        time.sleep(0.05)  # waiting for the server's worker, not for time itself


def test_async_generation_runs_to_completion(server: Server) -> None:
    created = httpx.post(
        f"{server.url}/v1/async/images/generations",
        headers=auth(server),
        json={"model": "nano-banana", "prompt": "a harbour", "n": 2, "size": "1536x1024"},
        timeout=30,
    )
    assert created.status_code == 200, created.text
    task = created.json()
    assert task["object"] == "image.task" and task["status"] in ("queued", "running", "succeeded")
    done = poll(server, task["id"])
    assert done["status"] == "succeeded" and done["finished_at"] >= done["created_at"]
    assert 0.078 <= float(done["cost"]) < 0.0781  # two images at 0.039, plus input tokens at 0.30 per million
    assert done["order_id"]
    urls = [item["url"] for item in done["result"]["data"]]
    assert len(urls) == 2
    assert all(open_bytes(httpx.get(url, timeout=30).content).size == (1248, 832) for url in urls)
    inline = poll(server, task["id"], response_format="b64_json")
    assert all("b64_json" in item for item in inline["result"]["data"])


def test_a_task_shows_the_seed_of_each_image_and_sending_it_again_remakes_the_image(server: Server) -> None:
    body = {"model": "nano-banana", "prompt": "a lantern", "n": 2, "response_format": "b64_json"}
    first = httpx.post(f"{server.url}/v1/async/images/generations", headers=auth(server), json=body, timeout=30)
    done = poll(server, first.json()["id"], response_format="b64_json")
    base, second = done["seeds"]  # drawn at submission: image i is made with base + i
    assert second == base + 1
    again = httpx.post(
        f"{server.url}/v1/async/images/generations",
        headers=auth(server),
        json={**body, "n": 1, "seed": second},
        timeout=30,
    )
    remade = poll(server, again.json()["id"], response_format="b64_json")
    assert remade["seeds"] == [second]
    assert remade["result"]["data"][0]["b64_json"] == done["result"]["data"][1]["b64_json"]


def test_async_edit_and_refusal_shapes(server: Server) -> None:
    from .images import png_bytes, solid

    created = httpx.post(
        f"{server.url}/v1/async/images/edits",
        headers=auth(server),
        files=[("image[]", ("a.png", png_bytes(solid((9, 9, 200))), "image/png"))],
        data={"prompt": "emulate:image_safety"},
        timeout=30,
    )
    assert created.status_code == 200, created.text
    done = poll(server, created.json()["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "moderation_blocked" and "result" not in done
    assert done["cost"] == "0"


def test_gemini_jobs_are_tasks_too_and_lists_page(server: Server, tmp_path: Path) -> None:
    key = json.loads(cli(server.home, "keys", "create", "--name", "lister", "--json"))["key"]
    for prompt in ("one", "two", "three"):
        response = httpx.post(
            f"{server.url}/v1beta/models/gemini-2.5-flash-image:generateContent",
            headers={"x-goog-api-key": key},
            json={"contents": [{"parts": [{"text": prompt}]}]},
            timeout=60,
        )
        assert response.status_code == 200
    first = httpx.get(f"{server.url}/v1/tasks", headers=auth(server, key), params={"limit": 2}, timeout=30).json()
    assert [t["dialect"] for t in first["data"]] == ["gemini", "gemini"] and first["has_more"] is True
    second = httpx.get(
        f"{server.url}/v1/tasks", headers=auth(server, key), params={"limit": 2, "after": first["last_id"]}, timeout=30
    ).json()
    assert len(second["data"]) == 1 and second["has_more"] is False
    ids = [t["id"] for t in first["data"] + second["data"]]
    assert len(set(ids)) == 3
    assert all(t["status"] == "succeeded" for t in first["data"] + second["data"])
    # Another key cannot see them: not found, never forbidden.
    other = httpx.get(f"{server.url}/v1/tasks/{ids[0]}", headers=auth(server), timeout=30)
    assert other.status_code == 404 and other.json()["error"]["type"] == "invalid_request_error"
    bad_limit = httpx.get(f"{server.url}/v1/tasks", headers=auth(server, key), params={"limit": 0}, timeout=30)
    assert bad_limit.status_code == 400


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("slow"), env={"IMAGEGATE_EMULATOR__LATENCY_MS": "600000", "IMAGEGATE_WORKERS": "1"}
    )
    yield running
    running.stop()


def test_cancel_running_and_queued_tasks(slow: Server) -> None:
    body = {"model": "gemini-2.5-flash-image", "prompt": "a very slow picture"}
    running = httpx.post(f"{slow.url}/v1/async/images/generations", headers=auth(slow), json=body, timeout=30).json()
    queued = httpx.post(f"{slow.url}/v1/async/images/generations", headers=auth(slow), json=body, timeout=30).json()
    for task in (running, queued):
        cancelled = httpx.post(f"{slow.url}/v1/tasks/{task['id']}/cancel", headers=auth(slow), timeout=30)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled" and cancelled.json()["error"]["code"] == "cancelled"
        again = httpx.post(f"{slow.url}/v1/tasks/{task['id']}/cancel", headers=auth(slow), timeout=30)
        assert again.status_code == 409
    assert poll(slow, running["id"])["status"] == "cancelled"
