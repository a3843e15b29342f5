"""Shared HTTP plumbing for providers that call an upstream API over ``httpx``: one ``HTTPUpstream`` each.

``HTTPUpstream`` owns a provider's client (timeouts, ``user-agent: imagegate/<version>``, pooled connections),
sends one request with retries where a retry cannot make the upstream do (and bill) the work twice (drawing on
the job's one retry budget, ``core.retry``), masks the provider's secrets in anything it words, and turns
transport failures into the domain's ``UpstreamTimeout`` / ``UpstreamUnavailable``. Mapping HTTP status codes
and bodies to domain errors is each provider's own business, because every upstream words its errors
differently; the hooks here let a provider say which responses are worth another try and how long the upstream
asked it to wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
import orjson
from pydantic import BaseModel, ValidationError

from imagegate import __version__
from imagegate.core.retry import RetryPolicy as RetryPolicy  # its home is core (the router uses it too)
from imagegate.core.timing import mark_first_byte
from imagegate.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from imagegate.providers.blobs import Blobs, loads_lifting
from imagegate.providers.transport import AiohttpTransport, upstream_transport

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[object]]
ResponseCheck = Callable[[httpx.Response], bool]
RetryAfter = Callable[[httpx.Response], float | None]

OptionsT = TypeVar("OptionsT", bound=BaseModel)

USER_AGENT = f"imagegate/{__version__}"

#: Statuses that mean "not done, try again" for almost every HTTP API.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

#: Failures that happen before a single byte of the request reached the upstream, so nothing can have been
#: made or billed yet. A read timeout or a broken response is deliberately absent: by then the upstream may
#: have generated (and charged for) the image, and a retry would pay for it twice.
_NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


class ProviderOptionsError(ValueError):
    """A deployment's provider options are wrong: a configuration mistake found at start-up, not a caller's."""


def parse_options(model: type[OptionsT], options: Mapping[str, object], *, provider: str) -> OptionsT:
    """Validate ``options`` with a pydantic model, explaining every problem without echoing any value (keys!)."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(options)'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise ProviderOptionsError(f"invalid options for provider {provider!r}: {problems}") from exc


def retry_after_header(response: httpx.Response) -> float | None:
    """The delay of a ``retry-after-ms`` or ``Retry-After`` header (seconds or an HTTP date), if any."""
    if (ms := response.headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def default_retryable(response: httpx.Response) -> bool:
    return response.status_code in RETRYABLE_STATUSES


def build_client(
    *,
    timeout_s: float,
    connect_timeout_s: float,
    headers: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 100,
) -> httpx.AsyncClient:
    """An ``AsyncClient`` for one provider: bounded connect time, ``timeout_s`` for everything else.

    An image call holds its connection for the whole generation, so ``max_connections`` is how many calls one
    deployment can have running upstream at once; more wait for a free connection (``providers/transport.py``).
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        headers={"user-agent": USER_AGENT, **(headers or {})},
        transport=transport or upstream_transport(max_connections),
        event_hooks={"response": [_first_byte]},
        follow_redirects=False,  # an API that redirects a POST is misconfigured; say so rather than re-POST
    )


async def _first_byte(response: httpx.Response) -> None:
    # httpx runs response hooks once the status line and headers are in, before the body is read
    mark_first_byte()


def unreadable(upstream: str, why: str) -> UpstreamUnavailable:
    """The error for a successful-looking answer imagegate cannot make sense of (an upstream fault: failover)."""
    return UpstreamUnavailable(f"{upstream} answered with a body imagegate cannot read: {why}.")


def json_object(response: httpx.Response, upstream: str) -> dict[str, Any]:
    """The JSON object of an answer, parsed with orjson (image answers are megabytes); else ``unreadable``."""
    try:
        body = orjson.loads(response.content)
    except ValueError as exc:
        raise unreadable(upstream, "it is not JSON") from exc
    if not isinstance(body, dict):
        raise unreadable(upstream, "it is not a JSON object")
    return body


def json_object_lifting(response: httpx.Response, upstream: str, key: bytes) -> tuple[dict[str, Any], Blobs]:
    """``json_object``, with the long base64 values of ``key`` left unparsed in ``Blobs`` (``providers.blobs``)."""
    try:
        body, blobs = loads_lifting(response.content, key)
    except ValueError as exc:
        raise unreadable(upstream, "it is not JSON") from exc
    if not isinstance(body, dict):
        raise unreadable(upstream, "it is not a JSON object")
    return body, blobs


def transport_error(exc: httpx.HTTPError, upstream: str) -> UpstreamError:
    """The domain error for a transport failure; the caller raises it ``from exc``."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"{upstream} did not answer in time ({type(exc).__name__}: {detail}).")
    return UpstreamUnavailable(f"{upstream} could not be reached ({type(exc).__name__}: {detail}).")


Send = Callable[[httpx.Request], Awaitable[httpx.Response]]


async def send_with_retries(
    send: Send,
    request: httpx.Request,
    *,
    policy: RetryPolicy,
    upstream: str,
    sleep: Sleep = asyncio.sleep,
    retryable: ResponseCheck = default_retryable,
    retry_after: RetryAfter = retry_after_header,
    rand: Callable[[], float] = random.random,
) -> httpx.Response:
    """``send`` ``request`` and return the last response, whatever its status; transport failures become errors.

    ``send`` reads the whole body (as ``httpx.AsyncClient.send`` does). Retries a response only when
    ``retryable`` says so (and after ``retry_after``'s delay when it gives one), and a transport failure only
    when the request never left this machine.
    """
    retry = 0
    while True:
        try:
            response = await send(request)
        except _NOT_SENT_ERRORS as exc:
            delay = policy.delay_s(retry + 1, rand=rand)
            if delay is None:
                raise transport_error(exc, upstream) from exc
            log.warning("%s: %s, retrying in %.2fs", upstream, type(exc).__name__, delay)
        except httpx.HTTPError as exc:
            raise transport_error(exc, upstream) from exc
        else:
            if not retryable(response):
                return response
            delay = policy.delay_s(retry + 1, server_delay_s=retry_after(response), rand=rand)
            if delay is None:
                return response
            log.warning("%s: HTTP %d, retrying in %.2fs", upstream, response.status_code, delay)
        retry += 1
        await sleep(delay)


class HTTPUpstream:
    """One provider's way to its upstream: the client, the retry rules, the upstream's name and secrets.

    Every HTTP provider holds one instead of its own client + send + retry + redact block. An injected
    ``client`` (tests, a shared client) belongs to whoever made it and is not closed here.
    """

    def __init__(
        self,
        name: str,
        *,
        timeout_s: float,
        connect_timeout_s: float,
        max_retries: int = 2,
        max_connections: int = 100,
        client: httpx.AsyncClient | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        secrets: tuple[str, ...] = (),
        retryable: ResponseCheck = default_retryable,
        retry_after: RetryAfter = retry_after_header,
    ) -> None:
        self.name = name
        self._owns_client = client is None
        self._send: Send
        if client is None:
            transport = upstream_transport(max_connections)
            client = build_client(timeout_s=timeout_s, connect_timeout_s=connect_timeout_s, transport=transport)
            # the transport's own buffered send: the client around it would add only cost (send_buffered)
            self._send = transport.send_buffered if isinstance(transport, AiohttpTransport) else client.send
        else:
            self._send = client.send
        self.client = client
        self.policy = policy or RetryPolicy(max_retries=max_retries)
        self.sleep = sleep
        self.rand = rand
        self._secrets = tuple(s for s in secrets if s)
        self._retryable = retryable
        self._retry_after = retry_after

    async def send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One call with the upstream's retry rules; the last response whatever its status (body read)."""
        request = self.client.build_request(method, url, json=json, data=data, files=files, headers=headers)
        return await send_with_retries(
            self._send,
            request,
            policy=self.policy,
            upstream=self.name,
            sleep=self.sleep,
            retryable=self._retryable,
            retry_after=self._retry_after,
            rand=self.rand,
        )

    def redact(self, text: str) -> str:
        """``text`` with every secret of this upstream masked (should an upstream ever quote one)."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()
