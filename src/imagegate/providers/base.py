"""Shared HTTP plumbing for providers that call an upstream API over ``httpx``.

It builds the client (timeouts, ``user-agent: imagegate/<version>``), sends one request with retries where a
retry cannot make the upstream do (and bill) the work twice, and turns transport failures into the domain's
``UpstreamTimeout`` / ``UpstreamUnavailable``. Mapping HTTP status codes and bodies to domain errors is each
provider's own business, because every upstream words its errors differently; the hooks here let a provider
say which responses are worth another try and how long the upstream asked it to wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
import orjson
from pydantic import BaseModel, ValidationError

from imagegate import __version__
from imagegate.core.timing import mark_first_byte
from imagegate.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from imagegate.providers.transport import pooled_transport

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


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry: exponential backoff, or the upstream's own delay when it gave one."""

    max_retries: int = 2
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    jitter: float = 0.2  # up to this fraction is added to a backoff, so many workers do not retry in step

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_delay_s < 0 or self.max_delay_s < 0 or self.jitter < 0:
            raise ValueError("retry policy values must not be negative")

    def delay_s(
        self, retry: int, *, server_delay_s: float | None = None, rand: Callable[[], float] = random.random
    ) -> float | None:
        """Seconds to wait before retry number ``retry`` (1-based), or None when no retry should be made.

        A delay the upstream asked for is honoured exactly; if it is longer than ``max_delay_s`` waiting less
        would only be refused again, so the caller gets the error (with the delay) instead.
        """
        if retry > self.max_retries:
            return None
        if server_delay_s is not None:
            return max(0.0, server_delay_s) if server_delay_s <= self.max_delay_s else None
        backoff = min(self.max_delay_s, self.base_delay_s * 2.0 ** (retry - 1))
        return min(self.max_delay_s, backoff * (1 + self.jitter * rand()))


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
    deployment can have running upstream at once; more wait for a free connection. Thousands are fine: they are
    spread over small pools (``providers/transport.py``).
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        headers={"user-agent": USER_AGENT, **(headers or {})},
        transport=transport or pooled_transport(max_connections),
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


def transport_error(exc: httpx.HTTPError, upstream: str) -> UpstreamError:
    """The domain error for a transport failure; the caller raises it ``from exc``."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"{upstream} did not answer in time ({type(exc).__name__}: {detail}).")
    return UpstreamUnavailable(f"{upstream} could not be reached ({type(exc).__name__}: {detail}).")


async def send_with_retries(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    policy: RetryPolicy,
    upstream: str,
    sleep: Sleep = asyncio.sleep,
    retryable: ResponseCheck = default_retryable,
    retry_after: RetryAfter = retry_after_header,
    rand: Callable[[], float] = random.random,
) -> httpx.Response:
    """Send ``request`` and return the last response, whatever its status; transport failures become errors.

    Retries a response only when ``retryable`` says so (and after ``retry_after``'s delay when it gives one),
    and a transport failure only when the request never left this machine. The response body is read.
    """
    retry = 0
    while True:
        try:
            response = await client.send(request)
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
