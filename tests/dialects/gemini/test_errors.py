"""Domain errors rendered as Google's ``google.rpc.Status`` bodies, and read back by google-genai."""

from __future__ import annotations

import json

import httpx
import pytest
from google import genai
from google.genai import types

from imagegate.dialects.gemini.errors import model_not_found_message, render_error
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

RPC = "type.googleapis.com/google.rpc."


def test_invalid_api_key() -> None:
    status, body, headers = render_error(InvalidApiKey("key kx_123 was revoked"))
    assert status == 400
    assert headers == {}
    assert body == {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": RPC + "ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": RPC + "LocalizedMessage",
                    "locale": "en-US",
                    "message": "API key not valid. Please pass a valid API key.",
                },
            ],
        }
    }


def test_missing_api_key() -> None:
    status, body, _ = render_error(MissingApiKey("no key"))
    assert status == 403
    assert body == {
        "error": {
            "code": 403,
            "message": "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
            "status": "PERMISSION_DENIED",
        }
    }


def test_permission_denied() -> None:
    status, body, _ = render_error(PermissionDenied("This key may not use admin endpoints."))
    assert status == 403
    assert body["error"] == {
        "code": 403,
        "message": "This key may not use admin endpoints.",
        "status": "PERMISSION_DENIED",
    }


@pytest.mark.parametrize("cls", [InvalidRequest, UnknownField, InvalidImage])
def test_invalid_request_with_field_violation(cls: type[InvalidRequest]) -> None:
    message = (
        "Invalid JSON payload received. Unknown name \"negativePrompt\" at 'generation_config': Cannot find field."
    )
    status, body, headers = render_error(cls(message, field="generation_config.negative_prompt"))
    assert (status, headers) == (400, {})
    assert body == {
        "error": {
            "code": 400,
            "message": message,
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": RPC + "BadRequest",
                    "fieldViolations": [{"field": "generation_config.negative_prompt", "description": message}],
                }
            ],
        }
    }


def test_invalid_request_without_field_has_no_details() -> None:
    _, body, _ = render_error(InvalidRequest("Invalid JSON payload received. Root element must be a message."))
    assert "details" not in body["error"]


@pytest.mark.parametrize("exc", [NotFound("File files/x was not found."), ModelNotFound("models/x is not found")])
def test_not_found(exc: ImagegateError) -> None:
    status, body, _ = render_error(exc)
    assert status == 404
    assert body["error"] == {"code": 404, "message": exc.message, "status": "NOT_FOUND"}


@pytest.mark.parametrize(
    ("exc", "delay"),
    [
        (RateLimited("You exceeded your current quota.", retry_after_s=34.0), "34s"),
        (RateLimited("quota", retry_after_s=34.28667), "35s"),  # rounded up: retrying early only fails again
        (UpstreamRateLimited("The upstream quota is exhausted.", retry_after_s=0.2), "1s"),
    ],
)
def test_rate_limited_carries_retry_info(exc: RateLimited, delay: str) -> None:
    status, body, headers = render_error(exc)
    assert status == 429
    assert body["error"] == {
        "code": 429,
        "message": exc.message,
        "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": RPC + "RetryInfo", "retryDelay": delay}],
    }
    assert headers == {"Retry-After": delay.removesuffix("s")}


@pytest.mark.parametrize("exc", [RateLimited("quota"), UpstreamRateLimited("quota", retry_after_s=float("inf"))])
def test_rate_limited_without_known_delay(exc: RateLimited) -> None:
    status, body, headers = render_error(exc)
    assert status == 429
    assert "details" not in body["error"]
    assert headers == {}


def test_insufficient_credits_is_429_without_retry_info() -> None:
    status, body, headers = render_error(InsufficientCredits("Your prepayment credits are depleted."))
    assert status == 429
    assert body == {
        "error": {"code": 429, "message": "Your prepayment credits are depleted.", "status": "RESOURCE_EXHAUSTED"}
    }
    assert headers == {}


@pytest.mark.parametrize(
    "exc",
    [
        UpstreamUnavailable("The model is overloaded. Please try again later."),
        UpstreamRejected("The upstream provider refused the request."),
        UpstreamError("The upstream provider failed."),
    ],
)
def test_upstream_failures_are_503(exc: ImagegateError) -> None:
    status, body, _ = render_error(exc)
    assert status == 503
    assert body["error"] == {"code": 503, "message": exc.message, "status": "UNAVAILABLE"}


def test_upstream_timeout_is_504() -> None:
    status, body, _ = render_error(UpstreamTimeout("No answer from the model in 120 s."))
    assert status == 504
    assert body["error"]["status"] == "DEADLINE_EXCEEDED"


def test_cancelled_is_499() -> None:
    status, body, _ = render_error(JobCancelled("The job was cancelled."))
    assert status == 499
    assert body["error"] == {"code": 499, "message": "The job was cancelled.", "status": "CANCELLED"}


class _OddError(ImagegateError):
    kind = "something_new"


@pytest.mark.parametrize(
    "exc",
    [
        InternalError("sqlite3.OperationalError: database is locked at /srv/db"),
        _OddError("secret"),
        ImagegateError("x"),
    ],
)
def test_anything_else_is_a_generic_500(exc: ImagegateError) -> None:
    status, body, headers = render_error(exc)
    assert status == 500
    assert body == {
        "error": {
            "code": 500,
            "message": "An internal error has occurred. Please retry or report it to the server operator.",
            "status": "INTERNAL",
        }
    }
    assert headers == {}


def test_empty_message_gets_a_default() -> None:
    _, body, _ = render_error(UpstreamUnavailable(""))
    assert body["error"]["message"] == "The service is currently unavailable."


def test_model_not_found_message() -> None:
    expected = (
        "models/gemini-9-ultra-image is not found for API version v1beta, or is not supported for generateContent. "
        "Call ListModels to see the list of available models and their supported methods."
    )
    assert model_not_found_message("gemini-9-ultra-image", "v1beta") == expected
    assert model_not_found_message("models/gemini-9-ultra-image", "v1beta") == expected
    assert "API version v1," in model_not_found_message("x", "v1")
    assert "supported for countTokens." in model_not_found_message("x", "v1", method="countTokens")


@pytest.mark.parametrize(
    ("exc", "sdk_error"),
    [
        (InvalidApiKey("bad"), genai.errors.ClientError),
        (RateLimited("quota", retry_after_s=3), genai.errors.ClientError),
        (UpstreamUnavailable("The model is overloaded. Please try again later."), genai.errors.ServerError),
        (InternalError("boom"), genai.errors.ServerError),
    ],
)
def test_google_genai_reads_code_status_and_message(exc: ImagegateError, sdk_error: type[Exception]) -> None:
    status, body, headers = render_error(exc)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url="http://test", httpx_client=http))
    with pytest.raises(sdk_error) as info:
        client.models.generate_content(model="gemini-2.5-flash-image", contents="a cat")
    error = info.value
    assert isinstance(error, genai.errors.APIError)
    assert (error.code, error.status, error.message) == (status, body["error"]["status"], body["error"]["message"])
