"""Raw HTTP against a real server: both API versions, snake_case bodies, every way to pass a key, framing."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest

from .images import open_bytes, png_bytes, solid
from .server import Server, cli

pytestmark = pytest.mark.e2e

PATH = "/models/gemini-2.5-flash-image:generateContent"


def post(server: Server, path: str, body: object, **kwargs: object) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=60, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", ["v1", "v1beta"])
def test_snake_case_body_with_key_in_query(server: Server, version: str) -> None:
    image = base64.urlsafe_b64encode(png_bytes(solid((200, 10, 10), (900, 1600)))).decode().rstrip("=")
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [{"inline_data": {"mime_type": "image/png", "data": image}}, {"text": "a poster"}],
            }
        ],
        "generation_config": {"response_modalities": ["Image"], "image_config": {"aspect_ratio": "9:16"}},
        "system_instruction": {"parts": [{"text": "be bold"}]},
    }
    response = post(server, f"/{version}{PATH}?key={server.key}", body)
    assert response.status_code == 200, response.text
    payload = response.json()
    [part] = payload["candidates"][0]["content"]["parts"]
    assert set(part) == {"inlineData"} and set(part["inlineData"]) == {"mimeType", "data"}
    assert open_bytes(base64.b64decode(part["inlineData"]["data"], validate=True)).size == (768, 1344)
    usage = payload["usageMetadata"]
    assert usage["candidatesTokensDetails"] == [{"modality": "IMAGE", "tokenCount": 1290}]
    assert {"modality": "IMAGE", "tokenCount": 258} in usage["promptTokensDetails"]
    assert response.headers["x-request-id"]


def test_bearer_and_header_keys_are_accepted(server: Server) -> None:
    body = {"contents": [{"parts": [{"text": "a boat"}]}]}
    assert post(server, f"/v1beta{PATH}", body, headers={"Authorization": f"Bearer {server.key}"}).status_code == 200
    assert post(server, f"/v1beta{PATH}", body, headers={"x-goog-api-key": server.key}).status_code == 200


def test_missing_key_is_403_permission_denied(server: Server) -> None:
    response = post(server, f"/v1beta{PATH}", {"contents": [{"parts": [{"text": "x"}]}]})
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["status"] == "PERMISSION_DENIED" and "unregistered callers" in error["message"]


def test_invalid_key_is_400_api_key_invalid(server: Server) -> None:
    response = post(server, f"/v1beta{PATH}?key=nonsense", {"contents": [{"parts": [{"text": "x"}]}]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["details"][0]["reason"] == "API_KEY_INVALID"


def test_a_key_revoked_from_the_cli_stops_working_within_the_key_cache_ttl(server: Server) -> None:
    """The CLI is another process: the server sees the revocation when its cached copy expires (5 s)."""
    created = json.loads(cli(server.home, "keys", "create", "--name", "short-lived", "--json"))
    body = {"contents": [{"parts": [{"text": "x"}]}]}
    assert post(server, f"/v1{PATH}", body, headers={"x-goog-api-key": created["key"]}).status_code == 200
    cli(server.home, "keys", "revoke", created["id"])
    deadline = time.monotonic() + 5 + 3  # key_cache_s, and room for a slow machine
    while (response := post(server, f"/v1{PATH}", body, headers={"x-goog-api-key": created["key"]})).status_code == 200:
        assert time.monotonic() < deadline, "the revoked key still works after the key cache's TTL"
        time.sleep(0.25)
    assert response.status_code == 400 and response.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_a_key_revoked_through_the_admin_api_stops_working_at_once(server: Server) -> None:
    created = json.loads(cli(server.home, "keys", "create", "--name", "short-lived", "--json"))
    body = {"contents": [{"parts": [{"text": "x"}]}]}
    assert post(server, f"/v1{PATH}", body, headers={"x-goog-api-key": created["key"]}).status_code == 200
    admin = json.loads(cli(server.home, "keys", "create", "--name", "admin", "--admin", "--json"))["key"]
    revoked = httpx.post(
        f"{server.url}/v1/admin/keys/{created['id']}/revoke", headers={"authorization": f"Bearer {admin}"}
    )
    assert revoked.status_code == 200, revoked.text
    response = post(server, f"/v1{PATH}", body, headers={"x-goog-api-key": created["key"]})
    assert response.status_code == 400 and response.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_sse_framing_is_exactly_data_lines(server: Server) -> None:
    with httpx.stream(
        "POST",
        f"{server.url}/v1beta/models/gemini-2.5-flash-image:streamGenerateContent?alt=sse",
        json={"contents": [{"parts": [{"text": "a bridge"}]}]},
        headers={"x-goog-api-key": server.key},
        timeout=60,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = [e for e in raw.replace("\r\n", "\n").split("\n\n") if e]
    assert events and all(e.startswith("data: {") and "\n" not in e for e in events)
    chunks = [json.loads(e[len("data: ") :]) for e in events]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert all("usageMetadata" in c and "responseId" in c and "modelVersion" in c for c in chunks)


def test_stream_without_alt_is_a_json_array(server: Server) -> None:
    response = post(
        server,
        "/v1beta/models/gemini-2.5-flash-image:streamGenerateContent",
        {"contents": [{"parts": [{"text": "a bridge"}]}]},
        headers={"x-goog-api-key": server.key},
    )
    assert response.status_code == 200
    chunks = response.json()
    assert isinstance(chunks, list) and chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_percent_encoded_colon_and_models_prefix_tolerated(server: Server) -> None:
    response = post(
        server,
        "/v1beta/models/nano-banana%3AgenerateContent",
        {"contents": [{"parts": [{"text": "a bridge"}]}]},
        headers={"x-goog-api-key": server.key},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "contents is not specified"),
        ({"contents": [{"parts": []}]}, "empty input"),
        ({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"responseModalities": ["BANANA"]}}, "BANANA"),
        (
            {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"imageConfig": {"aspectRatio": "1:4"}}},
            "not supported",
        ),
        ({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "bm90IGFuIGltYWdl"}}]}]}, "image"),
    ],
)
def test_bad_requests_name_the_problem(server: Server, body: object, fragment: str) -> None:
    response = post(server, f"/v1beta{PATH}", body, headers={"x-goog-api-key": server.key})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and fragment in error["message"]


def test_malformed_json_is_400(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/v1beta{PATH}", content=b"{nope", headers={"x-goog-api-key": server.key}, timeout=30
    )
    assert response.status_code == 400 and "Invalid JSON payload" in response.json()["error"]["message"]


def test_models_list_serves_gemini_and_openai_shapes(server: Server) -> None:
    response = httpx.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {server.key}"}, timeout=30)
    payload = response.json()
    assert payload["object"] == "list"
    assert payload["data"][0]["id"] == "gemini-2.5-flash-image"
    assert payload["models"][0]["name"] == "models/gemini-2.5-flash-image"
    assert "nextPageToken" not in payload


def test_unknown_path_is_a_gemini_404(server: Server) -> None:
    response = httpx.get(f"{server.url}/v1beta/nothing-here", headers={"x-goog-api-key": server.key}, timeout=30)
    assert response.status_code == 404 and response.json()["error"]["status"] == "NOT_FOUND"


def test_per_key_quota_is_429_with_retry_info(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from .server import start_server

    limited = start_server(tmp_path / "quota", env={"IMAGEGATE_RATE_LIMIT_PER_MINUTE": "2"})
    try:
        body = {"contents": [{"parts": [{"text": "x"}]}]}
        headers = {"x-goog-api-key": limited.key}
        assert [post(limited, f"/v1beta{PATH}", body, headers=headers).status_code for _ in range(2)] == [200, 200]
        response = post(limited, f"/v1beta{PATH}", body, headers=headers)
        assert response.status_code == 429
        error = response.json()["error"]
        assert error["status"] == "RESOURCE_EXHAUSTED"
        [retry] = [d for d in error["details"] if d["@type"].endswith("RetryInfo")]
        # 2 requests in any 60 s: the window has room again when the first of them is a minute old
        assert 55 <= int(retry["retryDelay"].removesuffix("s")) <= 60, retry
    finally:
        limited.stop()
