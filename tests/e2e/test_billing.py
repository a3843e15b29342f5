"""Money over real HTTP: an admin grants credits, requests are charged per delivered image, and a key that
cannot pay is refused in each dialect's own way, before anything is queued."""

from __future__ import annotations

import json

import httpx
import pytest

from .server import Server, cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def admin(server: Server) -> str:
    return str(json.loads(cli(server.home, "keys", "create", "--name", "ops", "--admin", "--json"))["key"])


def test_admin_api_needs_an_admin_key(server: Server) -> None:
    response = httpx.get(f"{server.url}/v1/admin/keys", headers={"Authorization": f"Bearer {server.key}"})
    assert response.status_code == 403


def test_charged_per_delivered_image_and_refused_when_short(server: Server, admin: str) -> None:
    created = httpx.post(
        f"{server.url}/v1/admin/keys",
        headers={"Authorization": f"Bearer {admin}"},
        json={"name": "customer", "credits": "0.05"},
        timeout=30,
    ).json()
    key, key_id = created["key"], created["id"]
    assert created["metered"] is True and created["balance"] == "0.05"
    bearer = {"Authorization": f"Bearer {key}"}

    ok = httpx.post(f"{server.url}/v1/images/generations", headers=bearer, json={"prompt": "a coin"}, timeout=60)
    assert ok.status_code == 200
    account = httpx.get(f"{server.url}/v1/account", headers=bearer, timeout=30).json()
    spent = float(account["spent"])
    assert 0.039 <= spent < 0.04 and account["held"] == "0"
    assert float(account["balance"]) == pytest.approx(0.05 - spent)

    refused = httpx.post(f"{server.url}/v1/images/generations", headers=bearer, json={"prompt": "a coin"}, timeout=30)
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "insufficient_quota"
    gemini = httpx.post(
        f"{server.url}/v1beta/models/gemini-2.5-flash-image:generateContent",
        headers={"x-goog-api-key": key},
        json={"contents": [{"parts": [{"text": "a coin"}]}]},
        timeout=30,
    )
    error = gemini.json()["error"]
    assert gemini.status_code == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    assert not any("RetryInfo" in d.get("@type", "") for d in error.get("details", []))
    linkmodel = httpx.post(
        f"{server.url}/api/v1/image-generation",
        headers=bearer,
        json={"model": "gemini-2.5-flash-image", "prompt": "a coin"},
        timeout=30,
    )
    assert linkmodel.status_code == 500 and "insufficient balance" in linkmodel.json()["msg"]
    tasks = httpx.get(f"{server.url}/v1/tasks", headers=bearer, timeout=30).json()["data"]
    assert len(tasks) == 1  # nothing was queued for the refused requests

    refusal = httpx.post(
        f"{server.url}/v1/admin/keys/{key_id}/credits",
        headers={"Authorization": f"Bearer {admin}"},
        json={"amount": "1"},
        timeout=30,
    )
    assert refusal.status_code == 200
    blocked = httpx.post(
        f"{server.url}/v1/images/generations", headers=bearer, json={"prompt": "emulate:image_safety"}, timeout=30
    )
    assert blocked.status_code == 400
    after = httpx.get(f"{server.url}/v1/account", headers=bearer, timeout=30).json()
    assert after["spent"] == account["spent"]  # the refusal cost nothing

    usage = httpx.get(f"{server.url}/v1/usage", headers=bearer, timeout=30).json()["data"]
    assert sum(row["images"] for row in usage) == 1 and all(row["key_id"] == key_id for row in usage)
    everyone = httpx.get(f"{server.url}/v1/usage", headers={"Authorization": f"Bearer {admin}"}, timeout=30).json()
    assert key_id in {row["key_id"] for row in everyone["data"]}  # an admin sees every key
