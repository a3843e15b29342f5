"""The shared HTTP plumbing: backoff arithmetic, which failures are retried, and how transport errors surface."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, SecretStr

from imagegate import __version__
from imagegate.core.images import decode_base64
from imagegate.errors import UpstreamTimeout, UpstreamUnavailable
from imagegate.providers.base import (
    ProviderOptionsError,
    RetryPolicy,
    build_client,
    parse_options,
    retry_after_header,
    send_with_retries,
)

Answer = Callable[[httpx.Request], httpx.Response]


class FakeSleep:
    """Records the delays instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Upstream:
    """A scripted upstream: each request gets the next answer; the last answer repeats for ever."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request)


def status(code: int, headers: dict[str, str] | None = None) -> Answer:
    return lambda request: httpx.Response(code, headers=headers, json={"code": code})


def fail(exc_type: type[httpx.TransportError]) -> Answer:
    def raise_it(request: httpx.Request) -> httpx.Response:
        raise exc_type("scripted failure", request=request)

    return raise_it


NO_JITTER = RetryPolicy(max_retries=2, base_delay_s=1.0, max_delay_s=60.0, jitter=0.0)


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[Upstream], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(upstream: Upstream) -> httpx.AsyncClient:
        clients.append(httpx.AsyncClient(transport=httpx.MockTransport(upstream)))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()


async def send(
    upstream: Upstream,
    client_for: Callable[[Upstream], httpx.AsyncClient],
    sleep: FakeSleep,
    policy: RetryPolicy = NO_JITTER,
    **hooks: Any,
) -> httpx.Response:
    client = client_for(upstream)
    request = client.build_request("POST", "https://upstream.test/v1/make", json={"prompt": "a banana"})
    return await send_with_retries(client.send, request, policy=policy, upstream="Test API", sleep=sleep, **hooks)


# -- RetryPolicy -----------------------------------------------------------------------------------------


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(max_retries=5, base_delay_s=1.0, max_delay_s=5.0, jitter=0.0)
    assert [policy.delay_s(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 5.0, 5.0, None]


def test_jitter_only_lengthens_and_never_passes_the_cap() -> None:
    policy = RetryPolicy(max_retries=3, base_delay_s=2.0, max_delay_s=5.0, jitter=0.5)
    assert policy.delay_s(1, rand=lambda: 0.0) == 2.0
    assert policy.delay_s(1, rand=lambda: 1.0) == 3.0
    assert policy.delay_s(3, rand=lambda: 1.0) == 5.0


def test_server_delay_is_honoured_exactly_up_to_the_cap() -> None:
    policy = RetryPolicy(max_retries=2, base_delay_s=1.0, max_delay_s=60.0, jitter=0.5)
    assert policy.delay_s(1, server_delay_s=34.0) == 34.0
    assert policy.delay_s(1, server_delay_s=60.0) == 60.0
    assert policy.delay_s(1, server_delay_s=61.0) is None  # waiting less would only be refused again
    assert policy.delay_s(3, server_delay_s=1.0) is None


def test_negative_policy_values_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(max_retries=-1)


# -- send_with_retries -----------------------------------------------------------------------------------


async def test_5xx_is_retried_with_exponential_backoff(client_for, sleep) -> None:
    upstream = Upstream(status(503), status(502), status(200))
    response = await send(upstream, client_for, sleep)
    assert response.status_code == 200
    assert len(upstream.requests) == 3
    assert sleep.delays == [1.0, 2.0]


@pytest.mark.parametrize("code", [429, 500, 502, 503, 504])
async def test_retries_run_out_and_the_last_response_is_returned(client_for, sleep, code) -> None:
    upstream = Upstream(status(code))
    response = await send(upstream, client_for, sleep)
    assert response.status_code == code
    assert len(upstream.requests) == NO_JITTER.max_retries + 1
    assert sleep.delays == [1.0, 2.0]


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 422, 501])
async def test_other_statuses_are_not_retried(client_for, sleep, code) -> None:
    upstream = Upstream(status(code), status(200))
    response = await send(upstream, client_for, sleep)
    assert response.status_code == code
    assert len(upstream.requests) == 1
    assert sleep.delays == []


async def test_retry_after_header_is_honoured(client_for, sleep) -> None:
    upstream = Upstream(status(429, {"retry-after": "7"}), status(200))
    assert (await send(upstream, client_for, sleep)).status_code == 200
    assert sleep.delays == [7.0]


async def test_a_server_delay_beyond_the_cap_is_not_waited_for(client_for, sleep) -> None:
    upstream = Upstream(status(429, {"retry-after": "3600"}), status(200))
    assert (await send(upstream, client_for, sleep)).status_code == 429
    assert len(upstream.requests) == 1
    assert sleep.delays == []


async def test_provider_hooks_decide_what_is_retried_and_how_long_to_wait(client_for, sleep) -> None:
    upstream = Upstream(status(418), status(200))
    response = await send(
        upstream, client_for, sleep, retryable=lambda r: r.status_code == 418, retry_after=lambda r: 0.25
    )
    assert response.status_code == 200
    assert sleep.delays == [0.25]


@pytest.mark.parametrize("exc_type", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
async def test_failures_before_sending_are_retried(client_for, sleep, exc_type) -> None:
    upstream = Upstream(fail(exc_type), fail(exc_type), status(200))
    assert (await send(upstream, client_for, sleep)).status_code == 200
    assert len(upstream.requests) == 3
    assert sleep.delays == [1.0, 2.0]


async def test_connect_errors_that_persist_become_upstream_unavailable(client_for, sleep) -> None:
    upstream = Upstream(fail(httpx.ConnectError))
    with pytest.raises(UpstreamUnavailable, match="Test API could not be reached") as caught:
        await send(upstream, client_for, sleep)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(upstream.requests) == 3


async def test_connect_timeouts_that_persist_become_upstream_timeout(client_for, sleep) -> None:
    upstream = Upstream(fail(httpx.ConnectTimeout))
    with pytest.raises(UpstreamTimeout) as caught:
        await send(upstream, client_for, sleep)
    assert isinstance(caught.value.__cause__, httpx.ConnectTimeout)
    assert len(upstream.requests) == 3


@pytest.mark.parametrize(
    ("exc_type", "error"),
    [
        (httpx.ReadTimeout, UpstreamTimeout),
        (httpx.WriteTimeout, UpstreamTimeout),
        (httpx.ReadError, UpstreamUnavailable),
        (httpx.RemoteProtocolError, UpstreamUnavailable),
    ],
)
async def test_failures_after_the_request_may_have_been_processed_are_never_retried(
    client_for, sleep, exc_type, error
) -> None:
    # the upstream may already have made (and billed) the image: a retry could pay for it twice
    upstream = Upstream(fail(exc_type), status(200))
    with pytest.raises(error) as caught:
        await send(upstream, client_for, sleep)
    assert isinstance(caught.value.__cause__, exc_type)
    assert len(upstream.requests) == 1
    assert sleep.delays == []


async def test_no_retries_policy_sends_once(client_for, sleep) -> None:
    upstream = Upstream(status(503), status(200))
    response = await send(upstream, client_for, sleep, policy=RetryPolicy(max_retries=0))
    assert response.status_code == 503
    assert len(upstream.requests) == 1


async def test_the_same_body_is_sent_on_every_attempt(client_for, sleep) -> None:
    upstream = Upstream(status(503), status(200))
    await send(upstream, client_for, sleep)
    assert [r.content for r in upstream.requests] == [b'{"prompt":"a banana"}'] * 2


# -- helpers ---------------------------------------------------------------------------------------------


def test_retry_after_header_forms() -> None:
    def delay(headers: dict[str, str]) -> float | None:
        return retry_after_header(httpx.Response(429, headers=headers))

    assert delay({}) is None
    assert delay({"retry-after": "12"}) == 12.0
    assert delay({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert delay({"retry-after": "soon"}) is None
    when = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 < (delay({"retry-after": format_datetime(when, usegmt=True)}) or 0) <= 30
    assert delay({"retry-after": format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)}) == 0.0


async def test_build_client_sets_timeouts_and_user_agent() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    client = build_client(
        timeout_s=120, connect_timeout_s=10, headers={"x-extra": "1"}, transport=httpx.MockTransport(record)
    )
    async with client:
        await client.get("https://upstream.test/")
    assert client.timeout == httpx.Timeout(120, connect=10)
    assert seen[0].headers["user-agent"] == f"imagegate/{__version__}"
    assert seen[0].headers["x-extra"] == "1"


def test_decode_base64_accepts_both_alphabets_with_or_without_padding() -> None:
    data = bytes(range(256)) * 3 + b"\xfb\xff"
    standard = base64.b64encode(data).decode()
    urlsafe = base64.urlsafe_b64encode(data).decode()
    assert "+" in standard
    assert "/" in standard
    assert "-" in urlsafe
    assert "_" in urlsafe
    for text in (
        standard,
        urlsafe,
        standard.rstrip("="),
        urlsafe.rstrip("="),
        "\n".join([standard[:76], standard[76:]]),
    ):
        assert decode_base64(text) == data


@pytest.mark.parametrize("text", ["not base64!", "abcde", "a"])
def test_decode_base64_refuses_garbage(text) -> None:
    with pytest.raises(ValueError, match=r"base64|Incorrect padding|impossible length"):
        decode_base64(text)


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    api_key: SecretStr
    timeout_s: float = 1.0


def test_parse_options_names_every_problem_and_echoes_no_value() -> None:
    with pytest.raises(ProviderOptionsError) as caught:
        parse_options(_Options, {"apikey": "sk-very-secret", "timeout_s": "sk-other-secret"}, provider="test")
    message = str(caught.value)
    assert "invalid options for provider 'test'" in message
    assert "api_key: Field required" in message
    assert "apikey: Extra inputs are not permitted" in message
    assert "timeout_s:" in message
    assert "secret" not in message
    assert isinstance(caught.value, ValueError)


def test_parse_options_returns_the_model() -> None:
    options = parse_options(_Options, {"api_key": "k"}, provider="test")
    assert options.api_key.get_secret_value() == "k"
