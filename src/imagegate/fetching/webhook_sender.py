"""Sending webhook calls under the same address rules as image fetching.

A webhook URL is chosen by the caller, so it is as much an SSRF risk as an image URL: it is only ever
connected to through the vetting backend (no private, loopback or metadata addresses unless allow-listed),
and redirects are not followed.
"""

from __future__ import annotations

import httpx

from imagegate.fetching.network import PinnedTransport, VettingBackend
from imagegate.fetching.policy import FetchPolicy
from imagegate.providers.base import USER_AGENT


class WebhookSender:
    def __init__(self, policy: FetchPolicy | None = None, *, timeout_s: float = 10.0) -> None:
        policy = policy or FetchPolicy()
        transport = PinnedTransport(
            VettingBackend(allowed=policy.networks()),
            ssl_context=httpx.create_ssl_context(),
            limits=httpx.Limits(max_connections=20),
        )
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=policy.connect_timeout_s),
            headers={"user-agent": USER_AGENT, "content-type": "application/json"},
            follow_redirects=False,
            trust_env=False,
        )

    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST ``body``; the HTTP status, or an exception whose text says why nothing was answered."""
        response = await self._client.post(url, content=body, headers=headers)
        return response.status_code

    async def aclose(self) -> None:
        await self._client.aclose()
