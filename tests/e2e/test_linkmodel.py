"""The linkmodel task API on the real server: create, poll to completion, fetch the images; one id space."""

from __future__ import annotations

import time

import httpx
import pytest

from .images import open_bytes
from .server import Server

pytestmark = pytest.mark.e2e


def test_create_poll_and_fetch(server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.key}"}
    created = httpx.post(
        f"{server.url}/api/v1/image-generation",
        headers=headers,
        json={"model": "gemini-2.5-flash-image", "prompt": "a lantern", "size": "21x9", "quality": "1K"},
        timeout=30,
    )
    assert created.status_code == 200, created.text
    envelope = created.json()
    assert envelope["code"] == 0 and envelope["msg"] == "success" and envelope["request_id"]
    task_id = envelope["data"]["task_id"]
    deadline = time.monotonic() + 30
    while True:
        polled = httpx.get(f"{server.url}/api/v1/tasks/{task_id}", headers=headers, timeout=30).json()
        if polled["data"]["status"] != "processing":
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)  # waiting for the server's worker
    assert polled["data"]["status"] == "succeeded"
    [url] = polled["data"]["output_images"]
    assert open_bytes(httpx.get(url, timeout=30).content).size == (1536, 672)
    # The same job through the task API of the OpenAI dialect.
    task = httpx.get(f"{server.url}/v1/tasks/{task_id}", headers=headers, timeout=30).json()
    assert task["dialect"] == "linkmodel" and task["status"] == "succeeded"


def test_errors_use_the_seed_envelope(server: Server) -> None:
    missing = httpx.post(f"{server.url}/api/v1/image-generation", json={"prompt": "x"}, timeout=30)
    assert missing.status_code == 401 and missing.json()["code"] != 0
    unknown_path = httpx.get(f"{server.url}/api/v1/nothing", headers={"Authorization": f"Bearer {server.key}"})
    assert "msg" in unknown_path.json() and "request_id" in unknown_path.json()
