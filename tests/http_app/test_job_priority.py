"""Each route stores the priority its caller implies: sync answers are interactive, tasks are async work."""

from __future__ import annotations

from pathlib import Path

import httpx

from imagegate.core.jobs import JobPriority
from imagegate.http.app import create_app
from imagegate.services.accounts import create_key
from imagegate.settings import load_settings


async def test_sync_routes_submit_interactive_jobs_and_task_routes_async(tmp_path: Path) -> None:
    settings = load_settings(
        home=tmp_path, gemini_api_key=None, deployments=[{"name": "emulator", "provider": "emulator"}]
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        svc = app.state.runtime.services
        created = await create_key(svc, name="priority")
        headers = {"Authorization": f"Bearer {created.key}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as client:
            sync = await client.post("/v1/images/generations", json={"model": "nano-banana", "prompt": "a"})
            gemini = await client.post(
                "/v1beta/models/gemini-2.5-flash-image:generateContent",
                json={"contents": [{"parts": [{"text": "b"}]}]},
            )
            task = await client.post("/v1/async/images/generations", json={"model": "nano-banana", "prompt": "c"})
            link = await client.post(
                "/api/v1/image-generation", json={"model": "gemini-2.5-flash-image", "prompt": "d"}
            )
        for response in (sync, gemini, task, link):
            assert response.status_code == 200, response.text
        async with svc.uow() as uow:
            jobs = await uow.jobs.list_for_key(created.record.id, limit=10)
    by_prompt_order = sorted(jobs, key=lambda job: job.created_at)
    assert [job.priority for job in by_prompt_order] == [
        JobPriority.INTERACTIVE,
        JobPriority.INTERACTIVE,
        JobPriority.ASYNC,
        JobPriority.ASYNC,
    ]
