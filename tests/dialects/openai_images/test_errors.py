"""Domain errors rendered as OpenAI's ``{"error": {...}}`` bodies, and raised as the openai SDK's exceptions."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from imagegate.dialects.openai_common.errors import (
    INTERNAL_MESSAGE,
    INVALID_API_KEY_MESSAGE,
    MISSING_API_KEY_MESSAGE,
    ModerationBlocked,
    model_not_found_message,
    render_error,
)
from imagegate.dialects.openai_images.translate import parse_generation_request
from imagegate.errors import (
    ImagegateError,
    InsufficientCredits,
    InternalError,
    InvalidApiKey,
    InvalidImage,
    InvalidRequest,
    JobCancelled,
    MissingApiKey,
    ModelNotFound,
    NotFound,
    PermissionDenied,
    RateLimited,
    UnknownField,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

from .sdk import sdk_client


def error_body(message: str, type_: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@pytest.mark.parametrize(
    ("exc", "status", "body", "headers"),
    [
        (
            InvalidRequest(
                "Invalid value: 'xyz'. Supported values are: 'url' and 'b64_json'.", field="response_format"
            ),
            400,
            error_body(
                "Invalid value: 'xyz'. Supported values are: 'url' and 'b64_json'.",
                "invalid_request_error",
                "response_format",
                "invalid_value",
            ),
            {},
        ),
        (
            InvalidImage("The image is empty.", field="image[]"),
            400,
            error_body("The image is empty.", "invalid_request_error", "image[]", "invalid_image"),
            {},
        ),
        (
            UnknownField("Unknown parameter: 'x'.", field="x"),
            400,
            error_body("Unknown parameter: 'x'.", "invalid_request_error", "x", "unknown_parameter"),
            {},
        ),
        (
            ModerationBlocked("rejected (finish reason IMAGE_SAFETY)", field="prompt"),
            400,
            error_body(
                "rejected (finish reason IMAGE_SAFETY)", "image_generation_user_error", None, "moderation_blocked"
            ),
            {},
        ),
        (
            MissingApiKey("no key"),
            401,
            error_body(MISSING_API_KEY_MESSAGE, "invalid_request_error", None, None),
            {},
        ),
        (
            InvalidApiKey("key ig_secret123 was revoked"),
            401,
            error_body("Incorrect API key provided.", "invalid_request_error", None, "invalid_api_key"),
            {},
        ),
        (
            PermissionDenied("This key may not use edits."),
            403,
            error_body("This key may not use edits.", "invalid_request_error", None, "permission_denied"),
            {},
        ),
        (
            ModelNotFound(model_not_found_message("dall-e-9")),
            404,
            error_body(
                "The model `dall-e-9` does not exist or you do not have access to it.",
                "invalid_request_error",
                None,
                "model_not_found",
            ),
            {},
        ),
        (
            NotFound(model_not_found_message("x"), field="model"),
            404,
            error_body(model_not_found_message("x"), "invalid_request_error", "model", "model_not_found"),
            {},
        ),
        (
            NotFound("POST /v1/images/foo is not a known endpoint."),
            404,
            error_body("POST /v1/images/foo is not a known endpoint.", "invalid_request_error", None, None),
            {},
        ),
        (
            RateLimited("Rate limit reached: 10 images per minute.", retry_after_s=1.2),
            429,
            error_body("Rate limit reached: 10 images per minute.", "requests", None, "rate_limit_exceeded"),
            {"retry-after": "2", "retry-after-ms": "1200"},
        ),
        (
            RateLimited("Rate limit reached."),
            429,
            error_body("Rate limit reached.", "requests", None, "rate_limit_exceeded"),
            {},
        ),
        (
            UpstreamRateLimited("The upstream's quota is exhausted.", retry_after_s=34),
            429,
            error_body("The upstream's quota is exhausted.", "requests", None, "rate_limit_exceeded"),
            {"retry-after": "34", "retry-after-ms": "34000"},
        ),
        (
            InsufficientCredits("The key has 0 credits; 2 are needed."),
            402,
            error_body("The key has 0 credits; 2 are needed.", "insufficient_quota", None, "insufficient_quota"),
            {"x-should-retry": "false"},
        ),
        (
            UpstreamTimeout("Gemini did not answer in 120 s."),
            504,
            error_body("Gemini did not answer in 120 s.", "server_error", None, "timeout"),
            {},
        ),
        (
            UpstreamUnavailable("The model is overloaded."),
            503,
            error_body("The model is overloaded.", "server_error", None, "upstream_unavailable"),
            {"x-should-retry": "true"},
        ),
        (
            UpstreamError("No provider could serve the request."),
            503,
            error_body("No provider could serve the request.", "server_error", None, "upstream_unavailable"),
            {"x-should-retry": "true"},
        ),
        (
            UpstreamRejected("The provider refused the request."),
            503,
            error_body("The provider refused the request.", "server_error", None, "upstream_unavailable"),
            {"x-should-retry": "false"},
        ),
        (
            JobCancelled("The request was cancelled."),
            400,
            error_body("The request was cancelled.", "invalid_request_error", None, "cancelled"),
            {},
        ),
        (
            InternalError("database at /var/lib/x is locked"),
            500,
            error_body(INTERNAL_MESSAGE, "server_error", None, None),
            {},
        ),
        (
            ImagegateError("something new"),
            500,
            error_body(INTERNAL_MESSAGE, "server_error", None, None),
            {},
        ),
    ],
)
def test_render(exc: ImagegateError, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
    assert render_error(exc) == (status, body, headers)


def test_keys_are_never_echoed() -> None:
    _, body, _ = render_error(InvalidApiKey("ig_live_abcdef is unknown"))
    assert body["error"]["message"] == INVALID_API_KEY_MESSAGE and "ig_" not in str(body)
    assert "Authorization header using Bearer auth" in render_error(MissingApiKey("x"))[1]["error"]["message"]


def test_parse_errors_carry_their_param() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_generation_request({"prompt": "x", "n": 11})
    _, body, _ = render_error(info.value)
    assert body["error"]["param"] == "n" and body["error"]["code"] == "invalid_value"


def _client(status: int, body: dict[str, Any], headers: dict[str, str]) -> openai.OpenAI:
    return sdk_client(lambda _: httpx.Response(status, json=body, headers=headers))


@pytest.mark.parametrize(
    ("exc", "sdk_error", "code", "param"),
    [
        (InvalidRequest("Invalid value: 'big'.", field="size"), openai.BadRequestError, "invalid_value", "size"),
        (ModerationBlocked("rejected"), openai.BadRequestError, "moderation_blocked", None),
        (MissingApiKey("no key"), openai.AuthenticationError, None, None),
        (InvalidApiKey("bad"), openai.AuthenticationError, "invalid_api_key", None),
        (PermissionDenied("no"), openai.PermissionDeniedError, "permission_denied", None),
        (ModelNotFound(model_not_found_message("dall-e-9")), openai.NotFoundError, "model_not_found", None),
        (RateLimited("slow down", retry_after_s=3), openai.RateLimitError, "rate_limit_exceeded", None),
        (InsufficientCredits("no credits"), openai.APIStatusError, "insufficient_quota", None),
        (UpstreamUnavailable("down"), openai.InternalServerError, "upstream_unavailable", None),
        (UpstreamTimeout("slow"), openai.InternalServerError, "timeout", None),
        (InternalError("boom"), openai.InternalServerError, None, None),
    ],
)
def test_the_sdk_raises_its_own_exception(
    exc: ImagegateError, sdk_error: type[openai.APIStatusError], code: str | None, param: str | None
) -> None:
    status, body, headers = render_error(exc)
    with pytest.raises(sdk_error) as info:
        _client(status, body, headers).images.generate(model="gemini-2.5-flash-image", prompt="a cat")
    error = info.value
    assert type(error) is sdk_error
    assert (error.status_code, error.code, error.param, error.type) == (
        status,
        code,
        param,
        body["error"]["type"],
    )
    assert error.message == f"Error code: {status} - {body['error']['message']}"
    assert error.body == body["error"]


def test_the_sdk_retries_what_it_should(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry headers do what they say with the real client: a 429 with retry-after-ms is retried, credits are not."""
    monkeypatch.setattr("openai._base_client.time.sleep", lambda _: None)
    for exc, expected_calls in (
        (RateLimited("slow down", retry_after_s=0.01), 3),
        (InsufficientCredits("no credits"), 1),
        (UpstreamRejected("no"), 1),
    ):
        calls = 0
        status, body, headers = render_error(exc)

        def handler(_: httpx.Request, status: int = status, body: Any = body, headers: Any = headers) -> httpx.Response:
            nonlocal calls
            calls += 1
            return httpx.Response(status, json=body, headers=headers)

        client = sdk_client(handler, max_retries=2)
        with pytest.raises(openai.APIStatusError):
            client.images.generate(model="gemini-2.5-flash-image", prompt="a cat")
        assert calls == expected_calls, exc
