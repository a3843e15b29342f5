"""The playground's history on the server: threads and runs belong to their key and come back anywhere; the
gallery search filters by prompt, model, status and date and pages; a deleted job leaves the gallery; a thread's
input images are served to their key only. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from imagegate.http.app import create_app
from imagegate.services.accounts import create_key
from imagegate.settings import load_settings


def png_b64(colour: str) -> str:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


@pytest.fixture
async def clients(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    settings = load_settings(
        home=tmp_path,
        database_url=database_url,
        gemini_api_key=None,
        deployments=[{"name": "emulator", "provider": "emulator"}],
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        svc = app.state.runtime.services
        alice = (await create_key(svc, name="alice")).key
        bob = (await create_key(svc, name="bob")).key
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(
                transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {alice}"}
            ) as a,
            httpx.AsyncClient(
                transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {bob}"}
            ) as b,
        ):
            yield a, b


async def generate(client: httpx.AsyncClient, text: str, *images: str) -> str:
    parts: list[dict[str, object]] = [{"text": text}]
    parts += [{"inlineData": {"mimeType": "image/png", "data": data}} for data in images]
    response = await client.post(
        "/v1beta/models/gemini-2.5-flash-image:generateContent", json={"contents": [{"role": "user", "parts": parts}]}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["responseId"])


async def test_threads_belong_to_their_key_and_keep_turns_branches_and_inputs(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    alice, bob = clients
    job = await generate(alice, "make it blue", png_b64("red"))
    described = (await alice.get("/v1/playground/search", params={"q": "blue"})).json()["data"][0]
    assert described["id"] == job and described["input_images"] == 1
    ref = described["inputs"][0]
    turns = [{"role": "user", "text": "make it blue", "inputs": [ref]}, {"role": "model", "job_id": job}]
    created = await alice.post("/v1/playground/threads", json={"title": "Blue", "doc": {"turns": turns}})
    assert created.status_code == 201, created.text
    thread = created.json()
    branch = {"title": "Branch of Blue", "doc": {"turns": turns[:1], "parent_id": thread["id"], "branch_turn": 0}}
    assert (await alice.post("/v1/playground/threads", json=branch)).status_code == 201

    listed = (await alice.get("/v1/playground/threads")).json()["data"]
    assert [t["title"] for t in listed] == ["Branch of Blue", "Blue"]
    again = (await alice.get(f"/v1/playground/threads/{thread['id']}")).json()
    assert again["turns"][0]["inputs"][0]["sha256"] == ref["sha256"] and again["turns"][1]["job_id"] == job

    image = await alice.get(f"/v1/playground/jobs/{job}/inputs/{ref['sha256']}")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (32, 24)

    # Another key sees none of it, and cannot change it.
    assert (await bob.get("/v1/playground/threads")).json()["data"] == []
    assert (await bob.get(f"/v1/playground/threads/{thread['id']}")).status_code == 404
    assert (await bob.get(f"/v1/playground/jobs/{job}/inputs/{ref['sha256']}")).status_code == 404
    replaced = await bob.put(f"/v1/playground/threads/{thread['id']}", json={"title": "x", "doc": {"turns": []}})
    assert replaced.status_code == 404
    assert (await bob.delete(f"/v1/playground/threads/{thread['id']}")).status_code == 404

    renamed = await alice.put(
        f"/v1/playground/threads/{thread['id']}", json={"title": "Blue fox", "doc": {"turns": turns}}
    )
    assert renamed.status_code == 200 and renamed.json()["title"] == "Blue fox"
    assert (await alice.delete(f"/v1/playground/threads/{thread['id']}")).status_code == 200
    assert [t["title"] for t in (await alice.get("/v1/playground/threads")).json()["data"]] == ["Branch of Blue"]


async def test_bad_documents_are_a_400_naming_the_field(clients: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    alice, _ = clients
    bad = await alice.post("/v1/playground/threads", json={"title": "x", "doc": {"turns": [{"role": "robot"}]}})
    assert bad.status_code in (400, 422) and "role" in bad.text
    no_jobs = await alice.post("/v1/playground/runs", json={"title": "x", "doc": {"model": "m", "job_ids": []}})
    assert no_jobs.status_code in (400, 422) and "job_ids" in no_jobs.text
    assert (await alice.get("/v1/playground/search", params={"status": "done"})).status_code == 400
    assert (await alice.get("/v1/playground/search", params={"since": "yesterday"})).status_code == 400


async def test_runs_and_gallery_search_filter_page_and_delete(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    alice, bob = clients
    fox = await generate(alice, "a red fox in snow")
    owl = await generate(alice, "an owl at night")
    refused = await generate(alice, "emulate:image_safety fox")
    run = {
        "title": "a red fox",
        "doc": {
            "prompt": "a red fox in snow",
            "model": "gemini-2.5-flash-image",
            "params": {"n": 1, "aspect_ratio": None},
            "job_ids": [fox],
        },
    }
    assert (await alice.post("/v1/playground/runs", json=run)).status_code == 201
    assert (await alice.get("/v1/playground/runs")).json()["data"][0]["job_ids"] == [fox]

    def ids(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["data"]]

    assert ids(await alice.get("/v1/playground/search")) == [refused, owl, fox]
    assert ids(await alice.get("/v1/playground/search", params={"q": "FOX"})) == [refused, fox]
    assert ids(await alice.get("/v1/playground/search", params={"q": "owl", "status": "succeeded"})) == [owl]
    assert ids(await alice.get("/v1/playground/search", params={"status": "failed"})) == []
    assert ids(await alice.get("/v1/playground/search", params={"status": "refused"})) == [refused]
    assert ids(await alice.get("/v1/playground/search", params={"q": "fox", "status": "succeeded"})) == [fox]
    assert ids(await alice.get("/v1/playground/search", params={"model": "gemini-2.5-flash-image"})) == [
        refused,
        owl,
        fox,
    ]
    assert ids(await alice.get("/v1/playground/search", params={"model": "other"})) == []
    assert ids(await alice.get("/v1/playground/search", params={"until": "2000-01-01"})) == []
    assert len(ids(await alice.get("/v1/playground/search", params={"since": "2000-01-01"}))) == 3
    first = (await alice.get("/v1/playground/search", params={"limit": 2})).json()
    assert first["has_more"] is True and first["last_id"] == owl
    assert ids(await alice.get("/v1/playground/search", params={"limit": 2, "before": owl})) == [fox]
    assert ids(await alice.get("/v1/playground/search", params={"q": "100%_"})) == []  # LIKE wildcards are text

    assert ids(await bob.get("/v1/playground/search")) == []
    assert (await bob.delete(f"/v1/playground/jobs/{owl}")).status_code == 404
    assert (await alice.delete(f"/v1/playground/jobs/{owl}")).status_code == 200
    assert (await alice.delete(f"/v1/playground/jobs/{owl}")).status_code == 200  # deleting twice is fine
    assert ids(await alice.get("/v1/playground/search")) == [refused, fox]


async def test_presets_belong_to_their_key_and_are_replaced_and_deleted(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    alice, bob = clients
    body = {"title": "wide", "doc": {"model": "gemini-3-pro-image", "params": {"aspectRatio": "21:9", "steps": None}}}
    created = await alice.post("/v1/playground/presets", json=body)
    assert created.status_code == 201, created.text
    preset = created.json()
    assert (preset["object"], preset["title"], preset["params"]["aspectRatio"]) == ("playground.preset", "wide", "21:9")
    replaced = await alice.put(
        f"/v1/playground/presets/{preset['id']}", json={"title": "wide", "doc": {"params": {"n": 2}}}
    )
    assert replaced.status_code == 200 and replaced.json()["params"] == {"n": 2} and replaced.json()["model"] is None
    listed = (await alice.get("/v1/playground/presets")).json()["data"]
    assert [p["id"] for p in listed] == [preset["id"]]
    assert (await bob.get("/v1/playground/presets")).json()["data"] == []
    assert (await bob.get(f"/v1/playground/presets/{preset['id']}")).status_code == 404
    assert (await bob.delete(f"/v1/playground/presets/{preset['id']}")).status_code == 404
    # a preset is not a run: the kinds do not mix
    assert (await alice.get(f"/v1/playground/runs/{preset['id']}")).status_code == 404
    too_long = await alice.post("/v1/playground/presets", json={"title": "x" * 81, "doc": {}})
    assert too_long.status_code == 400 and "title" in too_long.text
    nested = await alice.post("/v1/playground/presets", json={"title": "n", "doc": {"params": {"a": {"b": 1}}}})
    assert nested.status_code == 400
    assert (await alice.delete(f"/v1/playground/presets/{preset['id']}")).status_code == 200
    assert (await alice.get("/v1/playground/presets")).json()["data"] == []
