"""The Gemini Batch API driven by the google-genai SDK: inline and file batches, results, errors, cancel."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from google import genai
from google.genai import errors, types

from .conftest import genai_client
from .images import open_bytes
from .server import Server, cli, start_server

pytestmark = pytest.mark.e2e

MODEL = "gemini-2.5-flash-image"
DONE = {types.JobState.JOB_STATE_SUCCEEDED, types.JobState.JOB_STATE_CANCELLED, types.JobState.JOB_STATE_FAILED}


def _finished(client: genai.Client, name: str) -> types.BatchJob:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.batches.get(name=name)
        if job.state in DONE:
            return job
        time.sleep(0.1)  # waiting for the server's workers, not for time to pass
    raise AssertionError(f"batch {name} did not finish")


def test_inline_batch_with_a_bad_request_among_good_ones(client: genai.Client) -> None:
    created = client.batches.create(
        model=MODEL,
        src=[
            {"contents": [{"parts": [{"text": "a cat"}], "role": "user"}], "metadata": {"key": "cat"}},
            {
                "contents": [{"parts": [{"text": "a wide dog"}], "role": "user"}],
                "config": {"image_config": {"aspect_ratio": "16:9"}},
            },
            {
                "contents": [{"parts": [{"text": "x"}], "role": "user"}],
                "config": {"image_config": {"aspect_ratio": "7:1"}},
            },
            {"contents": [{"parts": [{"text": "emulate:image_safety"}], "role": "user"}]},
        ],
        config={"display_name": "pets"},
    )
    assert created.name and created.name.startswith("batches/") and created.display_name == "pets"
    assert created.state in (types.JobState.JOB_STATE_PENDING, types.JobState.JOB_STATE_RUNNING, *DONE)
    done = _finished(client, created.name)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED and done.end_time
    responses = done.dest.inlined_responses  # type: ignore[union-attr]
    assert responses is not None and len(responses) == 4
    cat, dog, bad, refused = responses
    assert cat.metadata == {"key": "cat"}
    for item, size in ((cat, (1024, 1024)), (dog, (1344, 768))):
        parts = item.response.candidates[0].content.parts  # type: ignore[union-attr, index]
        image = next(p.inline_data.data for p in parts if p.inline_data)  # type: ignore[union-attr]
        assert open_bytes(image).size == size
    assert bad.error is not None and bad.error.code == 3 and "aspect" in (bad.error.message or "").lower()
    assert refused.response is not None and refused.response.candidates[0].finish_reason == "IMAGE_SAFETY"  # type: ignore[index]
    assert created.name in [b.name for b in client.batches.list()]
    client.batches.delete(name=created.name)
    with pytest.raises(errors.ClientError) as gone:
        client.batches.get(name=created.name)
    assert gone.value.code == 404


def test_file_batch_answers_with_a_results_file(client: genai.Client) -> None:
    lines = [
        {"key": "one", "request": {"contents": [{"parts": [{"text": "a boat"}], "role": "user"}]}},
        {"key": "two", "request": {"contents": []}},
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    uploaded = client.files.upload(file=io.BytesIO(data), config=types.UploadFileConfig(mime_type="jsonl"))
    created = client.batches.create(model=MODEL, src=uploaded.name)
    done = _finished(client, created.name or "")
    assert done.dest is not None and done.dest.file_name
    results = [json.loads(line) for line in client.files.download(file=done.dest.file_name).decode().splitlines()]
    assert [r["key"] for r in results] == ["one", "two"]
    assert "candidates" in results[0]["response"] and results[1]["error"]["code"] == 3


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("batch-slow"),
        env={"IMAGEGATE_EMULATOR__LATENCY_MS": "600000", "IMAGEGATE_WORKERS": "1"},
    )
    yield running
    running.stop()


def test_cancel_stops_what_has_not_run(slow: Server) -> None:
    client = genai_client(slow)
    created = client.batches.create(
        model=MODEL, src=[{"contents": [{"parts": [{"text": f"n{i}"}], "role": "user"}]} for i in range(3)]
    )
    client.batches.cancel(name=created.name or "")
    cancelled = client.batches.get(name=created.name or "")
    assert cancelled.state == types.JobState.JOB_STATE_CANCELLED
    with pytest.raises(errors.ClientError) as again:
        client.batches.cancel(name=created.name or "")
    assert again.value.code == 409


def test_a_resolution_suffixed_model_id_sizes_every_request_of_the_batch(client: genai.Client) -> None:
    created = client.batches.create(
        model="gemini-3.1-flash-image-preview-2k", src=[{"contents": [{"parts": [{"text": "a fox"}], "role": "user"}]}]
    )
    done = _finished(client, created.name or "")
    [item] = done.dest.inlined_responses  # type: ignore[union-attr, misc]
    parts = item.response.candidates[0].content.parts  # type: ignore[union-attr, index]
    image = next(p.inline_data.data for p in parts if p.inline_data)  # type: ignore[union-attr]
    assert open_bytes(image).size == (2048, 2048)


def test_a_batch_that_answered_no_request_is_failed(server: Server, client: genai.Client) -> None:
    bad = {
        "contents": [{"parts": [{"text": "x"}], "role": "user"}],
        "config": {"image_config": {"aspect_ratio": "7:1"}},
    }
    created = client.batches.create(model=MODEL, src=[bad, bad])
    done = _finished(client, created.name or "")
    assert done.state == types.JobState.JOB_STATE_FAILED and done.end_time
    responses = done.dest.inlined_responses  # type: ignore[union-attr]
    assert responses is not None and [r.error.code for r in responses] == [3, 3]  # type: ignore[union-attr]
    # The operation itself carries the error (an Operation has an error or a response, never both).
    raw = httpx.get(f"{server.url}/v1beta/{created.name}", headers={"x-goog-api-key": server.key}, timeout=30).json()
    assert raw["done"] is True and "response" not in raw
    assert raw["error"]["code"] == 3 and "All 2 requests of the batch failed" in raw["error"]["message"]
    assert raw["metadata"]["batchStats"]["failedRequestCount"] == "2"


@pytest.fixture(scope="module")
def expiring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("batch-expiring"),
        # One worker busy for ten minutes per image, and batches that expire two seconds after they are created.
        env={
            "IMAGEGATE_EMULATOR__LATENCY_MS": "600000",
            "IMAGEGATE_WORKERS": "1",
            "IMAGEGATE_BATCH_EXPIRY_HOURS": "0.0005",
        },
    )
    yield running
    running.stop()


def test_an_unfinished_batch_expires_and_charges_nothing(expiring: Server) -> None:
    key = json.loads(cli(expiring.home, "keys", "create", "--name", "payer", "--credits", "5", "--json"))["key"]
    client = genai_client(expiring, key=key)
    created = client.batches.create(
        model=MODEL, src=[{"contents": [{"parts": [{"text": f"n{i}"}], "role": "user"}]} for i in range(2)]
    )
    assert created.state in (types.JobState.JOB_STATE_PENDING, types.JobState.JOB_STATE_RUNNING)
    held = httpx.get(f"{expiring.url}/v1/account", headers={"Authorization": f"Bearer {key}"}, timeout=30).json()
    assert held["held"] != "0"  # both requests are paid for up front, as every job is
    deadline = time.monotonic() + 30
    while (job := client.batches.get(name=created.name or "")).state != types.JobState.JOB_STATE_EXPIRED:
        assert job.state not in DONE and time.monotonic() < deadline, job.state
        time.sleep(0.2)  # waiting for the batch's two seconds to run out
    responses = job.dest.inlined_responses  # type: ignore[union-attr]
    assert responses is not None and len(responses) == 2
    for item in responses:
        assert item.error is not None and "The batch expired" in (item.error.message or "")
    account = httpx.get(f"{expiring.url}/v1/account", headers={"Authorization": f"Bearer {key}"}, timeout=30).json()
    assert account["held"] == "0" and account["spent"] == "0" and account["balance"] == "5"
    with pytest.raises(errors.ClientError) as again:
        client.batches.cancel(name=created.name or "")
    assert again.value.code == 409


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("batch-share")
    config = home / "imagegate.toml"
    # Four runners, a deployment of two slots of which batch work may hold one; every call takes 1.5 s.
    config.write_text(
        "workers = 4\n"
        "[[deployments]]\n"
        'name = "emu"\nprovider = "emulator"\nmax_concurrency = 2\nbatch_share = 0.5\n'
        "options = { latency_ms = 1500 }\n"
    )
    running = start_server(home, config=config)
    yield running
    running.stop()


def test_batch_work_holds_its_share_and_interactive_requests_pass_it(shared: Server) -> None:
    client = genai_client(shared)
    created = client.batches.create(
        model=MODEL, src=[{"contents": [{"parts": [{"text": f"n{i}"}], "role": "user"}]} for i in range(4)]
    )
    headers = {"Authorization": f"Bearer {shared.key}"}
    seen: list[int] = []
    while len(seen) < 10:  # sample the deployment's calls in flight while only batch work runs
        providers = httpx.get(f"{shared.url}/v1/providers", headers=headers, timeout=30).json()["data"]
        seen.append(next(d["in_flight"] for d in providers if d["name"] == "emu"))
        time.sleep(0.1)
    assert max(seen) == 1  # one batch slot of the two
    answer = client.models.generate_content(model=MODEL, contents="now, please")
    assert answer.candidates and answer.candidates[0].content
    batch = client.batches.get(name=created.name or "")
    # The interactive request took the free slot instead of queueing behind the batch's four calls.
    assert batch.state == types.JobState.JOB_STATE_RUNNING
    client.batches.cancel(name=created.name or "")
