"""``ImageFetcher``: turns an image URL a caller sent (``https``, ``http`` or ``data:``) into a sniffed ``ImageInput``.

A network fetch follows redirects itself so that every hop is checked again (scheme, credentials, no https→http
downgrade, and the address checks of ``VettingBackend`` on each new connection), streams the body against the
byte limit, and runs under one deadline for everything. Every failure is the caller's to fix, so it surfaces as
``InvalidRequest`` (``InvalidImage`` for the image itself) with a message naming the host and the limit, and
never quoting what the server sent.
"""

from __future__ import annotations

import asyncio
import ssl
from types import TracebackType
from urllib.parse import unquote

import httpx

from imagegate.core.images import ImageInput, decode_base64
from imagegate.errors import InvalidImage, InvalidRequest
from imagegate.fetching.network import HostRefused, PinnedTransport, Resolver, VettingBackend
from imagegate.fetching.policy import FetchPolicy
from imagegate.providers.base import USER_AGENT

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_URL_CHARS = 8192
_BASE64_WHITESPACE = " \t\r\n\f\v"


class ImageFetcher:
    """Fetches image URLs under a ``FetchPolicy``; one instance (and its connection pool) serves many fetches."""

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.policy = policy or FetchPolicy()
        backend = VettingBackend(allowed=self.policy.networks(), resolver=resolver)
        # The transport is used directly, without an AsyncClient: a client's redirect handling (which would parse
        # a Location before the checks here see it) and its cookie jar (which would carry one caller's cookies to
        # the next caller's fetch) are exactly what this module must not have.
        self._transport = PinnedTransport(
            backend, ssl_context=ssl_context or httpx.create_ssl_context(), limits=httpx.Limits()
        )
        # Images are compressed already; asking for no transfer encoding means the byte limit counts what arrives,
        # and no small gzip body can inflate past it in one step.
        self._headers = httpx.Headers({"user-agent": USER_AGENT, "accept": "image/*", "accept-encoding": "identity"})
        # The whole fetch runs under one deadline (see _download); per-read limits would only race it.
        self._timeouts = httpx.Timeout(None, connect=self.policy.connect_timeout_s).as_dict()

    async def __aenter__(self) -> ImageFetcher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def fetch(self, url: str, *, field: str | None = None) -> ImageInput:
        """The image at ``url`` (or in a ``data:`` URL), its type sniffed from the bytes.

        Raises ``InvalidRequest`` (with ``field``) when the URL may not or cannot be fetched, and ``InvalidImage``
        when what arrived is too large, empty, or no supported image.
        """
        text = url.strip()
        if text[:5].lower() == "data:":
            return decode_data_url(text, max_bytes=self.policy.max_bytes, field=field)
        target = self._checked_url(text, field=field, what="The image URL")
        data = await self._download(target, field=field)
        return ImageInput.from_bytes(data, field=field)

    def _checked_url(self, text: str, *, field: str | None, what: str) -> httpx.URL:
        if len(text) > _MAX_URL_CHARS:
            raise InvalidRequest(f"{what} is longer than {_MAX_URL_CHARS} characters.", field=field)
        try:
            url = httpx.URL(text)
        except httpx.InvalidURL:
            raise InvalidRequest(f"{what} is not a valid URL.", field=field) from None
        allowed = " or ".join(self.policy.allowed_schemes)
        if not url.scheme:
            raise InvalidRequest(f"{what} has no scheme; write it in full, e.g. https://host/image.png.", field=field)
        if url.scheme not in self.policy.allowed_schemes:
            raise InvalidRequest(f"{what} uses {url.scheme}:, but only {allowed} URLs can be fetched.", field=field)
        if url.userinfo:
            raise InvalidRequest(
                f"{what} contains credentials (user:password@); image URLs with credentials are refused.",
                field=field,
            )
        if not url.host:
            raise InvalidRequest(f"{what} has no host.", field=field)
        return url

    async def _download(self, url: httpx.URL, *, field: str | None) -> bytes:
        current = url
        try:
            async with asyncio.timeout(self.policy.timeout_s):
                redirects = 0
                while True:
                    response = await self._send(current)
                    try:
                        if response.status_code not in _REDIRECT_STATUSES:
                            return await self._read_body(current, response, field=field)
                        redirects += 1
                        if redirects > self.policy.max_redirects:
                            raise InvalidRequest(
                                f"The image URL redirects more than {self.policy.max_redirects} times "
                                f"(the limit; the last redirect came from {current.host}).",
                                field=field,
                            )
                        current = self._redirect_target(current, response, field=field)
                    finally:
                        await response.aclose()
        except TimeoutError:
            raise InvalidRequest(
                f"Fetching the image from {current.host} took longer than the {self.policy.timeout_s:g} s limit.",
                field=field,
            ) from None
        except HostRefused as exc:
            raise InvalidRequest(str(exc), field=field) from None
        except httpx.HTTPError as exc:
            raise InvalidRequest(self._transport_message(exc, current.host), field=field) from exc

    async def _send(self, url: httpx.URL) -> httpx.Response:
        request = httpx.Request("GET", url, headers=self._headers, extensions={"timeout": self._timeouts})
        response = await self._transport.handle_async_request(request)
        response.request = request
        return response

    def _redirect_target(self, current: httpx.URL, response: httpx.Response, *, field: str | None) -> httpx.URL:
        what = f"The redirect from {current.host}"
        location = response.headers.get("location")
        if not location:
            raise InvalidRequest(f"{what} (HTTP {response.status_code}) has no Location to go to.", field=field)
        try:
            joined = current.join(location)  # a relative Location is relative to the URL that answered
        except httpx.InvalidURL:
            raise InvalidRequest(f"{what} points to an invalid URL.", field=field) from None
        target = self._checked_url(str(joined), field=field, what=what)
        if current.scheme == "https" and target.scheme == "http":
            raise InvalidRequest(f"{what} downgrades https to plain http, which is refused.", field=field)
        return target

    async def _read_body(self, url: httpx.URL, response: httpx.Response, *, field: str | None) -> bytes:
        status = response.status_code
        if not 200 <= status < 300:
            phrase = httpx.codes.get_reason_phrase(status)  # the standard phrase; the server's own text is its own
            raise InvalidRequest(
                f"The image URL's host {url.host} answered HTTP {status}{f' ({phrase})' if phrase else ''}; "
                "no image could be fetched.",
                field=field,
            )
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity"):
            raise InvalidRequest(
                f"The image URL's host {url.host} sent the image {encoding}-encoded although it was asked for "
                "no encoding; fetched images are not decompressed.",
                field=field,
            )
        limit = self.policy.max_bytes
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise InvalidImage(
                f"The image at {url.host} is {_size(int(declared))}, over the {_size(limit)} limit.", field=field
            )
        chunks: list[bytes] = []
        received = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > limit:  # stop at once: a server that never stops sending must not fill the memory
                raise InvalidImage(f"The image at {url.host} is larger than the {_size(limit)} limit.", field=field)
            chunks.append(chunk)
        return b"".join(chunks)

    def _transport_message(self, exc: httpx.HTTPError, host: str) -> str:
        # Only connection failures are described in detail: their text comes from the OS or the TLS library.
        # Protocol errors can quote the bytes the server sent, and nothing a server sent is ever echoed.
        if isinstance(exc, httpx.ConnectTimeout):
            return f"Could not connect to the image URL's host {host} within {self.policy.connect_timeout_s:g} s."
        if isinstance(exc, httpx.TimeoutException):
            return f"The image URL's host {host} stopped answering before the image arrived."
        if isinstance(exc, httpx.ConnectError):
            detail = (str(exc) or type(exc).__name__)[:300]
            return f"Could not connect to the image URL's host {host} ({detail})."
        if isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError | httpx.DecodingError):
            return f"The image URL's host {host} did not answer with valid HTTP/1.1."
        return f"Fetching the image from {host} failed ({type(exc).__name__})."


def decode_data_url(url: str, *, max_bytes: int, field: str | None = None) -> ImageInput:
    """The image in a ``data:[<type>][;...];base64,<data>`` URL; the declared type is ignored, the bytes decide."""
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise InvalidRequest("The data URL has no ',' before its data.", field=field)
    if "base64" not in (param.strip().lower() for param in header.split(";")[1:]):
        raise InvalidRequest("Only base64 data URLs are accepted (data:image/png;base64,...).", field=field)
    if "%" in payload:  # some clients percent-encode the whole URL ('+' as %2B)
        payload = unquote(payload)
    # The size is checked before decoding: every 4 base64 characters carry 3 bytes.
    chars = len(payload) - sum(payload.count(c) for c in _BASE64_WHITESPACE) - payload.count("=")
    if (size := chars * 3 // 4) > max_bytes:
        raise InvalidImage(f"The data URL's image is {_size(size)}, over the {_size(max_bytes)} limit.", field=field)
    try:
        data = decode_base64(payload)
    except ValueError:
        raise InvalidImage("The data URL's data is not valid base64.", field=field) from None
    return ImageInput.from_bytes(data, field=field)


def _size(n: int) -> str:
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"
