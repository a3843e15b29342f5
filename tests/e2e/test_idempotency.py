"""``Idempotency-Key`` over real HTTP: a retry replays the first answer and makes no second job, on every dialect."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import openai
import pytest

from .images import png_bytes, solid
from .server import Server, cli, start_server

pytestmark = pytest.mark.e2e

GENERATIONS = "/v1/images/generations"
GEMINI = "/v1beta/models/gemini-2.5-flash-image:generateContent"
BODY = {"model": "gemini-2.5-flash-image", "prompt": "a lighthouse at dusk"}


def new_key(server: Server) -> str:
    """A key of its own, so counting its tasks counts only this test's jobs."""
    return str(json.loads(cli(server.home, "keys", "create", "--name", "idempotency", "--json"))["key"])


def idem() -> str:
    return f"retry-{uuid.uuid4()}"


def generate(server: Server, key: str, idempotency_key: str, body: object = BODY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": idempotency_key}
    return httpx.post(server.url + GENERATIONS, headers=headers, json=body, timeout=60)


def tasks_of(server: Server, key: str) -> list[dict]:  # type: ignore[type-arg]
    response = httpx.get(f"{server.url}/v1/tasks", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def test_a_retry_replays_the_first_answer_and_makes_no_second_job(server: Server) -> None:
    key, retry = new_key(server), idem()
    first = generate(server, key, retry)
    second = generate(server, key, retry)
    assert first.status_code == second.status_code == 200, first.text
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert second.headers["content-type"] == first.headers["content-type"]
    assert second.headers["x-request-id"] != first.headers["x-request-id"]  # each request keeps its own id
    assert len(tasks_of(server, key)) == 1


def test_the_same_key_with_another_body_is_a_422_in_openai_form(server: Server) -> None:
    key, retry = new_key(server), idem()
    assert generate(server, key, retry).status_code == 200
    other = generate(server, key, retry, {**BODY, "prompt": "a lighthouse at dawn"})
    assert other.status_code == 422
    error = other.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["code"] == "idempotency_key_reused"
    sdk = openai.OpenAI(api_key=key, base_url=f"{server.url}/v1", max_retries=0)
    with pytest.raises(openai.UnprocessableEntityError):
        sdk.images.generate(model="gemini-2.5-flash-image", prompt="another", extra_headers={"Idempotency-Key": retry})
    assert len(tasks_of(server, key)) == 1


def test_an_sdk_multipart_retry_is_recognised_despite_a_new_boundary(server: Server) -> None:
    key, retry = new_key(server), idem()
    sdk = openai.OpenAI(api_key=key, base_url=f"{server.url}/v1", max_retries=0)
    image = ("a.png", png_bytes(solid((10, 120, 200))), "image/png")

    def edit() -> tuple[int, str | None, bytes]:
        raw = sdk.images.with_raw_response.edit(
            model="gemini-2.5-flash-image", image=image, prompt="make it red", extra_headers={"Idempotency-Key": retry}
        )
        return raw.status_code, raw.headers.get("idempotent-replayed"), raw.content

    first, second = edit(), edit()
    assert first == (200, None, second[2]) and second[:2] == (200, "true")
    assert len(tasks_of(server, key)) == 1


def test_gemini_routes_replay_too_and_streams_are_kept_whole(server: Server) -> None:
    key, retry = new_key(server), idem()
    headers = {"x-goog-api-key": key, "Idempotency-Key": retry}
    body = {"contents": [{"parts": [{"text": "a red kite"}]}]}
    first = httpx.post(server.url + GEMINI, headers=headers, json=body, timeout=60)
    second = httpx.post(server.url + GEMINI, headers=headers, json=body, timeout=60)
    assert first.status_code == second.status_code == 200, first.text
    assert second.content == first.content and second.headers["idempotent-replayed"] == "true"

    mismatch = httpx.post(server.url + GEMINI, headers=headers, json={"contents": "another"}, timeout=60)
    assert mismatch.status_code == 400 and mismatch.json()["error"]["status"] == "INVALID_ARGUMENT"

    stream_url = server.url + "/v1beta/models/gemini-2.5-flash-image:streamGenerateContent?alt=sse"
    stream_headers = {**headers, "Idempotency-Key": idem()}
    streamed = httpx.post(stream_url, headers=stream_headers, json=body, timeout=60)
    replayed = httpx.post(stream_url, headers=stream_headers, json=body, timeout=60)
    assert streamed.status_code == replayed.status_code == 200
    assert streamed.content.startswith(b"data: ") and replayed.content == streamed.content
    assert replayed.headers["content-type"].startswith("text/event-stream")
    assert len(tasks_of(server, key)) == 2


def test_different_api_keys_never_share_an_idempotency_key(server: Server) -> None:
    one, two, retry = new_key(server), new_key(server), idem()
    first = generate(server, one, retry)
    second = generate(server, two, retry)
    assert first.status_code == second.status_code == 200
    assert "idempotent-replayed" not in second.headers  # (the emulator draws the same picture twice, though)
    assert len(tasks_of(server, one)) == len(tasks_of(server, two)) == 1


def test_a_5xx_answer_is_not_kept_so_a_retry_runs_again(server: Server) -> None:
    key, retry = new_key(server), idem()
    body = {**BODY, "prompt": "emulate:unavailable"}
    first = generate(server, key, retry, body)
    second = generate(server, key, retry, body)
    assert first.status_code == second.status_code == 503
    assert "idempotent-replayed" not in second.headers
    assert len(tasks_of(server, key)) == 2


def test_a_malformed_idempotency_key_is_a_400_in_the_routes_dialect(server: Server) -> None:
    key = new_key(server)
    openai_style = generate(server, key, "x" * 256)
    assert openai_style.status_code == 400 and openai_style.json()["error"]["type"] == "invalid_request_error"
    linkmodel = httpx.post(
        f"{server.url}/api/v1/image-generation",
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": ""},
        json={"model": "gemini-2.5-flash-image", "prompt": "a lantern"},
        timeout=30,
    )
    assert linkmodel.status_code == 400
    assert linkmodel.json()["code"] == 400 and linkmodel.json()["request_id"] == linkmodel.headers["x-request-id"]
    assert tasks_of(server, key) == []


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("idempotency-slow"), env={"IMAGEGATE_EMULATOR__LATENCY_MS": "3000"})
    yield running
    running.stop()


def test_a_retry_while_the_first_request_runs_is_a_409(slow: Server) -> None:
    retry = idem()
    answers: list[httpx.Response] = []
    first = threading.Thread(target=lambda: answers.append(generate(slow, slow.key, retry)))
    first.start()
    try:
        # The job appears once the first request holds the key; it then runs for three seconds.
        deadline = time.monotonic() + 30
        while not tasks_of(slow, slow.key):
            assert time.monotonic() < deadline, "the first request never made its job"
            time.sleep(0.02)  # waiting for the other request to get there, not for time to pass
        conflict = generate(slow, slow.key, retry)
    finally:
        first.join(timeout=60)
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["error"]["type"] == "invalid_request_error"
    [answer] = answers
    assert answer.status_code == 200, answer.text
    replay = generate(slow, slow.key, retry)
    assert replay.status_code == 200 and replay.content == answer.content
    assert replay.headers["idempotent-replayed"] == "true"
    assert len(tasks_of(slow, slow.key)) == 1
