"""Every job records each deployment it tried, the outcome, the latency and why the router moved on; the task
object shows that trail, for a failover that worked and for a job that no deployment could serve."""

from __future__ import annotations

from pathlib import Path

import httpx

from imagegate.http.app import create_app
from imagegate.services.accounts import create_key
from imagegate.settings import load_settings


async def test_failover_is_recorded_and_shown_on_the_task(tmp_path: Path) -> None:
    settings = load_settings(
        home=tmp_path,
        gemini_api_key=None,
        deployments=[
            {"name": "flaky", "provider": "emulator", "priority": 1, "options": {"failure_rate": 1}},
            {"name": "spare", "provider": "emulator", "priority": 2},
        ],
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        key = (await create_key(app.state.runtime.services, name="trail")).key
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as client:
            made = await client.post("/v1/images/generations", json={"prompt": "a fox", "n": 2})
            assert made.status_code == 200, made.text
            jobs = (await client.get("/v1/tasks")).json()["data"]
            task = (await client.get(f"/v1/tasks/{jobs[0]['id']}")).json()
    assert task["deployment"] == "spare"
    trail = task["attempt_trail"]
    for image in (0, 1):
        tried = [(a["deployment"], a["outcome"]) for a in trail if a["image"] == image]
        assert tried == [("flaky", "error"), ("spare", "success")], trail
    failed = next(a for a in trail if a["outcome"] == "error")
    assert failed["reason"].startswith("upstream_unavailable") and failed["latency_ms"] >= 0


async def test_a_job_no_deployment_served_names_every_one_tried(tmp_path: Path) -> None:
    settings = load_settings(
        home=tmp_path,
        gemini_api_key=None,
        deployments=[
            {"name": "a", "provider": "emulator", "priority": 1, "options": {"failure_rate": 1}},
            {"name": "b", "provider": "emulator", "priority": 2, "options": {"failure_rate": 1, "failure": "timeout"}},
        ],
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        key = (await create_key(app.state.runtime.services, name="trail")).key
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as client:
            submitted = await client.post("/v1/async/images/generations", json={"prompt": "a fox"})
            task_id = submitted.json()["id"]
            task = submitted.json()
            while task["status"] not in ("succeeded", "failed"):
                task = (await client.get(f"/v1/tasks/{task_id}")).json()
    assert task["status"] == "failed" and task["deployment"] is None
    assert [a["deployment"] for a in task["attempt_trail"]] == ["a", "b"]
    assert all(a["outcome"] == "error" and a["reason"] for a in task["attempt_trail"])
