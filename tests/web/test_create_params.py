"""The Create form's parameters in a real browser: the diffusion knobs (steps, guidance, negative prompt) shown
only for a model whose deployment takes them and sent as the OpenAI dialect's fields; presets kept on the
server, so they come back in another browser (an older page's browser-kept presets move there once); and a
side-by-side compare of one model across the deployments that serve it, each at its own price."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from e2e.server import start_server

from .conftest import DESKTOP, PHONE, Tab, Web, _open
from .test_playground import sign_in, snap

pytestmark = pytest.mark.e2e

CONFIG = """
[[models]]
id = "local-qwen"
display_name = "Qwen-Image (local)"
max_input_images = 0
price_per_image = "0.01"
price_per_million_input_tokens = "0"

[[deployments]]
name = "emulator"
provider = "emulator"
models = {{ "gemini-2.5-flash-image" = "gemini-2.5-flash-image" }}

[[deployments]]
name = "emulator-b"
provider = "emulator"
model = "gemini-2.5-flash-image"
price_per_image = "0.05"
priority = 2

[[deployments]]
name = "gpu"
provider = "diffusers"
models = {{ "local-qwen" = "{checkpoint}" }}
"""


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    """A server with a Qwen-Image checkpoint whose family is read from its model_index.json at start-up (no
    request here reaches it: the page's submissions are answered by the test)."""
    home = tmp_path_factory.mktemp("create-params")
    checkpoint = home / "qwen-image"
    checkpoint.mkdir()
    (checkpoint / "model_index.json").write_text(json.dumps({"_class_name": "QwenImagePipeline"}))
    config = home / "imagegate.toml"
    config.write_text(CONFIG.format(checkpoint=checkpoint))
    server = start_server(home, config=config)
    yield Web(server, server.key)
    server.stop()


def _presets(web: Web) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{web.url}/v1/playground/presets", headers={"Authorization": f"Bearer {web.key}"})
    assert response.status_code == 200, response.text
    return {entry["title"]: entry for entry in response.json()["data"]}


def test_diffusion_knobs_show_for_a_local_model_and_are_sent(desktop: Tab, local: Web, artifacts: Path) -> None:
    page = desktop.page
    sent: list[dict[str, Any]] = []

    def answer(route: Any) -> None:
        sent.append(route.request.post_data_json)
        route.fulfill(status=503, json={"error": {"message": "held by the test", "code": "upstream_unavailable"}})

    page.route("**/v1/async/images/generations", answer)
    sign_in(page, local)
    page.locator("details.more summary").click()
    steps, negative = page.get_by_label("Steps"), page.get_by_label("Negative")
    expect(steps).to_be_hidden()  # Nano Banana on the emulator: no deployment of it takes them
    page.locator("#create-model").select_option("local-qwen")
    expect(steps).to_be_visible()
    expect(negative).to_be_visible()
    assert steps.get_attribute("max") == "100"  # Qwen-Image's most
    page.get_by_label("Prompt").fill("a lighthouse")
    steps.fill("12")
    page.get_by_label("Guidance").fill("3.5")
    negative.fill("blurry, text")
    snap(page, artifacts / "desktop-create-diffusion.png", full_page=True)
    page.get_by_role("button", name="Generate").click()
    page.locator(".run", has_text="a lighthouse").locator(".frame.failed").first.wait_for()
    desktop.expect_errors("503", 1)
    (body,) = sent
    assert (body["num_inference_steps"], body["guidance_scale"], body["negative_prompt"]) == (12, 3.5, "blurry, text")
    # a model whose deployments take none of them: hidden again, and not sent
    page.locator("#create-model").select_option("gemini-2.5-flash-image")
    expect(steps).to_be_hidden()
    expect(negative).to_be_hidden()


def test_presets_live_on_the_server_and_come_back_in_another_browser(browser: Any, local: Web) -> None:
    first = _open(browser, DESKTOP, None)
    try:
        page = first.page
        sign_in(page, local)
        page.locator("#create-model").select_option("local-qwen")
        page.locator("details.more summary").click()
        page.get_by_label("Steps").fill("20")
        page.get_by_label("Negative").fill("fog")
        page.locator("input[name=count][value='3']").check(force=True)
        page.once("dialog", lambda dialog: dialog.accept("qwen twenty"))
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator("#preset-list")).to_have_value("qwen twenty")
        first.assert_clean()
    finally:
        page.context.close()
    saved = _presets(local)["qwen twenty"]
    assert saved["model"] == "local-qwen"
    assert (saved["params"]["steps"], saved["params"]["negativePrompt"], saved["params"]["n"]) == (20, "fog", 3)

    # Another browser, which an older page left a preset in: it moves to the server, and both are offered.
    legacy = {"square four": {"model": "gemini-2.5-flash-image", "aspectRatio": "1:1", "n": 4, "format": "png"}}
    other = _open(browser, DESKTOP, local.key)
    try:
        page = other.page
        page.context.add_init_script(
            f"if (!sessionStorage.getItem('seeded')) {{ sessionStorage.setItem('seeded', '1');"
            f" localStorage.setItem('imagegate.presets', {json.dumps(json.dumps(legacy))}); }}"
        )
        page.goto(local.url + "/#create")
        options = page.locator("#preset-list option")
        expect(options).to_have_text(["Apply a preset…", "qwen twenty", "square four"])
        page.locator("details.more summary").click()
        page.locator("#preset-list").select_option("qwen twenty")
        expect(page.locator("#create-model")).to_have_value("local-qwen")
        expect(page.get_by_label("Steps")).to_have_value("20")
        expect(page.get_by_label("Negative")).to_have_value("fog")
        expect(page.locator("input[name=count][value='3']")).to_be_checked()
        assert page.evaluate("localStorage.getItem('imagegate.presets')") is None
        assert set(_presets(local)) == {"qwen twenty", "square four"}
        page.locator("#preset-list").select_option("square four")
        page.get_by_role("button", name="Delete").click()
        expect(options).to_have_text(["Apply a preset…", "qwen twenty"])
        other.assert_clean()
    finally:
        page.context.close()
    assert set(_presets(local)) == {"qwen twenty"}


def test_one_model_is_compared_across_its_deployments_at_their_own_prices(desktop: Tab, local: Web) -> None:
    page = desktop.page
    sign_in(page, local)
    page.get_by_label("Compare several models side by side").check()
    page.get_by_label("via emulator-b").check()
    page.get_by_label("via emulator", exact=True).check()
    expect(page.locator("#create-price")).to_contain_text("0.089")  # 0.039 on one, 0.05 on the other
    page.get_by_label("Prompt").fill("a compared kite")
    page.get_by_role("button", name="Generate").click()
    run = page.locator(".run", has_text="a compared kite")
    expect(run.locator(".run-model-name")).to_have_text(
        ["Nano Banana · emulator", "Nano Banana · emulator-b"], ignore_case=True, use_inner_text=True
    )
    expect(run.locator(".result img")).to_have_count(2)
    tasks = httpx.get(f"{local.url}/v1/tasks?limit=10", headers={"Authorization": f"Bearer {local.key}"}).json()
    served = {t["deployment"]: round(float(t["cost"]), 3) for t in tasks["data"] if t["status"] == "succeeded"}
    assert served == {"emulator": 0.039, "emulator-b": 0.05}  # each at its own image price (plus prompt tokens)


def test_a_job_pinned_to_a_deployment_that_does_not_serve_the_model_is_a_400_naming_provider(local: Web) -> None:
    response = httpx.post(
        f"{local.url}/v1/images/generations",
        headers={"Authorization": f"Bearer {local.key}"},
        json={"model": "gemini-2.5-flash-image", "prompt": "a kite", "provider": "gpu"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "provider" and "served by emulator, emulator-b" in error["message"]


def test_on_a_phone_the_new_fields_and_the_compare_list_fit(browser: Any, local: Web, artifacts: Path) -> None:
    tab = _open(browser, PHONE, local.key)
    try:
        page = tab.page
        page.goto(local.url + "/#create")
        page.locator("#create-model").select_option("local-qwen")
        page.locator("details.more summary").click()
        expect(page.get_by_label("Negative")).to_be_visible()
        page.get_by_label("Compare several models side by side").check()
        expect(page.get_by_label("via emulator-b")).to_be_visible()
        overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        assert page.evaluate(overflow) <= 0  # nothing wider than the screen
        snap(page, artifacts / "phone-create-params.png", full_page=True)
        tab.assert_clean()
    finally:
        tab.page.context.close()
