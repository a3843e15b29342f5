"""The playground's product features in a real browser: history that survives a reload and another browser,
the price before Generate (and a key that cannot pay), one submit per double click, gallery search, reopen and
delete, the attempt trail, admin screens with CSV exports, no focus frame around the page; desktop and phone."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from e2e.server import cli

from .conftest import PHONE, Tab, Web, _open
from .test_playground import natural_width, png, sign_in, snap

pytestmark = pytest.mark.e2e


def tasks_of(web: Web, key: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{web.url}/v1/tasks?limit=100", headers={"Authorization": f"Bearer {key}"})
    return list(response.json()["data"])


def test_runs_and_threads_come_back_after_a_reload_and_in_another_browser(
    desktop: Tab, browser: Any, web: Web, tmp_path: Path, artifacts: Path
) -> None:
    page = desktop.page
    sign_in(page, web)
    page.get_by_label("Prompt").fill("a kept kite")
    page.get_by_role("button", name="Generate").click()
    page.locator(".run", has_text="a kept kite").locator(".result img").wait_for()

    page.get_by_role("link", name="Thread").click()
    page.get_by_role("button", name="New").click()
    red = tmp_path / "red.png"
    red.write_bytes(png("red", (80, 60)))
    page.locator("#composer-inputs input[type=file]").set_input_files(str(red))
    page.get_by_label("Message").fill("a kept thread")
    page.get_by_label("Message").press("Enter")
    page.locator(".turn.model .turn-image img").wait_for()
    page.get_by_label("Message").fill("now in blue")
    page.get_by_label("Message").press("Enter")
    page.locator(".turn.model").nth(1).locator(".turn-image img").wait_for()
    page.wait_for_function("() => !document.querySelector('.turn.model progress')")

    other = _open(browser, {"width": 1280, "height": 800}, web.key)  # another browser: only the key is shared
    try:
        second = other.page
        second.goto(web.url + "/#thread")
        item = second.locator(".thread-item", has_text="a kept thread")
        item.click()
        second.locator(".turn.model").nth(1).locator(".turn-image img").wait_for()
        assert second.locator(".turn").count() == 4
        assert natural_width(second.locator(".turn.user").first.locator("img")) == 80  # the input came back
        # It continues where the first browser stopped: the whole conversation is sent again.
        second.get_by_label("Message").fill("greyscale")
        second.get_by_label("Message").press("Enter")
        second.locator(".turn.model").nth(2).locator(".turn-image img").wait_for()
        assert "editing the previous image" in second.locator(".turn.model").nth(2).locator(".model-text").inner_text()
        snap(second, artifacts / "desktop-thread-reopened.png")
        second.goto(web.url + "/#create")
        second.locator(".run", has_text="a kept kite").locator(".result img").wait_for()
        other.assert_clean()
    finally:
        other.page.context.close()

    page.reload()
    page.get_by_role("link", name="Create").click()
    page.locator(".run", has_text="a kept kite").locator(".result img").wait_for()
    assert page.evaluate("document.activeElement === document.querySelector('main')") in (True, False)


def test_price_before_generate_a_poor_key_and_one_submit_per_double_click(browser: Any, web: Web) -> None:
    poor = json.loads(cli(web.server.home, "keys", "create", "--name", "poor", "--credits", "0.05", "--json"))
    tab = _open(browser, {"width": 1280, "height": 800}, poor["key"])
    try:
        page = tab.page
        page.goto(web.url + "/")
        page.get_by_role("link", name="Create").wait_for()
        price = page.locator("#create-price")
        # The quote is filled in once the page has the key's balance and the model's price: wait for it.
        expect(price).to_contain_text("1 \u00d7 0.039 = 0.039")
        expect(price).to_contain_text("balance 0.05")
        page.locator(".segment", has_text="2").click()
        expect(price).to_contain_text("2 \u00d7 0.039 = 0.078")
        expect(price).to_contain_text("not enough credit")
        assert page.get_by_role("button", name="Generate").is_disabled()
        page.locator(".segment", has_text="1").click()
        assert page.get_by_role("button", name="Generate").is_enabled()
        page.get_by_label("Prompt").fill("only once")
        page.get_by_role("button", name="Generate").dblclick()
        page.locator(".run", has_text="only once").locator(".result img").wait_for()
        assert page.locator(".run", has_text="only once").count() == 1
        assert len(tasks_of(web, poor["key"])) == 1  # the second click sent nothing
        # What is left (0.011) no longer covers an image: the page says so before anything is sent.
        page.locator("#who-balance").get_by_text("0.011").wait_for()
        assert page.get_by_role("button", name="Generate").is_disabled()
        tab.assert_clean()
    finally:
        tab.page.context.close()


def test_gallery_search_reopen_trail_and_delete(desktop: Tab, web: Web, artifacts: Path) -> None:
    page = desktop.page
    sign_in(page, web)
    for prompt in ("a searchable heron", "emulate:image_safety heron", "an unrelated teapot"):
        page.get_by_label("Prompt").fill(prompt)
        page.get_by_role("button", name="Generate").click()
        page.locator(".run", has_text=prompt).locator(".result img, .frame.refused").first.wait_for()
    refused_card = page.locator(".run", has_text="emulate:image_safety heron").locator(".frame.refused")
    assert "Refused" in refused_card.inner_text() and "Nothing was charged" in refused_card.inner_text()

    page.get_by_role("link", name="Gallery").click()
    page.get_by_label("Search the gallery").fill("heron")
    page.get_by_role("button", name="Filter").click()
    cards = page.locator(".gallery-card")
    page.wait_for_function("() => document.querySelectorAll('.gallery-card').length === 2")
    assert cards.filter(has_text="teapot").count() == 0
    heights = [cards.nth(i).bounding_box()["height"] for i in range(2)]
    assert abs(heights[0] - heights[1]) < 30, heights  # a refused card is not shorter, and says why
    assert "Refused" in cards.filter(has_text="emulate").inner_text()
    page.locator("#filter-status").select_option("succeeded")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_function("() => document.querySelectorAll('.gallery-card').length === 1")
    snap(page, artifacts / "desktop-gallery-search.png")

    cards.first.click()
    detail = page.locator("#job-detail")
    assert "Deployments tried" in detail.inner_text() and "emulator — success" in detail.inner_text()
    assert "Aspect ratio\n1:1" in detail.locator(".facts").inner_text()  # the ratio asked, not pixels
    assert re.search(r"Seeds\n\d+", detail.locator(".facts").inner_text())  # the one to make it again with
    snap(page, artifacts / "desktop-job-detail.png")
    detail.get_by_role("button", name="Open in Create").click()
    page.locator("#view-create").wait_for()
    assert page.get_by_label("Prompt").input_value() == "a searchable heron"

    page.get_by_role("link", name="Gallery").click()
    page.get_by_label("Search the gallery").fill("heron")
    page.locator("#filter-status").select_option("")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_function("() => document.querySelectorAll('.gallery-card').length === 2")
    page.once("dialog", lambda dialog: dialog.accept())
    cards.filter(has_text="emulate").click()
    detail.get_by_role("button", name="Delete").click()
    page.wait_for_function("() => document.querySelectorAll('.gallery-card').length === 1")
    page.reload()
    page.get_by_role("link", name="Gallery").click()
    page.locator(".gallery-card").first.wait_for()
    assert page.locator(".gallery-card", has_text="emulate:image_safety heron").count() == 0


def test_admin_keys_grants_usage_and_csv(browser: Any, web: Web, artifacts: Path) -> None:
    admin = json.loads(cli(web.server.home, "keys", "create", "--name", "ops", "--admin", "--json"))
    for size, name in (({"width": 1280, "height": 800}, "desktop"), (PHONE, "phone")):
        tab = _open(browser, size, admin["key"])
        try:
            page = tab.page
            page.goto(web.url + "/#admin")
            page.locator("#admin-keys table").wait_for()
            assert "playground" in page.locator("#admin-keys").inner_text()
            assert "playground" in page.locator("#admin-usage").inner_text()  # usage by key name and model
            if name == "desktop":
                page.get_by_label("Name").fill("made-in-admin")
                page.get_by_label("Credits (empty: unmetered)").fill("2")
                page.get_by_role("button", name="Create key").click()
                page.locator("#new-key-shown code").wait_for()
                assert page.locator("#new-key-shown code").inner_text().startswith("ig_")
                row = page.locator("#admin-keys tr", has_text="made-in-admin")
                page.once("dialog", lambda dialog: dialog.accept("3"))
                row.get_by_role("button", name="Grant credits").click()
                row.get_by_text("5.00").wait_for()
                page.once("dialog", lambda dialog: dialog.accept())
                row.get_by_role("button", name="Revoke").click()
                page.locator("#admin-keys tr.revoked", has_text="made-in-admin").wait_for()
                with page.expect_download() as download:
                    page.get_by_role("link", name="Ledger CSV").click()
                ledger = Path(download.value.path()).read_text()
                assert ledger.startswith("created_at,kind,key_id,key_name") and "made-in-admin" in ledger
                with page.expect_download() as download:
                    page.get_by_role("link", name="Usage CSV").click()
                assert "playground" in Path(download.value.path()).read_text()
            overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            assert page.evaluate(overflow) <= 0
            snap(page, artifacts / f"{name}-admin.png", full_page=True)
            tab.assert_clean()
        finally:
            tab.page.context.close()
    # A key without admin rights sees no Admin tab and cannot open the view.
    plain = _open(browser, {"width": 1280, "height": 800}, web.key)
    try:
        plain.page.goto(web.url + "/#admin")
        plain.page.get_by_role("link", name="Create").wait_for()
        assert plain.page.locator("#view-admin").is_hidden()
        assert plain.page.get_by_role("link", name="Admin").count() == 0
    finally:
        plain.page.context.close()


def test_no_focus_frame_after_sign_in_and_the_phone_views_fit(
    desktop: Tab, phone: Tab, web: Web, artifacts: Path
) -> None:
    page = desktop.page
    sign_in(page, web)
    shadow = page.evaluate("getComputedStyle(document.querySelector('main')).boxShadow")
    assert shadow in ("none", ""), shadow
    p = phone.page
    p.goto(web.url + "/#gallery")
    p.locator(".gallery-card, #gallery-empty:not([hidden])").first.wait_for()
    overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert p.evaluate(overflow) <= 0
    p.get_by_role("link", name="Create").click()
    model = p.locator("#create-model")
    model.scroll_into_view_if_needed()
    box = model.bounding_box()
    header = p.locator(".topbar").bounding_box()
    assert box["y"] >= header["y"] + header["height"] - 1  # the picker is never under the header
    p.get_by_role("link", name="Dashboard").click()
    p.locator("#providers table").wait_for()
    assert p.evaluate(overflow) <= 0
    ticks = p.locator("#chart-images .axis").evaluate_all("nodes => nodes.map(n => n.textContent)")
    numbers = [t for t in ticks if "/" not in t]
    assert numbers and all(t.isdigit() for t in numbers), ticks  # whole numbers for a count
    snap(p, artifacts / "phone-dashboard-health.png", full_page=True)


def test_an_oversized_input_is_refused_before_it_is_read(desktop: Tab, web: Web) -> None:
    page = desktop.page
    sign_in(page, web)
    # The refusal is a toast that hides itself after a few seconds; on a loaded machine a poll from the test
    # can come after that, so the page is asked for the toast's words in the same turn as the drop.
    said = page.evaluate(
        """() => {
        const data = new DataTransfer();
        data.items.add(new File([new Uint8Array(21 * 1024 * 1024)], "huge.png", {type: "image/png"}));
        document.querySelector("#create-prompt").dispatchEvent(
            new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
        return document.querySelector("#toast").textContent;
    }"""
    )
    assert "input images may be at most 20 MB" in said
    assert page.locator("#create-inputs .tray-item").count() == 0


def test_the_tabs_appear_only_once_the_views_work(desktop: Tab, web: Web) -> None:
    """A slow model list (a loaded server) must not leave a visible Create tab whose form does nothing yet."""
    page = desktop.page

    def slow(route: Any) -> None:
        page.wait_for_timeout(1500)  # the server answering late, not the test waiting for time
        route.continue_()

    page.route("**/v1/playground/models", slow)
    sign_in(page, web)  # returns when the Create link is visible
    assert page.locator("#create-model option").count() > 0
