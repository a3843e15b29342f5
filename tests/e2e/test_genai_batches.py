"""The Gemini Batch API driven by the google-genai SDK: inline and file batches, results, errors, cancel."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import pytest
from google import genai
from google.genai import errors, types

from .conftest import genai_client
from .images import open_bytes
from .server import Server, start_server

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
