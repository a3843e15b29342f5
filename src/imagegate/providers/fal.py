"""The ``fal`` provider: fal.ai's hosted models (``fal-ai/nano-banana`` and its ``/edit`` app) over ``httpx``.

Queue mode (the default) submits to ``POST {queue_base_url}/{app}``, which answers ``request_id``,
``status_url``, ``response_url`` and ``cancel_url``; the status is polled (``IN_QUEUE`` with a
``queue_position``, ``IN_PROGRESS``, ``COMPLETED``) and the result read from ``response_url``. Sync mode posts
to ``{base_url}/{app}`` and waits for the answer in one call. A job with input images goes to the edit app
(``{upstream_model}/edit`` unless ``edit_app`` names another) with the images as data URIs in ``image_urls``.
Output images (CDN URLs, or data URIs) are downloaded without the key. The key travels as
``Authorization: Key <key>``. When our call is cancelled, or ``timeout_s`` passes, the queued request is
cancelled upstream too; ``X-Fal-Request-Timeout`` tells fal not to start it at all once that time is up (if we
vanished without cancelling). The queue position is reported as progress. fal does not bill a 5xx, so 429 and
5xx are retried unless fal says ``X-Fal-Retryable: false``.

fal reports no token usage, so usage is estimated the way Google counts it (the model's tokens per image).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from imagegate.core.capabilities import Feature, ModelSpec, estimate_usage
from imagegate.core.checks import DeploymentCaps
from imagegate.core.images import encode_base64
from imagegate.core.jobs import FinishReason, Generation, JobSpec
from imagegate.core.progress import report_progress
from imagegate.errors import (
    ImagegateError,
    InvalidRequest,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from imagegate.providers import mapping
from imagegate.providers.base import (
    RETRYABLE_STATUSES,
    HTTPUpstream,
    Sleep,
    json_object,
    parse_options,
    retry_after_header,
    unreadable,
)
from imagegate.providers.downloads import DEFAULT_MAX_BYTES, download_image
from imagegate.providers.flatten import flatten

UPSTREAM = "fal.ai"
_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}


class FalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr = Field(min_length=1)
    mode: Literal["queue", "sync"] = "queue"
    base_url: str = Field(default="https://fal.run", pattern=r"^https?://")
    queue_base_url: str = Field(default="https://queue.fal.run", pattern=r"^https?://")
    edit_app: str | None = None  # the app for jobs with input images; default: "<upstream_model>/edit"
    timeout_s: float = Field(default=300, gt=0, description="longest wait for one request, queue included")
    connect_timeout_s: float = Field(default=10, gt=0)
    max_retries: int = Field(default=2, ge=0)
    poll_interval_s: float = Field(default=0.5, gt=0)
    max_download_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)


class FalProvider:
    def __init__(
        self,
        options: FalOptions,
        *,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._options = options
        self._http = HTTPUpstream(
            UPSTREAM,
            timeout_s=options.timeout_s,
            connect_timeout_s=options.connect_timeout_s,
            max_retries=options.max_retries,
            client=client,
            sleep=sleep,
            secrets=(options.api_key.get_secret_value(),),
            retryable=_retryable,
        )
        self._client = self._http.client
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls(parse_options(FalOptions, options, provider="fal"))

    @classmethod
    def capabilities(cls, options: Mapping[str, Any]) -> DeploymentCaps:
        """fal's Nano Banana apps: one prompt and images in, images and a description out; web search and the
        minimal/high thinking levels, no thoughts returned, no seed or temperature."""
        return DeploymentCaps(
            features=frozenset({Feature.THINKING, Feature.GROUNDING}),
            text_answers=False,
            needs_prompt_text=True,
            returns_thoughts=False,
            thinking_levels=frozenset({"minimal", "high"}),
            image_search=False,
            search_time_range=False,
            temperature=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def generate(self, spec: JobSpec, model: ModelSpec, upstream_model: str) -> Generation:
        prompt, images = flatten(spec, None, model.max_input_images, upstream=UPSTREAM)
        app = upstream_model.strip("/")
        body: dict[str, Any] = {
            "prompt": prompt,
            "num_images": 1,
            "output_format": _FORMATS.get(spec.output_mime_type, "png"),
        }
        if images:
            app = self._options.edit_app or f"{app}/edit"
            body["image_urls"] = [f"data:{i.mime_type};base64,{encode_base64(i.data)}" for i in images]
        if spec.aspect_ratio:
            body["aspect_ratio"] = spec.aspect_ratio
        body |= _family_fields(spec)
        if self._options.mode == "sync":
            body["sync_mode"] = True  # images come back inline as data URIs, not via the CDN
            output = await self._call("POST", f"{self._options.base_url.rstrip('/')}/{app}", app, json_body=body)
        else:
            output = await self._queued(app, body)
        if isinstance(output, Generation):
            return output
        return await self._generation(output, spec, model)

    async def _queued(self, app: str, body: dict[str, Any]) -> dict[str, Any] | Generation:
        deadline = self._clock() + self._options.timeout_s
        # fal's own time-to-start deadline: if we are gone by then, the request is dropped rather than run
        # (fal refuses values of 0.1 s or less as a bad request)
        start_by = {"x-fal-request-timeout": f"{max(1.0, self._options.timeout_s):g}"}
        queue = self._options.queue_base_url.rstrip("/")
        submitted = await self._call("POST", f"{queue}/{app}", app, json_body=body, headers=start_by)
        if isinstance(submitted, Generation):
            return submitted
        status_url, response_url = submitted.get("status_url"), submitted.get("response_url")
        if not isinstance(status_url, str) or not isinstance(response_url, str):
            raise unreadable(UPSTREAM, "the queue answer has no status_url/response_url")
        cancel_url = submitted.get("cancel_url")
        progress = _QueueProgress()
        progress.seen(submitted)
        try:
            while True:
                status = await self._call("GET", status_url, app)
                if isinstance(status, Generation):
                    return status
                state = progress.seen(status)
                if state == "COMPLETED":
                    return await self._call("GET", response_url, app)
                if state not in ("IN_QUEUE", "IN_PROGRESS"):
                    raise unreadable(UPSTREAM, f"unknown request status {state!r}")
                if self._clock() >= deadline:
                    await self._cancel(cancel_url)
                    raise UpstreamTimeout(
                        f"{UPSTREAM} did not finish the request within {self._options.timeout_s:g} s "
                        f"(last status {state}); it was cancelled."
                    )
                await self._sleep(self._options.poll_interval_s)
        except asyncio.CancelledError:
            # shielded: the cancel must go out even though this task is being cancelled
            await asyncio.shield(self._cancel(cancel_url))
            raise

    async def _cancel(self, cancel_url: object) -> None:
        """Best effort: a request we no longer want should not keep a GPU (and the bill) busy upstream."""
        if isinstance(cancel_url, str):
            with contextlib.suppress(httpx.HTTPError):
                await self._client.put(cancel_url, headers=self._auth)

    @property
    def _auth(self) -> dict[str, str]:
        return {"authorization": f"Key {self._options.api_key.get_secret_value()}"}

    async def _call(
        self,
        method: str,
        url: str,
        app: str,
        *,
        json_body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | Generation:
        response = await self._http.send(method, url, json=json_body, headers={**self._auth, **(headers or {})})
        if response.status_code in (200, 201, 202):
            return json_object(response, UPSTREAM)
        return _error_for(response, app, self._options.api_key.get_secret_value())

    async def _generation(self, output: Mapping[str, Any], spec: JobSpec, model: ModelSpec) -> Generation:
        items = output.get("images")
        if not isinstance(items, list):
            raise unreadable(UPSTREAM, "the result has no 'images' list")
        allow_http = self._options.queue_base_url.startswith("http://") or self._options.base_url.startswith("http://")
        images = []
        for item in items:
            url = item.get("url") if isinstance(item, dict) else None
            if not isinstance(url, str):
                raise unreadable(UPSTREAM, "an image has no url")
            images.append(
                await download_image(
                    self._client,
                    url,
                    upstream=UPSTREAM,
                    allow_http=allow_http,
                    max_bytes=self._options.max_download_bytes,
                    sleep=self._sleep,
                )
            )
        description = output.get("description")
        text = description if isinstance(description, str) else ""
        return Generation(
            images=tuple(images),
            text=text,
            # an answer without images (the model only talked) is what Gemini calls NO_IMAGE
            finish_reason=FinishReason.STOP if images else FinishReason.NO_IMAGE,
            finish_message=None if images else text or None,
            usage=estimate_usage(spec, model, output_images=len(images), output_text=text),
        )


def _family_fields(spec: JobSpec) -> dict[str, Any]:
    """Resolution, Search grounding and thinking as fal's Nano Banana 2 / Pro apps take them (``resolution``
    0.5K/1K/2K/4K, ``enable_web_search``, ``thinking_level`` minimal or high); fal answers with images and a
    description, never with thoughts."""
    fields: dict[str, Any] = {}
    if spec.image_size is not None:  # left out, fal's apps make their default 1K, as Google's models do
        fields["resolution"] = mapping.FAL_RESOLUTIONS[spec.image_size]
    web, _ = mapping.search(spec)  # image search and a time range: not in its capabilities
    if web:
        fields["enable_web_search"] = True
    level = mapping.thinking_level(spec)
    if level is not None:
        fields["thinking_level"] = level
    return fields


class _QueueProgress:
    """Progress from the queue position: ``ahead`` places to move up, then running, then done."""

    def __init__(self) -> None:
        self._ahead: int | None = None
        self._last: tuple[int, int] | None = None

    def seen(self, status: Mapping[str, Any]) -> object:
        """Report the progress ``status`` shows; returns its ``status`` field."""
        state, position = status.get("status"), status.get("queue_position")
        if isinstance(position, int) and not isinstance(position, bool) and position >= 0 and self._ahead is None:
            self._ahead = position
        ahead = self._ahead or 0
        total = ahead + 2
        if state == "IN_QUEUE" and isinstance(position, int):
            done = ahead - position
        elif state == "IN_PROGRESS":
            done = ahead + 1
        elif state == "COMPLETED":
            done = total
        else:
            return state
        if (done, total) != self._last:
            self._last = (done, total)
            report_progress(done, total)
        return state


def _retryable(response: httpx.Response) -> bool:
    # fal marks errors that the same request cannot get past (a failed model run) as not retryable
    if response.headers.get("x-fal-retryable", "").strip().lower() == "false":
        return False
    return response.status_code in RETRYABLE_STATUSES


def _error_for(response: httpx.Response, app: str, secret: str) -> Generation:
    """A content-policy refusal as a Generation; every other failure raised as its domain error."""
    code = response.status_code
    detail: object = None
    with contextlib.suppress(ValueError):
        body = json.loads(response.content)
        detail = body.get("detail") if isinstance(body, dict) else None
    items = [d for d in detail if isinstance(d, dict)] if isinstance(detail, list) else []
    message = "; ".join(str(d.get("msg", "")) for d in items) if items else str(detail or "").strip()
    message = message.replace(secret, "***") if secret else message
    said = f"HTTP {code}" + (f": {message}" if message else "")
    if any(d.get("type") == "content_policy_violation" for d in items):
        return Generation(
            images=(), finish_reason=None, block_reason=FinishReason.SAFETY, finish_message=message or None
        )
    error: ImagegateError
    if code in (401, 403):
        error = UpstreamRejected(f"{UPSTREAM} did not accept the fal deployment's key ({said}).")
    elif code == 404:
        error = UpstreamRejected(f"{UPSTREAM} has no app {app!r} ({said}).")
    elif code == 422:
        field = _field(items[0].get("loc")) if items else None
        named = f" field {field!r}" if field else ""
        error = InvalidRequest(f"{UPSTREAM} rejected the input{named}: {message or 'invalid'}", field=field)
    elif code == 429:
        error = UpstreamRateLimited(
            f"{UPSTREAM} is rate limiting ({said}).", retry_after_s=retry_after_header(response)
        )
    elif code in (408, 504):
        error = UpstreamTimeout(f"{UPSTREAM} timed out ({said}).")
    elif code == 499:  # fal's client_cancelled/client_disconnected: the request was cancelled, not refused
        error = UpstreamUnavailable(f"{UPSTREAM} cancelled the request ({said}).")
    elif code >= 500:
        error = UpstreamUnavailable(f"{UPSTREAM} is unavailable ({said}).")
    else:
        error = UpstreamRejected(f"{UPSTREAM} refused the request ({said}).")
    raise error


def _field(loc: object) -> str | None:
    """``["body", "image_urls", 0]`` as ``image_urls.0``: the input field a fal validation error is about."""
    if not isinstance(loc, list):
        return None
    path = [str(part) for part in (loc[1:] if loc[:1] == ["body"] else loc)]
    return ".".join(path) or None
