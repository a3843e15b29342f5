"""The ``vertex`` provider: Vertex AI ``generateContent`` with google-auth credentials, or an express-mode key.

Two levels. Over ``httpx.MockTransport``, with stand-in credentials: the URLs (regional, global, express,
resource names), what is sent, Vertex's answers and ``google.rpc.Status`` errors. Over real loopback HTTP
(``fakes.vertex_server``): a service account key made in the test (a throwaway RSA key from ``cryptography``)
whose ``token_uri`` is the fake's token endpoint, so google-auth's JWT-bearer exchange, the bearer token
reaching Vertex, caching, expiry, refresh after a 401 and one refresh for many concurrent calls are all real.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import io
import json
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fakes.loopback import serve
from fakes.vertex_server import UNAUTHENTICATED, FakeGoogle
from google.auth import _exponential_backoff
from google.auth import credentials as google_credentials
from google.oauth2 import _client as oauth2_client
from PIL import Image

from imagegate.core.capabilities import NANO_BANANA
from imagegate.core.images import ImageInput
from imagegate.core.jobs import Generation, JobSpec, Role, SearchGrounding, Turn, Usage
from imagegate.core.ports import ImageProvider
from imagegate.dialects.gemini.requests import parse_generate_request
from imagegate.dialects.gemini.requests import to_job_spec as gemini_spec
from imagegate.errors import (
    InvalidRequest,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from imagegate.providers.base import ProviderOptionsError, RetryPolicy
from imagegate.providers.gemini import build_request_body
from imagegate.providers.vertex import VertexOptions, VertexProvider

MODEL = "gemini-2.5-flash-image"
PROJECT = "imagegate-test"
EMAIL = f"imagegate@{PROJECT}.iam.gserviceaccount.com"
KEY_ID = "3f5a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a"
EXPRESS_KEY = "AQ.Ab8RN6-express-test-key-0123456789"


def png(width: int, height: int, seed: int = 0) -> bytes:
    pixels = random.Random(seed).randbytes(width * height * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(out, format="PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


SQUARE = png(64, 64, seed=1)
INPUT = png(48, 32, seed=3)

# -- Vertex answers and errors ---------------------------------------------------------------------------

ANSWER = {
    "candidates": [
        {
            "content": {"role": "model", "parts": [{"inlineData": {"mimeType": "image/png", "data": b64(SQUARE)}}]},
            "finishReason": "STOP",
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 270,
        "candidatesTokenCount": 1290,
        "totalTokenCount": 1560,
        "trafficType": "ON_DEMAND",
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}, {"modality": "IMAGE", "tokenCount": 258}],
        "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
    },
    "modelVersion": "gemini-2.5-flash-image",
    "createTime": "2025-10-02T10:00:00.000000Z",
    "responseId": "abc123",
}

PROMPT_BLOCKED = {
    "promptFeedback": {
        "blockReason": "PROHIBITED_CONTENT",
        "blockReasonMessage": "The prompt could not be submitted. This prompt contains content that is prohibited.",
    },
    "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9, "trafficType": "ON_DEMAND"},
    "modelVersion": "gemini-2.5-flash-image",
}

IMAGE_SAFETY = {
    "candidates": [{"finishReason": "IMAGE_SAFETY", "finishMessage": "Unable to show the generated image."}],
    "usageMetadata": {"promptTokenCount": 18, "totalTokenCount": 18, "trafficType": "ON_DEMAND"},
}

RESOURCE_EXHAUSTED = {  # Vertex's pay-as-you-go 429: no RetryInfo, a rate all the same
    "error": {
        "code": 429,
        "message": "Resource exhausted. Please try again later. Please refer to "
        "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.",
        "status": "RESOURCE_EXHAUSTED",
    }
}

QUOTA_WITH_DELAY = {
    "error": {
        "code": 429,
        "message": "Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}],
    }
}

PERMISSION_DENIED = {
    "error": {
        "code": 403,
        "message": f"Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/"
        f"projects/{PROJECT}/locations/us-central1/publishers/google/models/{MODEL}' (or it may not exist).",
        "status": "PERMISSION_DENIED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "IAM_PERMISSION_DENIED",
                "domain": "aiplatform.googleapis.com",
            }
        ],
    }
}

SERVICE_DISABLED = {
    "error": {
        "code": 403,
        "message": f"Vertex AI API has not been used in project {PROJECT} before or it is disabled.",
        "status": "PERMISSION_DENIED",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED"}],
    }
}

MODEL_NOT_FOUND = {
    "error": {
        "code": 404,
        "message": f"Publisher Model `projects/{PROJECT}/locations/us-central1/publishers/google/models/gemini-9` "
        "was not found or your project does not have access to it.",
        "status": "NOT_FOUND",
    }
}

INVALID_ARGUMENT = {
    "error": {
        "code": 400,
        "message": "Request contains an invalid argument.",
        "status": "INVALID_ARGUMENT",
    }
}

FAILED_PRECONDITION = {
    "error": {
        "code": 400,
        "message": "Project `123456` is not allowed to use Publisher Model `gemini-2.5-flash-image`",
        "status": "FAILED_PRECONDITION",
    }
}

UNAVAILABLE = {"error": {"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE"}}
DEADLINE = {"error": {"code": 504, "message": "Deadline exceeded.", "status": "DEADLINE_EXCEEDED"}}

# -- harness over MockTransport --------------------------------------------------------------------------


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)  # google-auth's naive UTC


class CountingCredentials(google_credentials.Credentials):
    """Credentials whose refresh hands out tok-1, tok-2...: counts refreshes and the threads they ran on."""

    def __init__(self, *, token: str | None = None, lifetime_s: float = 3600, slow_s: float = 0.0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.token = token
        self.expiry = utcnow() + datetime.timedelta(seconds=lifetime_s) if token else None
        self.lifetime_s = lifetime_s
        self.slow_s = slow_s
        self.refreshes = 0
        self.threads: set[int] = set()

    def refresh(self, request: Any) -> None:
        self.threads.add(threading.get_ident())
        time.sleep(self.slow_s)  # blocking, as google-auth's HTTP call is
        self.refreshes += 1
        self.token = f"tok-{self.refreshes}"
        self.expiry = utcnow() + datetime.timedelta(seconds=self.lifetime_s)


Answer = Callable[[httpx.Request], httpx.Response]


def reply(code: int, body: Any) -> Answer:
    return lambda request: httpx.Response(code, json=body)


def fail(exc_type: type[httpx.TransportError]) -> Answer:
    def raise_it(request: httpx.Request) -> httpx.Response:
        raise exc_type("scripted failure", request=request)

    return raise_it


class Upstream:
    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return (self.answers.pop(0) if len(self.answers) > 1 else self.answers[0])(request)


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@dataclass
class Made:
    provider: VertexProvider
    upstream: Upstream
    sleep: FakeSleep
    credentials: CountingCredentials | None


Factory = Callable[..., Made]


@pytest.fixture
async def vertex() -> AsyncIterator[Factory]:
    providers: list[VertexProvider] = []
    clients: list[httpx.AsyncClient] = []

    def make(
        *answers: Answer,
        credentials: CountingCredentials | None = None,
        retry_policy: RetryPolicy | None = None,
        **options: Any,
    ) -> Made:
        upstream, sleep = Upstream(*answers), FakeSleep()
        clients.append(httpx.AsyncClient(transport=httpx.MockTransport(upstream)))
        parsed = VertexOptions(**options)
        if credentials is None and not parsed.express:
            credentials = CountingCredentials(token="tok-0")
        provider = VertexProvider(
            parsed,
            credentials=credentials,
            project=PROJECT,
            client=clients[-1],
            sleep=sleep,
            retry_policy=retry_policy,
        )
        providers.append(provider)
        return Made(provider, upstream, sleep, credentials)

    yield make
    for provider in providers:
        await provider.aclose()
    for client in clients:
        await client.aclose()


def spec(prompt: str = "A nano banana dish in a fancy restaurant", **changes: Any) -> JobSpec:
    return JobSpec(model=MODEL, turns=(Turn(Role.USER, (prompt,)),), **changes)


async def generate(provider: VertexProvider, job: JobSpec | None = None, model: str = MODEL) -> Generation:
    return await provider.generate(job or spec(), NANO_BANANA, model)


# -- where it goes, what is sent -------------------------------------------------------------------------


async def test_regional_endpoint_bearer_token_and_the_gemini_body(vertex: Factory) -> None:
    made = vertex(reply(200, ANSWER), location="us-central1")
    job = JobSpec(
        model=MODEL,
        turns=(Turn(Role.USER, (ImageInput.from_bytes(INPUT), "Make it blue")),),
        system_instruction="Be careful.",
        aspect_ratio="16:9",
        seed=3,
    )
    await generate(made.provider, job)
    [request] = made.upstream.requests
    assert str(request.url) == (
        f"https://us-central1-aiplatform.googleapis.com/v1/projects/{PROJECT}/locations/us-central1/"
        f"publishers/google/models/{MODEL}:generateContent"
    )
    assert request.headers["authorization"] == "Bearer tok-0"
    assert "x-goog-api-key" not in request.headers
    assert json.loads(request.content) == build_request_body(job)  # the very body AI Studio gets


async def test_global_location_uses_the_global_host(vertex: Factory) -> None:
    made = vertex(reply(200, ANSWER))
    await generate(made.provider)
    assert str(made.upstream.requests[0].url) == (
        f"https://aiplatform.googleapis.com/v1/projects/{PROJECT}/locations/global/"
        f"publishers/google/models/{MODEL}:generateContent"
    )


@pytest.mark.parametrize(
    ("model", "path"),
    [
        (f"models/{MODEL}", f"projects/{PROJECT}/locations/europe-west4/publishers/google/models/{MODEL}"),
        (
            f"publishers/google/models/{MODEL}",
            f"projects/{PROJECT}/locations/europe-west4/publishers/google/models/{MODEL}",
        ),
        (
            "projects/other/locations/europe-west4/endpoints/1234",
            "projects/other/locations/europe-west4/endpoints/1234",
        ),
    ],
)
async def test_model_names_and_resource_names(vertex: Factory, model: str, path: str) -> None:
    made = vertex(reply(200, ANSWER), location="europe-west4", api_version="v1beta1", project="my-proj")
    await generate(made.provider, model=model)
    expected = path.replace(PROJECT, "my-proj")  # the project option beats the credentials' own
    assert str(made.upstream.requests[0].url) == (
        f"https://europe-west4-aiplatform.googleapis.com/v1beta1/{expected}:generateContent"
    )


async def test_a_model_name_that_is_no_resource_name_is_refused(vertex: Factory) -> None:
    made = vertex(reply(200, ANSWER))
    for bad in ("gemini?key=x", "../../other", "a b"):
        with pytest.raises(UpstreamRejected, match="not a Vertex model name"):
            await generate(made.provider, model=bad)
    assert made.upstream.requests == []


async def test_express_mode_key_in_a_header_no_project(vertex: Factory) -> None:
    made = vertex(reply(200, ANSWER), api_key=EXPRESS_KEY)
    await generate(made.provider)
    [request] = made.upstream.requests
    assert str(request.url) == f"https://aiplatform.googleapis.com/v1/publishers/google/models/{MODEL}:generateContent"
    assert request.headers["x-goog-api-key"] == EXPRESS_KEY
    assert "authorization" not in request.headers
    assert not request.url.query


async def test_base_url_replaces_the_host(vertex: Factory) -> None:
    made = vertex(reply(200, ANSWER), base_url="https://proxy.example/vertex/", location="us-east5")
    await generate(made.provider)
    assert str(made.upstream.requests[0].url).startswith(
        f"https://proxy.example/vertex/v1/projects/{PROJECT}/locations/us-east5/publishers/google/models/"
    )


# -- what comes back -------------------------------------------------------------------------------------


async def test_answer_image_and_usage(vertex: Factory) -> None:
    made = vertex(reply(200, ANSWER))
    result = await generate(made.provider)
    assert [(i.mime_type, i.width, i.height, i.data) for i in result.images] == [("image/png", 64, 64, SQUARE)]
    assert result.usage == Usage(input_text_tokens=12, input_image_tokens=258, output_image_tokens=1290)
    assert result.model_version == "gemini-2.5-flash-image"
    assert result.finish_reason == "STOP"


async def test_a_blocked_prompt_keeps_vertexs_reason_message(vertex: Factory) -> None:
    made = vertex(reply(200, PROMPT_BLOCKED))
    result = await generate(made.provider)
    assert result.refused
    assert result.block_reason == "PROHIBITED_CONTENT"
    assert result.finish_message is not None and "prohibited" in result.finish_message
    assert result.usage == Usage(input_text_tokens=9)


async def test_image_safety_refusal(vertex: Factory) -> None:
    made = vertex(reply(200, IMAGE_SAFETY))
    result = await generate(made.provider)
    assert (result.refused, result.finish_reason) == (True, "IMAGE_SAFETY")


@pytest.mark.parametrize("content", [b"<html>ok</html>", b"[]", b'{"candidates": "x"}', b"{}"])
async def test_garbage_200_body_names_vertex(vertex: Factory, content: bytes) -> None:
    made = vertex(lambda request: httpx.Response(200, content=content))
    with pytest.raises(UpstreamUnavailable, match=r"^Vertex AI answered with a body imagegate cannot read"):
        await generate(made.provider)


# -- retries and errors ----------------------------------------------------------------------------------


async def test_429_without_retry_info_is_a_rate_backed_off(vertex: Factory) -> None:
    made = vertex(reply(429, RESOURCE_EXHAUSTED), reply(200, ANSWER))
    assert len((await generate(made.provider)).images) == 1
    assert len(made.upstream.requests) == 2
    assert len(made.sleep.delays) == 1
    assert 1.0 <= made.sleep.delays[0] <= 1.2


async def test_429_exhausted_is_rate_limited(vertex: Factory) -> None:
    made = vertex(reply(429, RESOURCE_EXHAUSTED))
    with pytest.raises(UpstreamRateLimited, match="Resource exhausted") as caught:
        await generate(made.provider)
    assert caught.value.retry_after_s is None
    assert len(made.upstream.requests) == 3


async def test_429_retry_info_is_honoured(vertex: Factory) -> None:
    made = vertex(reply(429, QUOTA_WITH_DELAY))
    with pytest.raises(UpstreamRateLimited) as caught:
        await generate(made.provider)
    assert made.sleep.delays == [7.0, 7.0]
    assert caught.value.retry_after_s == 7.0


@pytest.mark.parametrize(
    ("code", "body", "error", "words"),
    [
        (403, PERMISSION_DENIED, UpstreamRejected, f"may use Vertex AI in project {PROJECT}"),
        (403, SERVICE_DISABLED, UpstreamRejected, "has not been used in project"),
        (404, MODEL_NOT_FOUND, UpstreamRejected, f"not found upstream at Vertex AI (v1, project {PROJECT}"),
        (400, FAILED_PRECONDITION, UpstreamRejected, "cannot serve this deployment"),
        (400, INVALID_ARGUMENT, InvalidRequest, "Request contains an invalid argument."),
        (503, UNAVAILABLE, UpstreamUnavailable, "Vertex AI is unavailable"),
        (504, DEADLINE, UpstreamTimeout, "Vertex AI timed out"),
    ],
)
async def test_errors_map_like_ai_studios(
    vertex: Factory, code: int, body: Any, error: type[Exception], words: str
) -> None:
    made = vertex(reply(code, body), retry_policy=RetryPolicy(max_retries=0))
    with pytest.raises(error, match=re.escape(words)) as caught:
        await generate(made.provider)
    assert type(caught.value) is error


async def test_read_timeout_is_not_retried(vertex: Factory) -> None:
    made = vertex(fail(httpx.ReadTimeout), reply(200, ANSWER))
    with pytest.raises(UpstreamTimeout, match="Vertex AI did not answer in time"):
        await generate(made.provider)
    assert len(made.upstream.requests) == 1


async def test_a_rejected_token_is_refreshed_once_and_the_call_sent_again(vertex: Factory) -> None:
    made = vertex(reply(401, UNAUTHENTICATED), reply(200, ANSWER))
    assert len((await generate(made.provider)).images) == 1
    assert [r.headers["authorization"] for r in made.upstream.requests] == ["Bearer tok-0", "Bearer tok-1"]
    assert made.credentials is not None and made.credentials.refreshes == 1


async def test_a_token_rejected_twice_is_the_operators_problem(vertex: Factory) -> None:
    made = vertex(reply(401, UNAUTHENTICATED))
    with pytest.raises(UpstreamRejected, match="did not accept the vertex deployment's credentials") as caught:
        await generate(made.provider)
    assert len(made.upstream.requests) == 2
    assert "tok-" not in caught.value.message


async def test_express_key_rejected_is_not_echoed(vertex: Factory) -> None:
    body = {
        "error": {
            "code": 400,
            "message": f"API key not valid: {EXPRESS_KEY}",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
        }
    }
    made = vertex(reply(400, body), api_key=EXPRESS_KEY)
    with pytest.raises(UpstreamRejected, match="did not accept the vertex deployment's API key") as caught:
        await generate(made.provider)
    assert EXPRESS_KEY not in str(caught.value)
    assert len(made.upstream.requests) == 1


# -- tokens: expiry, one refresh at a time, off the event loop ------------------------------------------


async def test_an_expired_token_is_refreshed_before_the_call(vertex: Factory) -> None:
    credentials = CountingCredentials(token="tok-0", lifetime_s=60)  # inside google-auth's refresh margin
    made = vertex(reply(200, ANSWER), credentials=credentials)
    await generate(made.provider)
    await generate(made.provider)
    assert [r.headers["authorization"] for r in made.upstream.requests] == ["Bearer tok-1", "Bearer tok-2"]


async def test_many_calls_cause_one_refresh_in_a_worker_thread(vertex: Factory) -> None:
    credentials = CountingCredentials(slow_s=0.2)
    made = vertex(reply(200, ANSWER), credentials=credentials)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    tick = asyncio.create_task(ticker())
    try:
        results = await asyncio.gather(*(generate(made.provider) for _ in range(20)))
    finally:
        tick.cancel()
    assert len(results) == 20
    assert credentials.refreshes == 1
    assert threading.get_ident() not in credentials.threads
    assert ticks >= 5  # the loop kept running while the token was fetched
    assert {r.headers["authorization"] for r in made.upstream.requests} == {"Bearer tok-1"}


async def test_a_caller_cancelled_mid_refresh_does_not_start_a_second_one(vertex: Factory) -> None:
    credentials = CountingCredentials(slow_s=0.3)
    made = vertex(reply(200, ANSWER), credentials=credentials)
    first = asyncio.create_task(generate(made.provider))
    await asyncio.sleep(0.05)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await generate(made.provider)
    assert credentials.refreshes == 1


# -- over real loopback HTTP: google-auth's JWT-bearer exchange ------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account(key: rsa.RSAPrivateKey, token_uri: str, **changes: Any) -> dict[str, Any]:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": KEY_ID,
        "private_key": pem,
        "client_email": EMAIL,
        "client_id": "109876543210987654321",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{EMAIL}",
        "universe_domain": "googleapis.com",
        **changes,
    }


@dataclass
class Google:
    fake: FakeGoogle
    url: str
    key_file: Path
    info: dict[str, Any]

    def provider(self, **options: Any) -> VertexProvider:
        defaults: dict[str, Any] = {"credentials_file": str(self.key_file), "base_url": self.url}
        return VertexProvider.from_options({**defaults, **options})


@pytest.fixture
def google(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> Iterator[Google]:
    fake = FakeGoogle(rsa_key.public_key(), client_email=EMAIL, key_id=KEY_ID, project=PROJECT, api_key=EXPRESS_KEY)
    with serve(fake.app) as url:
        info = service_account(rsa_key, f"{url}/token")
        key_file = tmp_path / "service-account.json"
        key_file.write_text(json.dumps(info))
        yield Google(fake, url, key_file, info)


async def test_loopback_jwt_bearer_exchange_and_the_token_reaching_vertex(google: Google) -> None:
    provider = google.provider(location="us-central1")
    try:
        result = await generate(provider, spec(aspect_ratio="4:3"))
    finally:
        await provider.aclose()
    [claims] = google.fake.token_requests
    assert claims["iss"] == EMAIL
    assert claims["aud"] == "https://oauth2.googleapis.com/token"  # posted to the fake, addressed to Google
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert claims["header"] == {"alg": "RS256", "typ": "JWT", "kid": KEY_ID}
    [seen] = google.fake.seen
    assert seen.path == (
        f"/v1/projects/{PROJECT}/locations/us-central1/publishers/google/models/{MODEL}:generateContent"
    )
    assert seen.headers["authorization"] == "Bearer ya29.fake-1"
    assert seen.body["generationConfig"]["imageConfig"] == {"aspectRatio": "4:3"}
    assert [(i.width, i.height) for i in result.images] == [(1184, 864)]
    assert result.usage == Usage(input_text_tokens=12, output_image_tokens=1290)


async def test_loopback_the_token_is_reused_until_it_expires(google: Google) -> None:
    provider = google.provider()
    try:
        for _ in range(3):
            await generate(provider)
        assert len(google.fake.token_requests) == 1
        google.fake.expires_in = 60  # the next token lives less than google-auth's refresh margin
        provider._credentials.expiry = utcnow() - datetime.timedelta(seconds=1)  # type: ignore[union-attr]
        await generate(provider)
        await generate(provider)
    finally:
        await provider.aclose()
    assert len(google.fake.token_requests) == 3
    assert [s.headers["authorization"] for s in google.fake.seen] == [
        "Bearer ya29.fake-1",
        "Bearer ya29.fake-1",
        "Bearer ya29.fake-1",
        "Bearer ya29.fake-2",
        "Bearer ya29.fake-3",
    ]


async def test_loopback_a_revoked_token_is_replaced(google: Google) -> None:
    provider = google.provider()
    try:
        await generate(provider)
        google.fake.revoked.add("ya29.fake-1")
        result = await generate(provider)
    finally:
        await provider.aclose()
    assert len(result.images) == 1
    assert [s.headers["authorization"] for s in google.fake.seen] == [
        "Bearer ya29.fake-1",
        "Bearer ya29.fake-1",
        "Bearer ya29.fake-2",
    ]


async def test_loopback_concurrent_first_calls_share_one_exchange(google: Google) -> None:
    provider = google.provider()
    try:
        await asyncio.gather(*(generate(provider) for _ in range(10)))
    finally:
        await provider.aclose()
    assert len(google.fake.token_requests) == 1
    assert len(google.fake.seen) == 10


async def test_loopback_credentials_json_and_project_option(google: Google) -> None:
    provider = VertexProvider.from_options(
        {"credentials_json": json.dumps(google.info), "base_url": google.url, "project": "billing-proj"}
    )
    try:
        await generate(provider)
    finally:
        await provider.aclose()
    assert google.fake.seen[0].path.startswith("/v1/projects/billing-proj/locations/global/")
    assert google.info["private_key"] not in repr(provider._options)


async def test_loopback_a_key_google_does_not_know(google: Google, rsa_key: rsa.RSAPrivateKey) -> None:
    google.fake.public_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    provider = google.provider()
    try:
        with pytest.raises(UpstreamRejected, match="could not get an access token") as caught:
            await generate(provider)
    finally:
        await provider.aclose()
    assert "invalid_grant" in caught.value.message
    assert "PRIVATE KEY" not in caught.value.message
    assert google.fake.seen == []  # Vertex was never called without a token


class NoWaitBackoff(_exponential_backoff.ExponentialBackoff):
    """google-auth's backoff with its attempts kept and its waits dropped."""

    def __init__(self, total_attempts: int = 3) -> None:
        super().__init__(  # type: ignore[no-untyped-call]
            total_attempts=total_attempts, initial_wait_seconds=0.0, randomization_factor=0.0
        )


async def test_loopback_token_endpoint_down(google: Google, monkeypatch: pytest.MonkeyPatch) -> None:
    google.fake.token_failures = [(503, {"error": "temporarily_unavailable"})] * 3
    # google-auth retries the token endpoint itself; keep its attempts, drop its waits
    monkeypatch.setattr(oauth2_client, "_exponential_backoff", SimpleNamespace(ExponentialBackoff=NoWaitBackoff))
    provider = google.provider()
    try:
        with pytest.raises(UpstreamUnavailable, match="token endpoint failed"):
            await generate(provider)
    finally:
        await provider.aclose()
    assert google.fake.token_failures == []  # google-auth asked three times before giving up
    assert google.fake.seen == []
    unreachable = service_account(
        rsa.generate_private_key(public_exponent=65537, key_size=2048), "http://127.0.0.1:9/token"
    )
    provider = VertexProvider.from_options({"credentials_json": json.dumps(unreachable), "base_url": google.url})
    try:
        with pytest.raises(UpstreamUnavailable, match="token endpoint could not be reached"):
            await generate(provider)
    finally:
        await provider.aclose()


async def test_loopback_application_default_credentials(google: Google, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(google.key_file))
    provider = VertexProvider.from_options({"base_url": google.url, "location": "us-central1"})
    try:
        await generate(provider)
    finally:
        await provider.aclose()
    assert len(google.fake.token_requests) == 1
    assert google.fake.seen[0].path.startswith(f"/v1/projects/{PROJECT}/locations/us-central1/")


async def test_missing_application_default_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "nowhere.json"))
    provider = VertexProvider.from_options({"project": PROJECT})
    try:
        with pytest.raises(UpstreamRejected, match=r"has no credentials.*Application Default Credentials"):
            await generate(provider)
    finally:
        await provider.aclose()


async def test_loopback_express_mode(google: Google) -> None:
    provider = VertexProvider.from_options({"api_key": EXPRESS_KEY, "base_url": google.url})
    try:
        result = await generate(provider)
    finally:
        await provider.aclose()
    assert len(result.images) == 1
    [seen] = google.fake.seen
    assert seen.path == f"/v1/publishers/google/models/{MODEL}:generateContent"
    assert seen.headers["x-goog-api-key"] == EXPRESS_KEY
    assert google.fake.token_requests == []
    provider = VertexProvider.from_options({"api_key": "AQ.wrong-key", "base_url": google.url})
    try:
        with pytest.raises(UpstreamRejected, match="API key") as caught:
            await generate(provider)
    finally:
        await provider.aclose()
    assert "AQ.wrong" not in str(caught.value)


# -- options ---------------------------------------------------------------------------------------------


def test_one_way_in_at_a_time(tmp_path: Path) -> None:
    with pytest.raises(ProviderOptionsError, match="give one of credentials_file, credentials_json or api_key"):
        VertexProvider.from_options({"credentials_file": str(tmp_path / "a.json"), "api_key": EXPRESS_KEY})
    with pytest.raises(ProviderOptionsError, match=r"express mode \(api_key\) has no project or location"):
        VertexProvider.from_options({"api_key": EXPRESS_KEY, "location": "us-central1"})


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"location": "us-central1/../x"}, "location"),
        ({"project": "My Project"}, "project"),
        ({"api_version": "v2"}, "api_version"),
        ({"base_url": "aiplatform.googleapis.com"}, "base_url"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"api_key": ""}, "api_key"),
        ({"credentials": "x"}, "credentials: Extra inputs are not permitted"),
    ],
)
def test_option_validation(options: dict[str, Any], words: str) -> None:
    with pytest.raises(ProviderOptionsError, match=re.escape(words)):
        VertexProvider.from_options({"project": PROJECT, **options} if "api_key" not in options else options)


def test_unreadable_or_wrong_credentials_are_config_errors(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(ProviderOptionsError, match=r"credentials_file: cannot read .*missing\.json"):
        VertexProvider.from_options({"credentials_file": str(missing)})
    with pytest.raises(ProviderOptionsError, match="credentials_json: is not JSON") as caught:
        VertexProvider.from_options({"credentials_json": "{'private_key': 'hunter2'"})
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ProviderOptionsError, match="is of type 'external_account'"):
        VertexProvider.from_options({"credentials_json": json.dumps({"type": "external_account"})})
    incomplete = service_account(rsa_key, "https://oauth2.googleapis.com/token")
    del incomplete["client_email"]
    with pytest.raises(ProviderOptionsError, match="client_email"):
        VertexProvider.from_options({"credentials_json": json.dumps(incomplete)})
    broken = service_account(
        rsa_key,
        "https://oauth2.googleapis.com/token",
        private_key="-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n",
    )
    with pytest.raises(ProviderOptionsError, match="cannot be used as Google credentials") as caught:
        VertexProvider.from_options({"credentials_json": json.dumps(broken)})
    assert "c2VjcmV0" not in str(caught.value)
    no_project = service_account(rsa_key, "https://oauth2.googleapis.com/token")
    del no_project["project_id"]
    with pytest.raises(ProviderOptionsError, match="the credentials name no project; set 'project'"):
        VertexProvider.from_options({"credentials_json": json.dumps(no_project)})
    assert VertexProvider.from_options({"credentials_json": json.dumps(no_project), "project": "p"})


async def test_from_options_builds_a_working_provider(rsa_key: rsa.RSAPrivateKey) -> None:
    info = service_account(rsa_key, "https://oauth2.googleapis.com/token")
    provider = VertexProvider.from_options({"credentials_json": json.dumps(info), "location": "us-central1"})
    assert isinstance(provider, ImageProvider)
    assert info["private_key"] not in repr(provider._options)
    await provider.aclose()


def test_registered_through_the_entry_point_group() -> None:
    [entry] = entry_points(group="imagegate.providers", name="vertex")
    assert entry.load() is VertexProvider


async def test_search_grounding_and_thinking_go_in_the_gemini_body(vertex: Factory) -> None:
    made = vertex(reply(200, ANSWER), location="us-central1")
    job = spec(grounding=SearchGrounding(), include_thoughts=True, thinking_level="HIGH")
    await generate(made.provider, job)
    body = json.loads(made.upstream.requests[0].content)
    assert body["tools"] == [{"googleSearch": {}}]
    assert body["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingLevel": "HIGH"}


async def test_a_search_time_range_is_refused_as_vertex_has_none(vertex: Factory) -> None:
    made = vertex(reply(200, ANSWER), location="us-central1")
    job = spec(grounding=SearchGrounding(time_range=("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")))
    with pytest.raises(InvalidRequest) as caught:
        await generate(made.provider, job)
    assert caught.value.field == "tools.googleSearch.time_range_filter" and not made.upstream.requests


GOOGLE_KNOBS = {
    "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_LOW_AND_ABOVE"}],
    "generationConfig": {"topP": 0.5, "topK": 4, "maxOutputTokens": 100, "stopSequences": ["STOP"]},
}


async def test_safety_settings_and_sampling_reach_vertex_as_sent(vertex: Factory) -> None:
    made = vertex(reply(200, ANSWER), location="us-central1")
    request = parse_generate_request({"contents": [{"parts": [{"text": "a red fox"}]}], **GOOGLE_KNOBS})
    await generate(made.provider, gemini_spec(request, NANO_BANANA))
    body = json.loads(made.upstream.requests[0].content)
    assert body["safetySettings"] == GOOGLE_KNOBS["safetySettings"]
    config = body["generationConfig"]
    assert {k: config[k] for k in ("topP", "topK", "maxOutputTokens", "stopSequences")} == GOOGLE_KNOBS[
        "generationConfig"
    ]
