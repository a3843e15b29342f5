"""``/`` and ``/static/…`` over real HTTP: content types, cache and security headers, 304s and 404s; and the
playground's JSON (``/v1/playground/models``, ``/v1/playground/jobs``), including what another key may not see."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from e2e.server import cli
from imagegate.http.playground import describe_request
from imagegate.http.web import bundle

from .conftest import Web

pytestmark = pytest.mark.e2e
ASSET = re.compile(r'(?:src|href)="(/static/v/([0-9a-f]{16})/([\w./-]+))"')


def test_index_is_html_never_cached_with_a_strict_csp(web: Web) -> None:
    response = httpx.get(web.url + "/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "img-src 'self' data: blob:" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "__STATIC__" not in response.text
    again = httpx.get(web.url + "/", headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    head = httpx.head(web.url + "/")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(response.content))


def test_every_asset_the_page_names_is_served_immutable_with_its_type(web: Web) -> None:
    page = httpx.get(web.url + "/").text
    assets = ASSET.findall(page)
    assert {name for _, _, name in assets} >= {"app.js", "style.css", "favicon.svg"}
    assert {version for _, version, _ in assets} == {bundle().version}
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
    for path, _, name in assets:
        response = httpx.get(web.url + path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == types[name[name.rfind(".") :]]
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_module_imports_all_resolve_to_shipped_files() -> None:
    files = bundle().files
    for name, asset in files.items():
        if name.endswith(".js"):
            for target in re.findall(r'from "\./([\w.-]+)"', asset.body.decode()):
                assert target in files, f"{name} imports {target}, which is not shipped"


def test_unversioned_and_stale_urls_revalidate(web: Web) -> None:
    plain = httpx.get(web.url + "/static/app.js")
    assert plain.status_code == 200 and plain.headers["cache-control"] == "no-cache"
    assert httpx.get(web.url + "/static/app.js", headers={"if-none-match": plain.headers["etag"]}).status_code == 304
    stale = httpx.get(web.url + "/static/v/0000000000000000/app.js")
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"
    assert stale.content == plain.content
    assert httpx.get(web.url + "/favicon.ico").headers["content-type"] == "image/svg+xml"


@pytest.mark.parametrize(
    "path",
    ["/static/nope.js", "/static/../pyproject.toml", "/static/%2e%2e/http/web.py", "/static/v/x/../../app.py"],
)
def test_unknown_or_escaping_paths_are_404(web: Web, path: str) -> None:
    response = httpx.get(web.url + path)
    assert response.status_code == 404
    assert "error" in response.json()


def test_models_need_a_key_and_list_ratios_sizes_and_input_limit(web: Web) -> None:
    assert httpx.get(web.url + "/v1/playground/models").status_code == 401
    response = httpx.get(web.url + "/v1/playground/models", headers={"authorization": f"Bearer {web.key}"})
    model = response.json()["data"][0]
    assert model["id"] == "gemini-2.5-flash-image" and model["max_input_images"] == 3
    assert {"ratio": "16:9", "width": 1344, "height": 768} in model["aspect_ratios"]
    assert len(model["aspect_ratios"]) == 10 and model["price_per_image"] == "0.039"
    pro = next(m for m in response.json()["data"] if m["id"] == "gemini-3-pro-image")
    assert pro["default_resolution"] == "1K" and pro["max_input_images"] == 14
    assert [(r["name"], r["price_per_image"]) for r in pro["resolutions"]] == [
        ("1K", "0.134"),
        ("2K", "0.134"),
        ("4K", "0.24"),
    ]
    four_k = pro["resolutions"][2]["sizes"]
    assert {"ratio": "16:9", "width": 5504, "height": 3072} in four_k and len(four_k) == 10


def test_jobs_describe_the_keys_own_requests_only(web: Web) -> None:
    mine = {"authorization": f"Bearer {web.key}"}
    other_key = json.loads(cli(web.server.home, "keys", "create", "--name", "other", "--json"))["key"]
    task = httpx.post(
        web.url + "/v1/async/images/generations",
        headers=mine,
        json={"prompt": "a red kite", "aspect_ratio": "3:2", "n": 2},
    ).json()
    url = f"{web.url}/v1/playground/jobs?ids={task['id']},job_doesnotexist"
    described = httpx.get(url, headers=mine).json()["data"]
    assert described == [
        {"id": task["id"], "prompt": "a red kite", "input_images": 0, "aspect_ratio": "3:2", "n": 2, "turns": 1}
    ]
    assert httpx.get(url, headers={"authorization": f"Bearer {other_key}"}).json()["data"] == []
    assert httpx.get(f"{web.url}/v1/playground/jobs?ids=,", headers=mine).status_code == 400
    too_many = ",".join(f"job_{i}" for i in range(101))
    assert httpx.get(f"{web.url}/v1/playground/jobs?ids={too_many}", headers=mine).status_code == 400
    assert httpx.get(url).status_code == 401


def test_describe_request_reads_the_last_user_turn_of_a_conversation() -> None:
    doc = {
        "turns": [
            {"role": "user", "parts": [{"text": "a cat"}]},
            {"role": "model", "parts": [{"image": "abc", "mime_type": "image/png"}]},
            {"role": "user", "parts": [{"text": "make it blue"}, {"image": "def", "mime_type": "image/png"}]},
        ],
        "aspect_ratio": None,
        "n": 1,
    }
    assert describe_request("job_1", doc) == {
        "id": "job_1",
        "prompt": "make it blue",
        "input_images": 1,
        "aspect_ratio": None,
        "n": 1,
        "turns": 3,
    }
    assert describe_request("job_2", {"turns": []})["prompt"] == ""
