"""The official openai client wired to an in-process handler through ``httpx.MockTransport`` (no network)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai


def sdk_client(handler: Callable[[httpx.Request], httpx.Response], *, max_retries: int = 0) -> openai.OpenAI:
    http_client = httpx.Client(transport=httpx.MockTransport(handler))
    # openai 3.x annotates http_client as its vendored httpx2.Client yet adapts a plain httpx.Client, which is
    # what users pass; the tests use the plain one on purpose.
    return openai.OpenAI(
        api_key="x",
        base_url="http://t/v1",
        http_client=http_client,  # type: ignore[arg-type]
        max_retries=max_retries,
    )
