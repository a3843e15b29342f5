"""The ``openai`` provider: any upstream that speaks OpenAI Images (OpenAI, Lumenfall, Pixapi, AIML...) over ``httpx``.

A job without input images is ``POST {base_url}/images/generations`` (JSON); a job with images is
``POST {base_url}/images/edits`` (multipart, one ``image[]`` file part per image). ``base_url`` is the API root
with its version (``https://api.openai.com/v1``, ``https://api.lumenfall.ai/openai/v1``,
``https://api.aimlapi.com/v1``); the key goes in ``Authorization: Bearer``. The answer's ``data[].b64_json``
or ``data[].url`` (downloaded with the same client, size-bounded, never with the key), or AIML's
``images[].url`` plus ``description``, become the ``Generation``; ``usage`` (OpenAI's token counts, or AIML's
``meta.usage.tokens_used``) becomes ``Usage``.

A conversation has to be flattened, because OpenAI Images takes one prompt and a set of images:

* the prompt is the text of the caller's last user turn, with the system instruction (if any) put before it
  as a paragraph of its own; the text of earlier turns is dropped, since the images carry what they made;
* the images are the last user turn's own images plus, as far as the upstream can take more
  (``max_edit_images``, else the model's limit), the images of earlier turns, newest first, sent in
  conversation order: the oldest earlier images are left out when they do not all fit;
* a text-only answer, a request without prompt text, more own images than ``max_edit_images`` (or earlier
  images for an upstream that takes none), a seed, a temperature, thinking, grounding, and a resolution
  without a field or a pixel size to say it cannot be expressed: ``capabilities`` declares so, and the router
  never sends such a job here;
* GIF inputs are converted to PNG (OpenAI Images takes PNG, JPEG and WEBP); HEIC/HEIF inputs are refused.

Errors: ``{"error": {"message", "type", "param", "code"}}`` (other shapes tolerated). A moderation refusal
(``moderation_blocked``, ``content_policy_violation``) is a ``Generation`` without images and with block
reason ``SAFETY``, like a Gemini refusal; 429 is retried after ``retry-after-ms``/``retry-after``
(``x-ratelimit-reset-*`` when those are absent) unless its code is ``insufficient_quota``, which is a wall;
a 400 about a parameter the deployment chose (model, size, response_format, its ``extra_body``...) is the
deployment's configuration, not the caller's mistake. ``x-should-retry`` is honoured as openai-python does.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from imagegate.core.capabilities import ModelSpec
from imagegate.core.checks import DeploymentCaps, ResolutionSending
from imagegate.core.images import (
    GIF,
    JPEG,
    PNG,
    WEBP,
    ImageInput,
    ImageOutput,
)
from imagegate.core.jobs import FinishReason, Generation, JobSpec, Usage
from imagegate.errors import (
    ImagegateError,
    InternalError,
    InvalidImage,
    InvalidRequest,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from imagegate.imaging import transcode
from imagegate.providers.base import (
    RETRYABLE_STATUSES,
    HTTPUpstream,
    RetryPolicy,
    Sleep,
    json_object_lifting,
    parse_options,
    retry_after_header,
    unreadable,
)
from imagegate.providers.blobs import Blobs
from imagegate.providers.downloads import download_image, image_output
from imagegate.providers.flatten import flatten

#: The block reason of a moderation refusal (Gemini's vocabulary, which the dialects render).
MODERATION_BLOCK_REASON = "SAFETY"

_MODERATION_CODES = frozenset({"moderation_blocked", "content_policy_violation"})
_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"})
_EXTENSIONS = {PNG: "png", JPEG: "jpg", WEBP: "webp"}
#: Fields this provider writes itself; ``extra_body`` may not set them.
_OWN_FIELDS = frozenset({"model", "prompt", "n", "size", "aspect_ratio", "response_format", "image", "image[]", "mask"})
#: Request fields whose value comes from the deployment's configuration rather than from the caller.
_CONFIG_PARAMS = frozenset({"model", "n", "size", "aspect_ratio", "response_format"})

#: The key of an image's base64 in an Images API answer, lifted out before parsing (``providers.blobs``).
B64_JSON_KEY = b'"b64_json"'


class OpenAIOptions(BaseModel):
    """An ``openai`` deployment's options (``[[deployments]] options`` in ``imagegate.toml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr = Field(min_length=1)
    base_url: str = Field(default="https://api.openai.com/v1", pattern=r"^https?://[^/\s]+")
    timeout_s: float = Field(default=180, gt=0)  # GPT Image answers can take a minute or two
    connect_timeout_s: float = Field(default=10, gt=0)
    max_retries: int = Field(default=2, ge=0)
    #: ``omit``: send none (GPT Image models refuse the field and always answer ``b64_json``)
    response_format: Literal["b64_json", "url", "omit"] = "b64_json"
    #: ``pixels``: ``size: "WxH"`` for the job's aspect ratio; ``aspect_ratio``: ``aspect_ratio: "16:9"`` (AIML,
    #: Lumenfall); ``omit``: neither. Nothing is sent when the job leaves the ratio to the input image.
    size_style: Literal["pixels", "aspect_ratio", "omit"] = "pixels"
    #: ``pixels`` overrides per ratio, e.g. ``{"16:9" = "1536x1024"}`` for models with few sizes; else the table
    sizes: dict[str, str] = Field(default_factory=dict)
    #: the field that takes a resolution tier ("1K", "2K", "4K"): ``resolution`` (Lumenfall, AIML) or ``size``
    #: (Pixapi's ``size: "2K"``); None: the upstream takes none, and only ``pixels`` sizes can say it
    resolution_field: Literal["resolution", "size", "image_size"] | None = None
    #: the multipart name of each input image: ``image[]`` (openai-python's) or a repeated ``image``
    image_field: Literal["image[]", "image"] = "image[]"
    #: images one edit may carry (0: this upstream does no edits); None: the model's own limit
    max_edit_images: int | None = Field(default=None, ge=0)
    #: fixed fields added to every request, e.g. ``{quality = "high"}``
    extra_body: dict[str, str | int | float | bool] = Field(default_factory=dict)
    #: the most bytes one image URL may deliver
    max_download_bytes: int = Field(default=64 * 1024 * 1024, gt=0)

    @field_validator("sizes")
    @classmethod
    def _check_sizes(cls, sizes: dict[str, str]) -> dict[str, str]:
        for ratio, size in sizes.items():
            if not re.fullmatch(r"\d+:\d+", ratio):
                raise ValueError(f"{ratio!r} is not an aspect ratio like '16:9'")
            if not re.fullmatch(r"\d+x\d+|auto", size):
                raise ValueError(f"the size for {ratio} must be like '1536x1024' or 'auto'")
        return sizes

    @field_validator("extra_body")
    @classmethod
    def _check_extra_body(cls, extra: dict[str, Any]) -> dict[str, Any]:
        if clash := sorted(_OWN_FIELDS & set(extra)):
            raise ValueError(f"{', '.join(clash)} cannot be set here; the provider writes these itself")
        return extra


class OpenAICompatProvider:
    """Generates through an OpenAI-Images-compatible API; one instance per deployment."""

    def __init__(
        self,
        options: OpenAIOptions,
        *,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        retry_policy: RetryPolicy | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._options = options
        self._base = options.base_url.rstrip("/")
        self.upstream = httpx.URL(self._base).host or self._base  # how messages name it
        self._http = HTTPUpstream(
            self.upstream,
            timeout_s=options.timeout_s,
            connect_timeout_s=options.connect_timeout_s,
            max_retries=options.max_retries,
            client=client,
            policy=retry_policy,
            sleep=sleep,
            rand=rand,
            secrets=(options.api_key.get_secret_value(),),
            retryable=_retryable,
            retry_after=_retry_after,
        )
        self._client = self._http.client
        self._sleep = sleep
        self._rand = rand
        self._policy = self._http.policy

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls(parse_options(OpenAIOptions, options, provider="openai"))

    @classmethod
    def capabilities(cls, options: Mapping[str, Any]) -> DeploymentCaps:
        """The OpenAI Images API: one prompt and up to ``max_edit_images`` images in, images out; no seed, no
        temperature, no thinking, no Search grounding (it takes no tools)."""
        parsed = parse_options(OpenAIOptions, options, provider="openai")
        if parsed.resolution_field is not None:
            sent = ResolutionSending.ALWAYS
        elif parsed.size_style == "pixels":
            sent = ResolutionSending.AS_PIXEL_SIZE
        else:
            sent = ResolutionSending.NEVER
        return DeploymentCaps(
            resolution_sent=sent,
            max_input_images=parsed.max_edit_images,
            features=frozenset(),
            text_answers=False,
            needs_prompt_text=True,
            returns_thoughts=False,
            temperature=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def generate(self, spec: JobSpec, model: ModelSpec, upstream_model: str) -> Generation:
        prompt, images = flatten(
            spec, self._options.max_edit_images, model.max_input_images, upstream="an OpenAI Images upstream"
        )
        images = tuple([await _sendable(image) for image in images])
        fields = self._fields(spec, model, upstream_model)
        headers = {"authorization": f"Bearer {self._options.api_key.get_secret_value()}"}
        if images:
            form = {name: _form_value(value) for name, value in fields.items()} | {"prompt": prompt}
            files = [
                (self._options.image_field, (f"image-{i}.{_EXTENSIONS[img.mime_type]}", img.data, img.mime_type))
                for i, img in enumerate(images, start=1)
            ]
            response = await self._http.send(
                "POST", f"{self._base}/images/edits", data=form, files=files, headers=headers
            )
        else:
            body = {"model": fields.pop("model"), "prompt": prompt, **fields}
            response = await self._http.send("POST", f"{self._base}/images/generations", json=body, headers=headers)
        if response.status_code != 200:
            error = _error_body(response)
            if _is_moderation(error):
                return Generation(
                    images=(),
                    finish_reason=None,
                    finish_message=self._redact(error.message) or None,
                    block_reason=MODERATION_BLOCK_REASON,
                )
            raise self._error_for(response, error, upstream_model)
        return await self._generation(*json_object_lifting(response, self.upstream, B64_JSON_KEY))

    # -- request ---------------------------------------------------------------------------------------

    def _fields(self, spec: JobSpec, model: ModelSpec, upstream_model: str) -> dict[str, Any]:
        options = self._options
        fields: dict[str, Any] = {"model": upstream_model, "n": 1}
        ratio = spec.aspect_ratio
        sized = False  # whether what is sent already says the resolution
        if ratio is not None and options.size_style == "pixels":
            exact = model.pixel_size(ratio, spec.image_size)  # the capability check let only sizes it has through
            if ratio in options.sizes and spec.image_size in (None, model.default_resolution):
                fields["size"], sized = options.sizes[ratio], True  # the deployment's own size for this ratio
            elif exact is not None:  # Google's size at the asked resolution says both shape and scale
                fields["size"], sized = f"{exact[0]}x{exact[1]}", True
            else:
                raise InternalError(f"{model.id} has no pixel size for {ratio} at {spec.image_size}")
        elif ratio is not None and options.size_style == "aspect_ratio":
            fields["aspect_ratio"] = ratio
        if spec.image_size is not None and not sized and options.resolution_field is not None:
            # without a resolution field the deployment declares it cannot say one (``resolution_sent``), and
            # the router never hands it a job that asks
            fields[options.resolution_field] = spec.image_size  # "1K", "2K", "4K" as these gateways spell it
        if options.response_format != "omit":
            fields["response_format"] = options.response_format
        if spec.end_user is not None:  # OpenAI's abuse tracing reads it; gateways in front of OpenAI pass it on
            fields["user"] = spec.end_user
        return fields | options.extra_body

    # -- response --------------------------------------------------------------------------------------

    async def _generation(self, body: Mapping[str, Any], blobs: Blobs) -> Generation:
        data = body.get("data")
        aiml_images = body.get("images")  # AIML's other answer shape: images[] of {url, content_type} + description
        if data is None and aiml_images is None:
            raise unreadable(self.upstream, "it has neither 'data' nor 'images'")
        items = data if data is not None else aiml_images
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise unreadable(self.upstream, "its image list is not a list of objects")
        images = [await self._image(item, blobs) for item in items]
        description = body.get("description")
        model = body.get("model")
        return Generation(
            images=tuple(images),
            text=description if isinstance(description, str) else "",
            # no images and no reason given: the router treats it as an answer that did not do its job
            finish_reason=FinishReason.STOP if images else None,
            usage=parse_usage(body),
            model_version=model if isinstance(model, str) else None,
        )

    async def _image(self, item: Mapping[str, Any], blobs: Blobs) -> ImageOutput:
        encoded, url = item.get("b64_json"), item.get("url")
        if isinstance(encoded, str) and encoded:
            data, text = self._decode(encoded, "its b64_json", blobs)
            return image_output(data, self.upstream, text)
        if isinstance(url, str) and url:  # a data: URL too, as some proxies answer
            return await download_image(
                self._client,
                url,
                upstream=self.upstream,
                allow_http=self._base.startswith("http://"),
                max_bytes=self._options.max_download_bytes,
                policy=self._policy,
                sleep=self._sleep,
                rand=self._rand,
            )
        raise unreadable(self.upstream, "an image has neither 'b64_json' nor 'url'")

    def _decode(self, text: str, what: str, blobs: Blobs) -> tuple[bytes, memoryview | None]:
        """The bytes of a base64 value, and its text when it can be passed on (``Blobs.decode_keeping``)."""
        if 3 * (blobs.encoded_length(text) // 4) > self._options.max_download_bytes + 3:
            raise UpstreamUnavailable(
                f"{self.upstream} returned an image over {self._options.max_download_bytes} bytes."
            )
        try:
            return blobs.decode_keeping(text)
        except (TypeError, ValueError) as exc:
            raise unreadable(self.upstream, f"{what} is not base64") from exc

    # -- errors ----------------------------------------------------------------------------------------

    def _error_for(self, response: httpx.Response, error: _ErrorBody, model: str) -> ImagegateError:
        status = response.status_code
        message = self._redact(error.message)
        labels = " ".join(dict.fromkeys(filter(None, (error.code, error.type))))
        said = f"HTTP {status}" + (f" {labels}" if labels else "")
        said += f": {message}" if message else "" if error.parsed else " (no error body)"
        upstream = self.upstream
        if error.code in _QUOTA_CODES or error.type == "insufficient_quota":
            return UpstreamRejected(f"{upstream} says the deployment's account has no quota left ({said}).")
        if status == 429:
            return UpstreamRateLimited(f"{upstream} rate limit reached ({said}).", retry_after_s=_retry_after(response))
        if status == 401 or error.code == "invalid_api_key":
            return UpstreamRejected(
                f"{upstream} did not accept the openai deployment's API key ({said}); "
                "check the upstream key configured for this deployment."
            )
        if status in (402, 403):
            return UpstreamRejected(f"{upstream} refused to serve this deployment ({said}).")
        if status == 404 or error.code == "model_not_found":
            return UpstreamRejected(
                f"model {model!r} or its endpoint was not found at {upstream} ({said}); "
                "check the deployment's base_url and model name."
            )
        if status in (400, 413, 415, 422):
            param = error.param
            if error.code == "unknown_parameter" or param in _CONFIG_PARAMS or param in self._options.extra_body:
                return UpstreamRejected(
                    f"{upstream} rejected a parameter this deployment sends ({said}); check its options."
                )
            return InvalidRequest(message or f"{upstream} rejected the request as invalid.", field=param)
        if status in (408, 504):
            return UpstreamTimeout(f"{upstream} timed out ({said}).")
        if status >= 500:
            return UpstreamUnavailable(f"{upstream} is unavailable ({said}).")
        return UpstreamRejected(f"{upstream} refused the request ({said}).")

    def _redact(self, text: str) -> str:
        # "Incorrect API key provided: sk-ab****wxyz": not even a part of the key
        return _MASKED_KEY.sub("***", self._http.redact(text))


async def _sendable(image: ImageInput) -> ImageInput:
    """``image`` in a format OpenAI Images takes: PNG, JPEG and WEBP as they are, GIF as PNG."""
    if image.mime_type in _EXTENSIONS:
        return image
    if image.mime_type == GIF:
        return ImageInput(await asyncio.to_thread(transcode, image.data, PNG, None), PNG)
    raise InvalidImage(
        f"The upstream serving this model takes PNG, JPEG and WEBP images; this one is {image.mime_type}."
    )


def _form_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- usage -----------------------------------------------------------------------------------------------


def parse_usage(body: Mapping[str, Any]) -> Usage:
    """Tokens as the upstream reports them: OpenAI's ``usage`` split by modality, or AIML's one total.

    Without a breakdown, output tokens are image tokens (these models answer with images); AIML's
    ``meta.usage.tokens_used`` is counted the same way, nearly all of it being the image's own tokens.
    """
    usage = body.get("usage")
    if isinstance(usage, dict):
        in_total = _count(usage.get("input_tokens", usage.get("prompt_tokens")))
        in_details = usage.get("input_tokens_details")
        in_image = _count(in_details.get("image_tokens")) if isinstance(in_details, dict) else 0
        in_text = _count(in_details.get("text_tokens")) if isinstance(in_details, dict) else 0
        out_total = _count(usage.get("output_tokens", usage.get("completion_tokens")))
        out_details = usage.get("output_tokens_details")
        if isinstance(out_details, dict):
            out_image = _count(out_details.get("image_tokens"))
            out_text = max(_count(out_details.get("text_tokens")), out_total - out_image)
        else:
            out_image, out_text = out_total, 0
        return Usage(
            input_text_tokens=max(in_text, in_total - in_image),
            input_image_tokens=in_image,
            output_text_tokens=out_text,
            output_image_tokens=out_image,
        )
    meta = body.get("meta")
    meta_usage = meta.get("usage") if isinstance(meta, dict) else None
    if isinstance(meta_usage, dict):
        return Usage(output_image_tokens=_count(meta_usage.get("tokens_used")))
    return Usage()


def _count(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, float) and value.is_integer():
        return max(0, int(value))
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


# -- errors ----------------------------------------------------------------------------------------------

_MASKED_KEY = re.compile(r"\S*\*{4,}\S*")


class _ErrorBody:
    """What an error answer says, whichever of the usual shapes it has."""

    __slots__ = ("code", "message", "param", "parsed", "type")

    def __init__(self, message: str, type_: str, code: str, param: str | None, *, parsed: bool) -> None:
        self.message, self.type, self.code, self.param, self.parsed = message, type_, code, param, parsed


def _error_body(response: httpx.Response) -> _ErrorBody:
    try:
        body = json.loads(response.content)
    except ValueError:
        return _ErrorBody("", "", "", None, parsed=False)
    if not isinstance(body, dict):
        return _ErrorBody("", "", "", None, parsed=False)
    error = body.get("error")
    if isinstance(error, dict):  # OpenAI's {"error": {"message", "type", "param", "code"}}
        param = error.get("param")
        return _ErrorBody(
            _text(error.get("message")),
            _text(error.get("type")),
            _text(error.get("code")),
            param if isinstance(param, str) and param else None,
            parsed=True,
        )
    detail = body.get("detail")  # FastAPI's {"detail": "..."} or {"detail": [{"loc", "msg"}]}
    if isinstance(detail, list):
        detail = "; ".join(_text(item.get("msg")) for item in detail if isinstance(item, dict))
    message = _text(error) or _text(body.get("message")) or _text(detail)
    return _ErrorBody(message, "", _text(body.get("code")), None, parsed=bool(message))


def _text(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _is_moderation(error: _ErrorBody) -> bool:
    return error.code in _MODERATION_CODES


def _retryable(response: httpx.Response) -> bool:
    should = str(response.headers.get("x-should-retry", "")).strip().lower()
    if should in ("true", "false"):  # the upstream knows best (imagegate itself says so for a rejected deployment)
        return should == "true"
    if response.status_code == 429:
        error = _error_body(response)
        return not (error.code in _QUOTA_CODES or error.type == "insufficient_quota")  # a wall, not a rate
    return response.status_code in RETRYABLE_STATUSES


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _retry_after(response: httpx.Response) -> float | None:
    """``retry-after-ms`` / ``retry-after``; else, for a 429, the later of OpenAI's ``x-ratelimit-reset-*``."""
    if (delay := retry_after_header(response)) is not None:
        return delay
    if response.status_code != 429:
        return None
    resets = [
        _duration(response.headers.get(name, "")) for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
    ]
    known = [r for r in resets if r is not None]
    return max(known) if known else None


def _duration(text: str) -> float | None:
    """A Go-style duration as OpenAI writes it ("1s", "6m0s", "250ms", "1h2m3.5s"); None if it is not one."""
    text = text.strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(number) * _UNIT_S[unit] for number, unit in parts)
