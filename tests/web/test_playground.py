"""The playground in a real browser against a real server: sign in, generate, edit in a thread, branch, find the
jobs in the gallery, read the dashboard; at desktop and phone widths, with screenshots kept as artifacts."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from .conftest import Tab, Web

pytestmark = pytest.mark.e2e
FILE_URL = re.compile(r"/v1/files/file_\w+\?expires=\d+&signature=")


def png(color: str, size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def sign_in(page: Any, web: Web) -> None:
    page.goto(web.url + "/")
    page.get_by_label("API key").fill(web.key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Create").wait_for()


def snap(page: Any, path: Path, *, full_page: bool = False) -> None:
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=path, full_page=full_page)


def natural_width(locator: Any) -> int:
    locator.wait_for()
    loaded = "img => img.complete ? img.naturalWidth : new Promise(r => img.onload = () => r(img.naturalWidth))"
    return int(locator.evaluate(loaded))


def test_sign_in_explains_an_empty_or_wrong_key_and_remembers_a_good_one(desktop: Tab, web: Web) -> None:
    page = desktop.page
    page.goto(web.url + "/")
    page.get_by_role("button", name="Sign in").click()
    assert "Enter your API key" in page.get_by_role("alert").first.inner_text()

    page.get_by_label("API key").fill("ig_notarealkey")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("This key was not accepted").wait_for()
    assert page.get_by_label("API key").get_attribute("aria-invalid") == "true"
    desktop.expect_errors(r"status of 401", 1)  # the browser logs the refused request itself

    page.get_by_label("API key").fill(web.key)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#who-balance").get_by_text("credits").wait_for()
    assert page.evaluate("localStorage.getItem('imagegate.key')") == web.key
    page.reload()  # a returning visitor goes straight in
    page.get_by_role("link", name="Create").wait_for()
    assert page.locator("#view-signin").is_hidden()

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    assert page.evaluate("localStorage.getItem('imagegate.key')") is None


def test_generate_edit_branch_gallery_and_dashboard(desktop: Tab, web: Web, artifacts: Path) -> None:
    page = desktop.page
    sign_in(page, web)

    # Create: a shape, two images, the prompt; both land as their tasks finish.
    page.get_by_label("Prompt").fill("a lighthouse at dusk")
    page.locator(".ratio", has_text="16:9").click()
    page.locator(".segment", has_text="2").click()
    page.get_by_role("button", name="Generate").click()
    results = page.locator(".run", has_text="a lighthouse at dusk").first.locator(".result img")
    results.nth(1).wait_for()
    assert results.count() == 2
    assert natural_width(results.nth(0)) == 1344 and natural_width(results.nth(1)) == 1344
    assert FILE_URL.search(results.nth(0).get_attribute("src") or "")
    download = page.locator(".run").first.get_by_role("link", name="Download").first
    assert (download.get_attribute("download") or "").endswith(".png")

    # Copy as: the three snippets describe this very request.
    for button, needles in (
        ("curl", ["/v1/images/generations", '"n":2', '"aspect_ratio":"16:9"', "a lighthouse at dusk"]),
        ("google-genai", ["generate_content", 'aspect_ratio="16:9"', "range(2)", web.url]),
        ("openai", ["client.images.generate", "n=2", 'size="1344x768"', f"{web.url}/v1"]),
    ):
        page.locator(".copy-as").get_by_role("button", name=button, exact=True).click()
        code = page.locator("#snippet-code").inner_text()
        assert all(needle in code for needle in needles), (button, code)
        assert web.key not in code
        page.keyboard.press("Escape")
    snap(page, artifacts / "desktop-create.png")

    # Open full size, then take the first image into a thread and edit it twice.
    page.locator(".run").first.get_by_role("button", name="Open").first.click()
    assert natural_width(page.locator("#lightbox-img")) == 1344
    page.keyboard.press("Escape")
    page.locator(".run").first.get_by_role("button", name="Edit in thread").first.click()
    page.locator("#composer .tray-item img").wait_for()
    composer = page.get_by_label("Message")
    composer.fill("make it greyscale")
    composer.press("Enter")
    model_turns = page.locator(".turn.model")
    model_turns.nth(0).locator(".turn-image img").wait_for()
    composer.fill("rotate 90")
    page.get_by_role("button", name="Send").click()
    model_turns.nth(1).locator(".turn-image img").wait_for()
    # The second request carried the whole thread: the emulator edited the model's previous image.
    assert "editing 1 input image" in model_turns.nth(0).locator(".model-text").inner_text()
    assert "editing the previous image" in model_turns.nth(1).locator(".model-text").inner_text()
    assert natural_width(model_turns.nth(1).locator(".turn-image img")) == 1344
    assert page.locator(".turn.user").nth(0).locator("img").count() == 1
    snap(page, artifacts / "desktop-thread.png")

    # Branch from the first answer: a new thread with two turns; the original keeps its four.
    model_turns.nth(0).get_by_role("button", name="Branch from here").click()
    page.locator(".thread-item[aria-current='true']", has_text="Branch of").wait_for()
    assert page.locator(".turn").count() == 2
    composer.fill("make it blue")
    composer.press("Enter")
    page.locator(".turn.model").nth(1).locator(".turn-image img").wait_for()
    page.get_by_role("button", name="make it greyscale 4 turns", exact=True).click()
    assert page.locator(".turn").count() == 4

    # A refused request says why, in the thread and later in the gallery.
    composer.fill("emulate:image_safety please")
    composer.press("Enter")
    page.locator(".turn.model .error", has_text="IMAGE_SAFETY").wait_for()

    # Gallery: every job of the key, newest first, with prompt, cost and provider.
    page.get_by_role("link", name="Gallery").click()
    cards = page.locator(".gallery-card")
    cards.filter(has_text="make it blue").wait_for()
    assert cards.filter(has_text="a lighthouse at dusk").count() == 1  # one run, its two images on one card
    assert cards.filter(has_text="a lighthouse at dusk").locator(".count").inner_text() == "\u00d72"
    assert cards.filter(has_text="rotate 90").count() == 1
    lighthouse = cards.filter(has_text="a lighthouse at dusk").first
    assert "emulator" in lighthouse.inner_text() and "succeeded" in lighthouse.inner_text().lower()
    snap(page, artifacts / "desktop-gallery.png")
    lighthouse.click()
    detail = page.locator("#job-detail")
    assert "Provider" in detail.inner_text() and "emulator" in detail.inner_text()
    assert "0.078" in detail.locator(".facts").inner_text()  # two images at the list price
    assert natural_width(detail.locator(".detail-images img").first) == 1344
    page.keyboard.press("Escape")
    refused = cards.filter(has_text="emulate:image_safety please")
    assert "refused" in refused.inner_text().lower()
    refused.click()
    assert "Refused" in detail.locator(".why").inner_text()
    assert "IMAGE_SAFETY" in detail.locator(".why").inner_text()
    page.keyboard.press("Escape")

    # Dashboard: balance and spend, the day's bars, and the emulator's health.
    page.get_by_role("link", name="Dashboard").click()
    page.locator("#providers table").wait_for()
    stats = page.locator("#stats").inner_text()
    assert "Balance" in stats and "Held" in stats and "Spent" in stats
    assert page.locator("#chart-images .bar").count() == 30
    # Other tests share this key: the figure is what /v1/usage says (this test alone made 5 of them).
    usage = httpx.get(f"{web.url}/v1/usage?days=30", headers={"Authorization": f"Bearer {web.key}"}).json()["data"]
    made = sum(row["images"] for row in usage)
    assert made >= 5 and f"{made} in 30 days" in page.locator("#chart-images figcaption").inner_text()
    row = page.locator("#providers tbody tr").first
    fleet = httpx.get(f"{web.url}/v1/providers", headers={"Authorization": f"Bearer {web.key}"}).json()["data"]
    stats = fleet[0]["stats"]["1h"]
    judged = stats["requests"] - stats["rejected"]
    rate = stats["success_rate"]
    expected = "healthy" if rate >= 0.95 else "degraded" if rate >= 0.5 else "down"
    assert judged >= 5 and row.locator(".badge").inner_text().lower() == expected  # the API's figures, in words
    assert f"{stats['refusals']}" in row.locator("td[data-label=Refused]").inner_text()
    assert page.locator("#emulator-banner").is_visible()
    assert "not the real model" in page.locator("#emulator-banner").inner_text()
    snap(page, artifacts / "desktop-dashboard.png")


def test_inputs_drop_paste_pick_and_limit(desktop: Tab, web: Web, tmp_path: Path) -> None:
    page = desktop.page
    sign_in(page, web)
    red = tmp_path / "red.png"
    red.write_bytes(png("red"))
    page.locator("#create-inputs input[type=file]").set_input_files(str(red))
    drop = """([target, name]) => {
        const bytes = Uint8Array.from(atob(name), c => c.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], "dropped.png", {type: "image/png"}));
        document.querySelector(target).dispatchEvent(
            new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
    }"""
    blue = base64.b64encode(png("blue")).decode()
    page.evaluate(drop, ["#create-prompt", blue])
    paste = """(b64) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], "pasted.png", {type: "image/png"}));
        document.querySelector("#create-prompt").dispatchEvent(
            new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}));
    }"""
    page.evaluate(paste, blue)
    assert page.locator("#create-inputs .tray-item").count() == 3
    page.evaluate(paste, blue)  # one more than the model takes
    page.get_by_text("at most 3 input images").wait_for()
    assert page.locator("#create-inputs .tray-item").count() == 3
    page.get_by_role("button", name="Remove input 3").click()
    assert page.locator("#create-inputs .tray-item").count() == 2

    page.get_by_label("Prompt").fill("compose these")
    page.locator(".ratio", has_text="Auto").click()
    page.get_by_label("Prompt").press("Control+Enter")  # the keyboard shortcut generates
    image = page.locator(".run", has_text="compose these").locator(".result img")
    # Auto takes the first input's shape: 64x48 is 4:3, which the model makes at 1184x864.
    assert natural_width(image) == 1184
    page.locator(".copy-as").get_by_role("button", name="curl", exact=True).click()
    code = page.locator("#snippet-code").inner_text()
    assert "/v1/images/edits" in code and code.count("image[]=@") == 2
    page.keyboard.press("Escape")


def test_a_failed_generation_says_why_on_its_card(desktop: Tab, web: Web) -> None:
    page = desktop.page
    sign_in(page, web)
    page.get_by_label("Prompt").fill("emulate:unavailable now")
    page.get_by_role("button", name="Generate").click()
    failed = page.locator(".run", has_text="emulate:unavailable now").locator(".frame.failed")
    failed.wait_for()
    assert "overloaded" in failed.inner_text()
    page.get_by_label("Prompt").fill("")
    page.get_by_role("button", name="Generate").click()
    assert "Write a prompt first" in page.locator("#create-error").inner_text()


def test_phone_width(phone: Tab, web: Web, artifacts: Path) -> None:
    page = phone.page
    page.goto(web.url + "/")
    page.get_by_role("link", name="Create").wait_for()  # signed in from localStorage
    page.get_by_label("Prompt").fill("a cat in a teacup")
    page.locator(".ratio", has_text="9:16").click()
    page.get_by_role("button", name="Generate").click()
    assert natural_width(page.locator(".run", has_text="a cat in a teacup").locator(".result img").first) == 768
    overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert page.evaluate(overflow) <= 0
    snap(page, artifacts / "phone-create.png", full_page=True)
    page.get_by_role("button", name="Edit in thread").first.click()
    page.get_by_label("Message").fill("make it greyscale")
    page.get_by_label("Message").press("Enter")
    page.locator(".turn.model .turn-image img").wait_for()
    for view in ("Thread", "Gallery", "Dashboard"):
        page.get_by_role("link", name=view).click()
        if view == "Gallery":
            page.locator(".gallery-card").first.wait_for()
        if view == "Dashboard":
            page.locator("#providers table").wait_for()
        assert page.evaluate(overflow) <= 0, view
        snap(page, artifacts / f"phone-{view.lower()}.png", full_page=True)


def test_copied_snippets_run_and_make_the_same_images(desktop: Tab, web: Web, tmp_path: Path) -> None:
    page = desktop.page
    sign_in(page, web)
    page.get_by_label("Prompt").fill("two 'quoted' kites")
    page.locator(".ratio", has_text="3:2").click()
    page.locator(".segment", has_text="2").click()
    page.get_by_text("More options").click()
    page.get_by_label("Seed").fill("4242")
    snippets = {}
    for button in ("curl", "google-genai", "openai"):
        page.locator(".copy-as").get_by_role("button", name=button, exact=True).click()
        snippets[button] = page.locator("#snippet-code").inner_text()
        page.keyboard.press("Escape")
    env = {**os.environ, "IMAGEGATE_API_KEY": web.key}
    for name in ("google-genai", "openai"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "snippet.py").write_text(snippets[name])
        subprocess.run([sys.executable, "snippet.py"], cwd=folder, env=env, check=True, timeout=60)
        for index in (1, 2):
            with Image.open(folder / f"image-{index}.png") as made:
                assert made.size == (1248, 832), name
    curl = subprocess.run(["bash", "-c", snippets["curl"]], env=env, capture_output=True, timeout=60, check=True)
    answer = json.loads(curl.stdout)
    assert len(answer["data"]) == 2 and answer["size"] == "1248x832"
    # The seed travels in each: the OpenAI body and curl as "seed", google-genai per call as seed + i.
    assert '"seed":4242' in snippets["curl"] and 'extra_body={"seed": 4242}' in snippets["openai"]
    assert "seed=4242 + i," in snippets["google-genai"]
    with page.expect_request(lambda r: r.url.endswith("/v1/async/images/generations")) as sent:
        page.get_by_role("button", name="Generate").click()
    assert json.loads(sent.value.post_data or "{}")["seed"] == 4242
