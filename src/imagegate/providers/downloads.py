"""Fetching the images an upstream answered with by URL (fal's and Replicate's CDNs, data: URLs).

A finished image is a plain GET: asking again costs the upstream nothing, so transport failures and 5xx are
retried. The size is bounded before and while reading, the provider's key is never sent (the request goes
out without the provider's auth header), and only https (or http when the upstream itself is plain http, as
in tests and sidecars) is fetched.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import httpx

from imagegate.core.images import ImageOutput, decode_base64, sniff_mime_type
from imagegate.errors import InvalidImage, UpstreamUnavailable
from imagegate.imaging import probe
from imagegate.providers.base import RETRYABLE_STATUSES, RetryPolicy, Sleep, transport_error

DEFAULT_MAX_BYTES = 50 * 1024 * 1024


def image_output(data: bytes, upstream: str, base64: memoryview | None = None) -> ImageOutput:
    """``data`` as an output image (type sniffed from the bytes, size probed), or UpstreamUnavailable;
    ``base64``: the canonical text it came as (``Blobs.decode_keeping``), for passing on."""
    mime = sniff_mime_type(data)
    if mime is None:
        raise UpstreamUnavailable(f"{upstream} returned something that is not an image.")
    try:
        width, height = probe(data)
    except InvalidImage as exc:
        raise UpstreamUnavailable(f"{upstream} returned an image ({mime}) that cannot be read.") from exc
    return ImageOutput(data=data, mime_type=mime, width=width, height=height, base64=base64)


async def download_image(
    client: httpx.AsyncClient,
    url: str,
    *,
    upstream: str,
    allow_http: bool,
    max_bytes: int = DEFAULT_MAX_BYTES,
    policy: RetryPolicy | None = None,
    sleep: Sleep = asyncio.sleep,
    rand: Callable[[], float] = random.random,
) -> ImageOutput:
    """The image at ``url`` (or in a ``data:`` URL) that ``upstream`` answered with."""
    if url.startswith("data:"):
        return image_output(_data_url(url, upstream, max_bytes), upstream)
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UpstreamUnavailable(f"{upstream} returned an image URL that is not a URL.") from exc
    allowed = ("https", "http") if allow_http else ("https",)
    if target.scheme not in allowed or not target.host:
        raise UpstreamUnavailable(f"{upstream} returned an image URL imagegate will not fetch ({target.scheme}).")
    policy = policy or RetryPolicy(max_retries=2, base_delay_s=0.5)
    retry = 0
    while True:
        try:
            return image_output(await _fetch(client, target, upstream=upstream, max_bytes=max_bytes), upstream)
        except _Retryable as exc:
            retry += 1
            delay = policy.delay_s(retry, rand=rand)
            if delay is None:
                raise exc.error from exc.__cause__
            await sleep(delay)


def _data_url(url: str, upstream: str, max_bytes: int) -> bytes:
    header, _, payload = url[5:].partition(",")
    if "base64" not in header.split(";"):
        raise UpstreamUnavailable(f"{upstream} returned a data URL without base64.")
    if 3 * (len(payload) // 4) > max_bytes + 3:
        raise UpstreamUnavailable(f"{upstream} returned an image over {max_bytes} bytes.")
    try:
        return decode_base64(payload)
    except (TypeError, ValueError) as exc:
        raise UpstreamUnavailable(f"{upstream} returned a data URL that is not base64.") from exc


class _Retryable(Exception):
    def __init__(self, error: UpstreamUnavailable) -> None:
        super().__init__(error.message)
        self.error = error


async def _fetch(client: httpx.AsyncClient, url: httpx.URL, *, upstream: str, max_bytes: int) -> bytes:
    where = f"the image URL {upstream} returned (host {url.host})"
    try:
        request = client.build_request("GET", url)
        request.headers.pop("authorization", None)  # the upstream's key is for its API, not its CDN
        response = await client.send(request, stream=True, follow_redirects=True)
        try:
            if response.status_code != 200:
                error = UpstreamUnavailable(f"Downloading {where} failed with HTTP {response.status_code}.")
                if response.status_code in RETRYABLE_STATUSES:
                    raise _Retryable(error)
                raise error
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise UpstreamUnavailable(f"{where} is {declared} bytes, over the {max_bytes}-byte limit.")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise UpstreamUnavailable(f"{where} is over the {max_bytes}-byte limit.")
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            await response.aclose()
    except httpx.HTTPError as exc:
        raise _Retryable(UpstreamUnavailable(transport_error(exc, where).message)) from exc
