"""Regression tests for the attack run's bad inputs (issue 15, defect 1 and 4): each was a 5xx or was charged.

Every case runs on SQLite and PostgreSQL (the ``app`` fixture) and checks the dialect's own 400 and that the
metered caller's balance is untouched, with nothing held.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from .harness import MODEL, App, open_app
from .images import jpeg_header, png_bomb, png_header_only

JSON = {"content-type": "application/json"}
GENERATE = f"/v1beta/models/{MODEL}:generateContent"
COUNT = f"/v1beta/models/{MODEL}:countTokens"
DEEP = b"[" * 10_000 + b"]" * 10_000

JSON_ROUTES = [
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/async/images/generations",
    "/v1/async/images/edits",
    GENERATE,
    f"/v1beta/models/{MODEL}:streamGenerateContent",
    COUNT,
    "/api/v1/image-generation",
    "/v1/chat/completions",
    "/api/v1/chat/completions",
    "/openai/v1/chat/completions",
]


def assert_dialect_400(path: str, status: int, body: dict[str, object]) -> None:
    assert status == 400, body
    if path.startswith("/api/v1/image-generation"):
        assert body["code"] == 400 and isinstance(body["msg"], str)
    elif path.startswith("/v1beta/"):
        error = body["error"]
        assert isinstance(error, dict) and error["status"] == "INVALID_ARGUMENT"
    else:
        error = body["error"]
        assert isinstance(error, dict) and error["type"] == "invalid_request_error"


async def assert_untouched(app: App) -> None:
    assert await app.balance() == (100_000_000, 0)


@pytest.mark.parametrize("path", JSON_ROUTES)
async def test_deeply_nested_json_is_a_400(app: App, path: str) -> None:
    response = await app.client.post(path, content=DEEP, headers={**app.bearer(), **JSON})
    assert_dialect_400(path, response.status_code, response.json())
    await assert_untouched(app)


@pytest.mark.parametrize(
    "query",
    ["expires=%C2%B2&signature=abc", "expires=1&signature=%C3%A9t%C3%A9", "expires=99999999999999999999&signature=x"],
)
async def test_odd_file_signatures_are_a_403_not_a_500(app: App, query: str) -> None:
    response = await app.client.get(f"/v1/files/file_x?{query}")
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("amount", ["1e30", "9300000000000", "1e999999999"])
async def test_huge_credit_amounts_are_a_400(app: App, amount: str) -> None:
    admin = await app.admin_key()
    response = await app.client.post(
        f"/v1/admin/keys/{app.metered_id}/credits", json={"amount": amount}, headers=app.bearer(admin)
    )
    assert response.status_code == 400, response.text
    response = await app.client.post(
        "/v1/admin/keys", json={"name": "rich", "credits": amount}, headers=app.bearer(admin)
    )
    assert response.status_code == 400, response.text
    await assert_untouched(app)


async def test_a_grant_that_would_overflow_the_balance_is_a_400(app: App) -> None:
    admin = await app.admin_key()
    url = f"/v1/admin/keys/{app.metered_id}/credits"
    first = await app.client.post(url, json={"amount": "999999999800"}, headers=app.bearer(admin))
    assert first.status_code == 200, first.text
    response = await app.client.post(url, json={"amount": "200"}, headers=app.bearer(admin))
    assert response.status_code == 400, response.text
    assert "at most" in response.json()["error"]["message"]


BAD_TEXT = [pytest.param("x\\u0000y", id="nul"), pytest.param("x\\ud800y", id="lone-surrogate")]


@pytest.mark.parametrize("escaped", BAD_TEXT)
@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/v1/images/generations", '{"model": "gemini-2.5-flash-image", "prompt": "%s"}'),
        (GENERATE, '{"contents": [{"parts": [{"text": "%s"}]}]}'),
        (GENERATE, '{"systemInstruction": {"parts": [{"text": "%s"}]}, "contents": [{"parts": [{"text": "hi"}]}]}'),
        (COUNT, '{"contents": [{"parts": [{"text": "a"}]}], "systemInstruction": {"parts": [{"text": "%s"}]}}'),
        ("/api/v1/image-generation", '{"model": "gemini-2.5-flash-image", "prompt": "%s"}'),
        (
            "/v1/async/images/generations",
            '{"model": "gemini-2.5-flash-image", "prompt": "hi", "webhook_url": "https://example.com/%s"}',
        ),
    ],
)
async def test_text_no_database_can_store_is_a_400_on_both_backends(
    app: App, path: str, template: str, escaped: str
) -> None:
    if path == COUNT and "u0000" in escaped:
        pytest.skip("countTokens stores nothing: a NUL is counted like any character")
    for key in (app.metered, app.other):
        response = await app.client.post(path, content=template % escaped, headers={**app.bearer(key), **JSON})
        assert_dialect_400(path, response.status_code, response.json())
    await assert_untouched(app)


async def test_a_key_name_with_a_nul_is_a_400(app: App) -> None:
    admin = await app.admin_key()
    response = await app.client.post(
        "/v1/admin/keys", content='{"name": "a\\u0000b"}', headers={**app.bearer(admin), **JSON}
    )
    assert response.status_code == 400, response.text
    assert "NUL" in response.json()["error"]["message"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(png_bomb(7000, 7000), id="png-49-megapixels"),
        pytest.param(png_header_only(100_000, 100_000), id="png-header-10-gigapixels"),
        pytest.param(jpeg_header(30_000, 30_000), id="jpeg-header-900-megapixels"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, id="png-without-ihdr"),
    ],
)
async def test_image_bombs_are_refused_before_any_hold(app: App, image: bytes) -> None:
    gemini = {
        "contents": [{"parts": [{"text": "edit"}, {"inlineData": {"mimeType": "image/png", "data": _b64(image)}}]}]
    }
    response = await app.client.post(GENERATE, json=gemini, headers=app.bearer())
    assert_dialect_400(GENERATE, response.status_code, response.json())
    files = [("image[]", ("bomb.png", image, "image/png"))]
    response = await app.client.post(
        "/v1/images/edits", data={"model": MODEL, "prompt": "edit"}, files=files, headers=app.bearer()
    )
    assert_dialect_400("/v1/images/edits", response.status_code, response.json())
    await assert_untouched(app)


async def test_three_bombs_in_one_request_are_refused_and_nothing_is_charged(app: App) -> None:
    bomb = png_bomb(7000, 7000)
    files = [("image[]", (f"b{i}.png", bomb, "image/png")) for i in range(3)]
    response = await app.client.post(
        "/v1/async/images/edits", data={"model": MODEL, "prompt": "edit"}, files=files, headers=app.bearer()
    )
    assert_dialect_400("/v1/async/images/edits", response.status_code, response.json())
    assert "megapixels" in response.json()["error"]["message"]
    await assert_untouched(app)


async def test_an_image_over_the_byte_limit_is_a_400(database_url: str, tmp_path: Path) -> None:
    image = png_header_only(64, 64) + b"\x00" * 5000  # trailing bytes after IEND: readable, but 5 KB
    async with open_app(tmp_path / "home", database_url, max_input_image_bytes=4096) as small:
        files = [("image", ("big.png", image, "image/png"))]
        response = await small.client.post(
            "/v1/images/edits", data={"model": MODEL, "prompt": "edit"}, files=files, headers=small.bearer()
        )
        assert_dialect_400("/v1/images/edits", response.status_code, response.json())
        assert "4096 bytes" in response.json()["error"]["message"]
        assert await small.balance() == (100_000_000, 0)
