"""Every domain error as one of the seed's three error bodies (400, 401, 500), always with the request id."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from imagegate.core.ids import new_uuid
from imagegate.dialects.linkmodel.errors import bind_error_context, error_response, render_error
from imagegate.errors import (
    Conflict,
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
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

from .seed import Seed

REQUEST_ID = new_uuid()


def render(exc: ImagegateError, operation: str = "create task") -> tuple[int, dict[str, Any], dict[str, str]]:
    return error_response(exc, request_id=REQUEST_ID, operation=operation)


@pytest.mark.parametrize(
    "exc",
    [
        InvalidRequest("prompt is required", field="prompt"),
        UnknownField("no such field"),
        InvalidImage("images[0] is no supported image"),
        NotFound("task job_x not found"),
        ModelNotFound("model x is not offered by this server"),
        Conflict("the task has finished"),
        JobCancelled("cancelled"),
    ],
)
def test_the_callers_mistakes_are_the_seeds_400(exc: ImagegateError, seed: Seed) -> None:
    status, body, headers = render(exc)
    assert status == 400 and headers == {}
    assert body == {"code": 400, "msg": exc.message, "request_id": REQUEST_ID}
    seed.validate_response(400, body)


@pytest.mark.parametrize(
    ("exc", "msg"),
    [
        (MissingApiKey("no API key"), "missing api key"),
        (InvalidApiKey("API key not valid. Please pass a valid API key."), "invalid api key"),
        (PermissionDenied("admin only"), "permission denied: admin only"),
    ],
)
def test_key_problems_are_the_seeds_401_with_empty_data(exc: ImagegateError, msg: str, seed: Seed) -> None:
    status, body, headers = render(exc)
    assert status == 401 and headers == {"WWW-Authenticate": "Bearer"}
    assert body == {"code": 401, "data": {}, "msg": msg, "request_id": REQUEST_ID}
    seed.validate_response(401, body)


@pytest.mark.parametrize(
    ("exc", "msg"),
    [
        (InsufficientCredits("key has 0 credits"), "create task failed: billing: insufficient balance"),
        (RateLimited("retry in 2.5s", retry_after_s=2.5), "create task failed: rate limit: retry in 2.5s"),
        (UpstreamUnavailable("down"), "create task failed: upstream: down"),
        (UpstreamRejected("refused"), "create task failed: upstream: refused"),
        (UpstreamTimeout("slow"), "create task failed: upstream: slow"),
        (InternalError("db password is hunter2"), "create task failed: internal error"),
        (ImagegateError("something new"), "create task failed: internal error"),
    ],
)
def test_everything_else_is_the_seeds_500_in_its_message_style(exc: ImagegateError, msg: str, seed: Seed) -> None:
    status, body, _ = render(exc)
    assert status == 500
    assert body == {"code": 500, "msg": msg, "request_id": REQUEST_ID}
    seed.validate_response(500, body)


def test_a_rate_limit_keeps_its_retry_after() -> None:
    assert render(RateLimited("slow down", retry_after_s=2.1))[2] == {"Retry-After": "3"}
    assert render(RateLimited("slow down"))[2] == {}
    assert render(RateLimited("slow down", retry_after_s=float("inf")))[2] == {}


def test_the_operation_names_what_failed() -> None:
    assert render(InternalError("x"), "query task")[1]["msg"] == "query task failed: internal error"


def test_render_error_uses_the_bound_request_id_and_operation(in_fresh_context: Callable[..., Any], seed: Seed) -> None:
    def bound() -> tuple[int, dict[str, Any], dict[str, str]]:
        bind_error_context(REQUEST_ID, "query task")
        return render_error(InternalError("x"))

    status, body, _ = in_fresh_context(bound)
    assert body == {"code": 500, "msg": "query task failed: internal error", "request_id": REQUEST_ID}
    seed.validate_response(status, body)


def test_render_error_without_a_bound_request_still_carries_a_request_id(
    in_fresh_context: Callable[..., Any], seed: Seed
) -> None:
    status, body, _ = in_fresh_context(render_error, InvalidRequest("bad"))
    assert status == 400
    assert uuid.UUID(body["request_id"])
    seed.validate_response(status, body)


def test_the_seed_documents_exactly_these_error_statuses(seed: Seed) -> None:
    assert seed.documented_statuses == {200, 400, 401, 500}
