"""One real imagegate server (emulator, fresh home) per test session, and a google-genai client for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google import genai
from google.genai import types

from .server import Server, start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Loopback is allowed explicitly, so edits may use image URLs served by this same server. Many tests ask
    # the emulator to fail on purpose; the breaker would pause the one deployment for everyone after them.
    env = {"IMAGEGATE_FETCH_ALLOW_NETWORKS": '["127.0.0.1/32"]', "IMAGEGATE_ROUTING__BREAKER_FAILURES": "1000000"}
    running = start_server(tmp_path_factory.mktemp("imagegate-e2e"), env=env)
    yield running
    running.stop()


def genai_client(server: Server, *, key: str | None = None, api_version: str | None = None) -> genai.Client:
    options = (
        types.HttpOptions(base_url=server.url, api_version=api_version)
        if api_version
        else types.HttpOptions(base_url=server.url)
    )
    return genai.Client(api_key=key or server.key, http_options=options)


@pytest.fixture(scope="session")
def client(server: Server) -> genai.Client:
    return genai_client(server)
