"""A real imagegate server (emulator) and Debian's headless chromium driven by Playwright, for the web playground.

Playwright's own browser download is never used: the tests launch ``/usr/bin/chromium`` (``.ci/run`` installs
it) with the flags that keep Chromium from calling home. Without it they skip locally and fail under CI.
Every page records console errors and page errors; a test that leaves any behind fails. Screenshots go to
``$IMAGEGATE_TEST_ARTIFACTS`` (default ``test-artifacts/`` at the repository root).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from e2e.server import Server, cli, start_server

CHROMIUM = os.environ.get("IMAGEGATE_TEST_CHROMIUM", "/usr/bin/chromium")
QUIET_FLAGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--metrics-recording-only",
    "--disable-default-apps",
    "--no-default-browser-check",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
REPO_ROOT = Path(__file__).resolve().parents[2]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but the browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = Path(os.environ.get("IMAGEGATE_TEST_ARTIFACTS") or REPO_ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Web:
    """The running server, a metered key for the browser, and an unmetered one."""

    server: Server
    key: str

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    server = start_server(tmp_path_factory.mktemp("imagegate-web"))
    created = json.loads(cli(server.home, "keys", "create", "--name", "playground", "--credits", "5", "--json"))
    yield Web(server, created["key"])
    server.stop()


# Per module, not per session: Playwright's sync API keeps an event loop running in this thread until it
# stops, and pytest-asyncio tests collected after it would find that loop and fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=QUIET_FLAGS)
        sync_api.expect.set_options(timeout=15_000)  # the same patience as a page's own waits, on a loaded CI box
        yield launched
        launched.close()


@dataclass
class Tab:
    """One browser page and what went wrong in it; ``expect_errors`` accounts for failures a test provoked."""

    page: Any
    errors: list[str] = field(default_factory=list)

    def expect_errors(self, pattern: str, count: int) -> None:
        matching = [e for e in self.errors if re.search(pattern, e)]
        assert len(matching) == count, f"expected {count} errors like {pattern!r}, got {self.errors}"
        self.errors = [e for e in self.errors if e not in matching]

    def assert_clean(self) -> None:
        assert self.errors == [], f"console or page errors: {self.errors}"


def _open(browser: Any, viewport: dict[str, int], key: str | None) -> Tab:
    context = browser.new_context(viewport=viewport, device_scale_factor=1)
    if key is not None:  # a returning user: the key is already in localStorage
        context.add_init_script(f"localStorage.setItem('imagegate.key', {json.dumps(key)})")
    page = context.new_page()
    page.set_default_timeout(15_000)
    tab = Tab(page)
    page.on("console", lambda message: tab.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: tab.errors.append(f"page error: {error}"))
    return tab


@pytest.fixture
def desktop(browser: Any) -> Iterator[Tab]:
    tab = _open(browser, DESKTOP, None)
    yield tab
    tab.page.context.close()
    tab.assert_clean()


@pytest.fixture
def phone(browser: Any, web: Web) -> Iterator[Tab]:
    tab = _open(browser, PHONE, web.key)
    yield tab
    tab.page.context.close()
    tab.assert_clean()
