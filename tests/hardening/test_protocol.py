"""Small protocol faults of the attack run (issue 15, defect 6): Connection: close after a 500, Allow on every 405,
webhook URLs checked like real URLs (in their own words), and a request body for every POST in /openapi.json."""

from __future__ import annotations

import pytest
from fastapi import APIRouter

from imagegate.errors import InvalidRequest
from imagegate.services.webhooks import check_webhook_url

from .harness import MODEL, App


@pytest.mark.parametrize(
    "url",
    [
        " https://example.com/hook",
        "https://example.com/hook ",
        "https://0177.0.0.1/hook",
        "https://2130706433/hook",
        "https://0x7f.0.0.1/hook",
        "https://1.2.3/hook",
        "https://exa mple.com/",
        "https://example.com:99999/",
        "https://example.com:abc/",
        "https://-bad-.example/",
        "https://bücher.example/",
        "https://example.com/\x01",
        "ftp://example.com/hook",
        "https://",
        "https://user:secret@example.com/",
    ],
)
def test_undeliverable_webhook_urls_are_refused_in_their_own_words(url: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        check_webhook_url(url)
    assert raised.value.field == "webhook_url"
    assert raised.value.message.startswith("webhook_url ") and "image" not in raised.value.message


@pytest.mark.parametrize(
    "url", ["https://example.com/hook", "http://127.0.0.1:8080/x", "https://[::1]/x", "https://192.168.1.1/h?a=1"]
)
def test_real_webhook_urls_are_accepted(url: str) -> None:
    assert check_webhook_url(url) == url


async def test_an_async_task_with_an_octal_webhook_host_is_refused_before_any_hold(app: App) -> None:
    body = {"model": MODEL, "prompt": "hi", "webhook_url": "https://0177.0.0.1/hook"}
    response = await app.client.post("/v1/async/images/generations", json=body, headers=app.bearer())
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "webhook_url"
    assert await app.balance() == (100_000_000, 0)


async def test_a_500_says_connection_close(app: App) -> None:
    broken = APIRouter()

    @broken.get("/v1/account/broken-for-test")
    async def boom() -> None:
        raise RuntimeError("a bug")

    app.app.include_router(broken)
    response = await app.client.get("/v1/account/broken-for-test", headers=app.bearer())
    assert response.status_code == 500
    assert response.headers["connection"] == "close"


async def test_every_405_names_what_is_allowed(app: App) -> None:
    schema = (await app.client.get("/openapi.json")).json()
    checked = 0
    for path, operations in schema["paths"].items():
        if "{" in path:
            continue
        for method in ("PUT", "PATCH", "DELETE"):
            if method.lower() in operations:
                continue
            response = await app.client.request(method, path, headers=app.bearer())
            assert response.status_code == 405, (method, path, response.status_code)
            allowed = {m.strip() for m in response.headers["allow"].split(",")}
            assert {m.upper() for m in operations if m != "parameters"} <= allowed, (path, allowed)
            checked += 1
    assert checked > 10


async def test_every_post_in_openapi_declares_its_request_body(app: App) -> None:
    schema = (await app.client.get("/openapi.json")).json()
    missing = [
        path
        for path, operations in schema["paths"].items()
        if "post" in operations and "requestBody" not in operations["post"]
    ]
    assert missing == []


async def test_every_operation_in_openapi_has_its_own_id(app: App) -> None:
    schema = (await app.client.get("/openapi.json")).json()
    ids = [
        (operation["operationId"], f"{method.upper()} {path}")
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method != "parameters"
    ]
    seen: dict[str, str] = {}
    repeated = [(op, where, seen[op]) for op, where in ids if seen.setdefault(op, where) != where]
    assert repeated == []  # generated clients name their methods after these
