"""The domain error tree: one class per failure a caller can see.

Providers and adapters raise these (``raise ... from exc`` at their boundary); ``http/errors.py`` renders
each one once per dialect. Nothing here knows about HTTP: ``kind`` is a dialect-neutral category that the
renderers map to a status code and body.

    ImagegateError
    ├── InvalidRequest            the request itself is wrong (bad field, enum, image, size, count)
    │   ├── Unsupported           something the model or its deployments cannot do (resolution, ratio, inputs)
    │   ├── UnknownField          a field the API does not define
    │   ├── InvalidImage          bytes that are not a supported image
    │   └── ModerationBlocked     the model refused every image asked for (dialects without a 200 refusal)
    ├── MissingApiKey             no key at all
    ├── InvalidApiKey             malformed, unknown or revoked key
    ├── PermissionDenied          a valid key that may not do this
    ├── Conflict                  the resource is not in a state that allows this (e.g. cancel a finished job)
    │   └── IdempotencyConflict   the first request with this Idempotency-Key is still running
    ├── NotFound                  unknown model, job or file
    │   └── ModelNotFound
    ├── RateLimited               a quota: try again after ``retry_after_s``
    ├── InsufficientCredits       the key cannot pay; retrying will not help
    ├── UpstreamError             the provider failed; nothing was delivered or charged
    │   ├── UpstreamUnavailable   5xx / overloaded / unreachable
    │   │   └── NoDeploymentAvailable  every deployment's circuit breaker is open: try after ``retry_after_s``
    │   ├── UpstreamTimeout       no answer in time
    │   ├── UpstreamRateLimited   the provider's own quota (a RateLimited for the caller)
    │   └── UpstreamRejected      the provider refused the request as invalid or unauthorised
    ├── StorageUnavailable        the object store did not answer; nothing stored, nothing charged
    ├── JobCancelled
    │   └── BatchExpired          its batch did not finish in time (Google's 48 hours), so it never ran
    ├── InternalError
    └── IdempotencyMismatch       an Idempotency-Key reused for a different request
"""

from __future__ import annotations


class ImagegateError(Exception):
    """Base of every failure a caller can see. ``code`` is a stable machine-readable name."""

    kind = "internal"
    code = "internal_error"
    retry_after_s: float | None = None  # when trying again makes sense, if known

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidRequest(ImagegateError):
    kind = "invalid_request"
    code = "invalid_request"


class Unsupported(InvalidRequest):
    """The request asks for something the model (or every deployment serving it) cannot do."""

    code = "unsupported"


class UnknownField(InvalidRequest):
    code = "unknown_field"


class InvalidImage(InvalidRequest):
    code = "invalid_image"


class ModerationBlocked(InvalidRequest):
    code = "moderation_blocked"


class MissingApiKey(ImagegateError):
    kind = "missing_key"
    code = "missing_api_key"


class InvalidApiKey(ImagegateError):
    kind = "invalid_key"
    code = "invalid_api_key"


class PermissionDenied(ImagegateError):
    kind = "permission_denied"
    code = "permission_denied"


class Conflict(ImagegateError):
    kind = "conflict"
    code = "conflict"


class NotFound(ImagegateError):
    kind = "not_found"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class RateLimited(ImagegateError):
    kind = "rate_limited"
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float | None = None, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after_s = retry_after_s


class InsufficientCredits(ImagegateError):
    kind = "insufficient_credits"
    code = "insufficient_credits"


class UpstreamError(ImagegateError):
    kind = "upstream_unavailable"
    code = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    code = "upstream_unavailable"


class NoDeploymentAvailable(UpstreamUnavailable):
    code = "no_deployment_available"

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UpstreamTimeout(UpstreamError):
    kind = "upstream_timeout"
    code = "upstream_timeout"


class UpstreamRateLimited(UpstreamError, RateLimited):
    kind = "rate_limited"
    code = "upstream_rate_limited"

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        RateLimited.__init__(self, message, retry_after_s=retry_after_s)


class UpstreamRejected(UpstreamError):
    code = "upstream_rejected"


class StorageUnavailable(ImagegateError):
    """The object store (S3, a shared directory) did not answer: nothing was stored, nothing is charged."""

    kind = "upstream_unavailable"
    code = "storage_unavailable"


class JobCancelled(ImagegateError):
    kind = "cancelled"
    code = "cancelled"


class BatchExpired(JobCancelled):
    code = "batch_expired"


class InternalError(ImagegateError):
    kind = "internal"
    code = "internal_error"


class IdempotencyConflict(Conflict):
    code = "idempotency_in_progress"


class IdempotencyMismatch(ImagegateError):
    kind = "unprocessable"
    code = "idempotency_key_reused"


_BY_CODE: dict[str, type[ImagegateError]] = {}


def _collect(cls: type[ImagegateError]) -> None:
    _BY_CODE.setdefault(cls.code, cls)
    for sub in cls.__subclasses__():
        _collect(sub)


_collect(ImagegateError)


def error_from_code(code: str, message: str, *, retry_after_s: float | None = None) -> ImagegateError:
    """Rebuild a domain error from what a job row recorded (``code`` + ``message``)."""
    cls = _BY_CODE.get(code, InternalError)
    if issubclass(cls, RateLimited | NoDeploymentAvailable):
        return cls(message, retry_after_s=retry_after_s)
    return cls(message)
