"""The ``gemini`` provider: Google AI Studio's ``generateContent`` (the Gemini Developer API) over ``httpx``.

It turns a ``JobSpec`` into one camelCase ``generateContent`` body, sends it with the shared retry rules of
``providers.base`` (a 429 only when Google says when to come back), and reads the answer into a ``Generation``:
images (type sniffed from the bytes, size probed), text without thoughts, finish/block reasons kept verbatim,
and usage split by modality the way Google really counts it. Every ``google.rpc.Status`` error becomes one
domain error; the API key is sent in ``x-goog-api-key`` and never appears in a message.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from typing import Any, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from imagegate.core.capabilities import ModelSpec
from imagegate.core.images import ImageInput, ImageOutput, decode_base64, encode_base64, sniff_mime_type
from imagegate.core.jobs import (
    Generation,
    GoogleOptions,
    JobSpec,
    Modality,
    PartInfo,
    SearchGrounding,
    Thought,
    Turn,
    Usage,
)
from imagegate.errors import (
    ImagegateError,
    InvalidImage,
    InvalidRequest,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from imagegate.imaging import probe
from imagegate.providers.base import (
    HTTPUpstream,
    RetryPolicy,
    Sleep,
    json_object_lifting,
    parse_options,
    unreadable,
)
from imagegate.providers.blobs import Blobs
from imagegate.providers.inline import GOOGLE_INLINE_IMAGE_BYTES, fit_inline_images

UPSTREAM = "Google AI Studio"
_RPC = "type.googleapis.com/google.rpc."


class GeminiOptions(BaseModel):
    """A ``gemini`` deployment's options (``[[deployments]] options`` in ``imagegate.toml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr = Field(min_length=1)
    base_url: str = Field(default="https://generativelanguage.googleapis.com", pattern=r"^https?://")
    api_version: str = "v1beta"
    timeout_s: float = Field(default=120, gt=0)
    connect_timeout_s: float = Field(default=10, gt=0)
    max_retries: int = Field(default=2, ge=0)
    # Larger input images are re-encoded to fit before they are sent (``providers.inline``).
    max_inline_image_bytes: int = Field(default=GOOGLE_INLINE_IMAGE_BYTES, ge=100_000)
    max_connections: int = Field(default=100, ge=1, description="calls running upstream at once")


class GeminiProvider:
    """Generates with a Gemini image model through Google AI Studio; one instance per deployment."""

    def __init__(
        self,
        options: GeminiOptions,
        *,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self._options = options
        self._http = HTTPUpstream(
            UPSTREAM,
            timeout_s=options.timeout_s,
            connect_timeout_s=options.connect_timeout_s,
            max_retries=options.max_retries,
            max_connections=options.max_connections,
            client=client,
            policy=retry_policy,
            sleep=sleep,
            secrets=(options.api_key.get_secret_value(),),
            retryable=_retryable,
            retry_after=rpc_retry_delay,
        )

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls(parse_options(GeminiOptions, options, provider="gemini"))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def generate(self, spec: JobSpec, model: ModelSpec, upstream_model: str) -> Generation:
        spec = await fit_inline_images(spec, self._options.max_inline_image_bytes)
        body = build_request_body(spec)
        response = await self._post(upstream_model, "generateContent", body)
        return parse_generation(*json_object_lifting(response, UPSTREAM, INLINE_DATA_KEY))

    async def _post(self, upstream_model: str, method: str, body: dict[str, Any]) -> httpx.Response:
        name = upstream_model.removeprefix("models/")
        url = f"{self._options.base_url.rstrip('/')}/{self._options.api_version}/models/{name}:{method}"
        headers = {"x-goog-api-key": self._options.api_key.get_secret_value()}
        response = await self._http.send("POST", url, json=body, headers=headers)
        if response.status_code != 200:
            raise _error_for(response, name, self._options)
        return response


# -- request ---------------------------------------------------------------------------------------------


def build_request_body(spec: JobSpec) -> dict[str, Any]:
    """The ``generateContent`` body for ``spec``: camelCase only, standard padded base64 for images."""
    config: dict[str, Any] = {
        # a stable order (TEXT before IMAGE, as Google's examples write it) keeps bodies comparable
        "responseModalities": [m.value for m in Modality if m in spec.modalities],
    }
    image_config: dict[str, Any] = {}
    if spec.aspect_ratio is not None:
        image_config["aspectRatio"] = spec.aspect_ratio
    if spec.image_size is not None:
        image_config["imageSize"] = spec.image_size  # canonical "512", "1K", "2K", "4K": Google's spelling
    if image_config:
        config["imageConfig"] = image_config
    if spec.seed is not None:
        config["seed"] = spec.seed
    if spec.temperature is not None:
        config["temperature"] = spec.temperature
    thinking: dict[str, Any] = {}
    if spec.include_thoughts:
        thinking["includeThoughts"] = True
    if spec.thinking_level is not None:
        thinking["thinkingLevel"] = spec.thinking_level
    if thinking:
        config["thinkingConfig"] = thinking
    config.update(_sampling(spec.google))
    body: dict[str, Any] = {"contents": _contents(spec.turns)}
    if spec.system_instruction:
        body["systemInstruction"] = {"parts": [{"text": spec.system_instruction}]}
    if spec.grounding is not None:
        body["tools"] = [{"googleSearch": google_search(spec.grounding)}]
    if spec.google.safety:
        body["safetySettings"] = [{"category": r.category, "threshold": r.threshold} for r in spec.google.safety]
    body["generationConfig"] = config
    return body


def _sampling(options: GoogleOptions) -> dict[str, Any]:
    """The sampling fields of ``generationConfig`` the caller set, in Google's camelCase."""
    fields: dict[str, Any] = {}
    if options.top_p is not None:
        fields["topP"] = options.top_p
    if options.top_k is not None:
        fields["topK"] = options.top_k
    if options.max_output_tokens is not None:
        fields["maxOutputTokens"] = options.max_output_tokens
    if options.stop_sequences:
        fields["stopSequences"] = list(options.stop_sequences)
    if options.presence_penalty is not None:
        fields["presencePenalty"] = options.presence_penalty
    if options.frequency_penalty is not None:
        fields["frequencyPenalty"] = options.frequency_penalty
    if options.media_resolution is not None:
        fields["mediaResolution"] = options.media_resolution
    return fields


def google_search(grounding: SearchGrounding) -> dict[str, Any]:
    """The ``googleSearch`` tool object: ``{}`` is web search, Google's default."""
    tool: dict[str, Any] = {}
    if grounding.images:
        tool["searchTypes"] = {"imageSearch": {}} | ({"webSearch": {}} if grounding.web else {})
    if grounding.time_range is not None:
        tool["timeRangeFilter"] = {"startTime": grounding.time_range[0], "endTime": grounding.time_range[1]}
    return tool


def _contents(turns: tuple[Turn, ...]) -> list[dict[str, Any]]:
    return [
        {"role": turn.role.value, "parts": [_part(p, turn.part_info(i)) for i, p in enumerate(turn.parts)]}
        for turn in turns
    ]


def _part(part: str | ImageInput, info: PartInfo) -> dict[str, Any]:
    body: dict[str, Any] = (
        {"text": part}
        if isinstance(part, str)
        else {"inlineData": {"mimeType": part.mime_type, "data": encode_base64(part.data)}}
    )
    # a thinking model's thoughts and signatures go back exactly where it put them
    if info.thought:
        body["thought"] = True
    if info.signature is not None:
        body["thoughtSignature"] = encode_base64(info.signature)
    return body


# -- response --------------------------------------------------------------------------------------------


#: The key of an image's base64 in a Google answer, lifted out before parsing (``providers.blobs``).
INLINE_DATA_KEY = b'"data"'


def parse_generation(body: Mapping[str, Any], blobs: Blobs | None = None, *, upstream: str = UPSTREAM) -> Generation:
    """A ``Generation`` from a 200 ``GenerateContentResponse``; a body that is none raises UpstreamUnavailable.

    ``blobs`` holds the image data lifted out of the answer when it was parsed; ``upstream`` names the service
    in error messages (Vertex AI answers in the same format).
    """
    blobs = blobs or Blobs(b"")
    candidates = body.get("candidates") or []
    feedback = body.get("promptFeedback") or {}
    if not isinstance(candidates, list) or not isinstance(feedback, dict):
        raise unreadable(upstream, "'candidates' or 'promptFeedback' has the wrong type")
    block_reason = feedback.get("blockReason")
    usage = parse_usage(body.get("usageMetadata") or {})
    model_version = body.get("modelVersion")
    if not candidates:
        if not block_reason:
            raise unreadable(upstream, "it has neither candidates nor a promptFeedback.blockReason")
        return Generation(
            images=(),
            finish_reason=None,
            finish_message=_text(feedback.get("blockReasonMessage")),  # Vertex AI says why; AI Studio does not
            block_reason=block_reason,
            usage=usage,
            model_version=model_version,
        )
    candidate = candidates[0]  # Google refuses candidateCount > 1 for image models: n is fanned out instead
    if not isinstance(candidate, dict):
        raise unreadable(upstream, "a candidate is not an object")
    content = candidate.get("content") or {}  # refusals come back with content {} or none at all
    parts = (content.get("parts") or []) if isinstance(content, dict) else None
    if not isinstance(parts, list):
        raise unreadable(upstream, "'content.parts' is not a list")
    answer = _Answer(upstream, blobs)
    for part in parts:
        if not isinstance(part, dict):
            raise unreadable(upstream, "a part is not an object")
        answer.add(part)
    grounding = candidate.get("groundingMetadata", candidate.get("grounding_metadata"))
    return Generation(
        images=tuple(answer.images),
        text="".join(answer.texts),
        finish_reason=candidate.get("finishReason"),
        finish_message=candidate.get("finishMessage"),
        block_reason=block_reason,
        usage=usage,
        model_version=model_version,
        thoughts=tuple(answer.thoughts),
        text_signature=answer.text_signature,
        image_signatures=tuple(answer.image_signatures) if any(answer.image_signatures) else (),
        grounding=grounding if isinstance(grounding, dict) and grounding else None,
    )


class _Answer:
    """The parts of a candidate, sorted into thoughts, text and images with their thought signatures."""

    def __init__(self, upstream: str, blobs: Blobs) -> None:
        self.upstream = upstream
        self.blobs = blobs
        self.thoughts: list[Thought] = []
        self.texts: list[str] = []
        self.text_signature: bytes | None = None
        self.images: list[ImageOutput] = []
        self.image_signatures: list[bytes | None] = []

    def add(self, part: Mapping[str, Any]) -> None:
        signature = self._signature(part)
        text = part.get("text")
        blob = part.get("inlineData", part.get("inline_data"))
        image = _image(blob, self.upstream, self.blobs) if isinstance(blob, dict) else None
        if part.get("thought") is True:  # the model's reasoning and interim images: never its answer
            if isinstance(text, str) or image is not None:
                self.thoughts.append(Thought(text if isinstance(text, str) else "", image, signature))
            return
        if isinstance(text, str):
            self.texts.append(text)
            if self.text_signature is None:  # Google signs the first text part after the thoughts
                self.text_signature = signature
        if image is not None:
            self.images.append(image)
            self.image_signatures.append(signature)

    def _signature(self, part: Mapping[str, Any]) -> bytes | None:
        value = part.get("thoughtSignature", part.get("thought_signature"))
        if not value:
            return None
        try:
            return decode_base64(str(value))
        except ValueError as exc:
            raise unreadable(self.upstream, "a thoughtSignature is not base64") from exc


def _image(blob: Mapping[str, Any], upstream: str, blobs: Blobs) -> ImageOutput | None:
    declared = blob.get("mimeType", blob.get("mime_type"))
    try:
        data, text = blobs.decode_keeping(blob.get("data") or "")
    except (TypeError, ValueError) as exc:
        raise unreadable(upstream, "an image's data is not base64") from exc
    mime = sniff_mime_type(data)
    if mime is None:
        if not (isinstance(declared, str) and declared.startswith("image/")):
            return None  # some other kind of blob; this provider only delivers images
        mime = declared
    try:
        width, height = probe(data)
    except InvalidImage as exc:
        raise UpstreamUnavailable(f"{upstream} returned an image ({mime}) that cannot be read.") from exc
    return ImageOutput(data=data, mime_type=mime, width=width, height=height, base64=text)


def parse_usage(meta: Mapping[str, Any]) -> Usage:
    """Tokens by modality. Google lists only IMAGE in ``candidatesTokensDetails`` while counting text too."""
    prompt = _by_modality(meta.get("promptTokensDetails"))
    prompt_image = prompt.pop("IMAGE", 0)
    # anything listed that is not an image (audio, documents...) and anything unlisted is billed like text
    prompt_text = max(sum(prompt.values()), _count(meta.get("promptTokenCount")) - prompt_image)
    output_image = _by_modality(meta.get("candidatesTokensDetails")).get("IMAGE", 0)
    return Usage(
        input_text_tokens=prompt_text,
        input_image_tokens=prompt_image,
        output_text_tokens=max(0, _count(meta.get("candidatesTokenCount")) - output_image),
        output_image_tokens=output_image,
        thoughts_tokens=_count(meta.get("thoughtsTokenCount")),
    )


def _by_modality(details: object) -> dict[str, int]:
    totals: dict[str, int] = {}
    for item in details if isinstance(details, list) else []:
        if isinstance(item, dict):
            modality = str(item.get("modality", "MODALITY_UNSPECIFIED")).upper()
            totals[modality] = totals.get(modality, 0) + _count(item.get("tokenCount"))
    return totals


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, str) and value.isdigit():  # int64 fields arrive as strings in proto3 JSON
        return int(value)
    return 0


# -- errors ----------------------------------------------------------------------------------------------


def rpc_status(response: httpx.Response) -> dict[str, Any]:
    """The ``google.rpc.Status`` of an error response, or {} when the body is not one (an HTML proxy page)."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    if isinstance(body, list) and body:  # streaming endpoints without alt=sse wrap everything in an array
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _details(status: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    details = status.get("details")
    return (
        [d for d in details if isinstance(d, dict) and d.get("@type") == _RPC + kind]
        if isinstance(details, list)
        else []
    )


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def rpc_retry_delay(response: httpx.Response) -> float | None:
    """``RetryInfo.retryDelay`` ("34s", "1.5s": a protobuf Duration) of a 429, in seconds."""
    if response.status_code != 429:
        return None
    for info in _details(rpc_status(response), "RetryInfo"):
        delay = info.get("retryDelay")
        if isinstance(delay, str) and (match := _DURATION.match(delay)):
            return float(match.group(1))
    return None


def _retryable(response: httpx.Response) -> bool:
    # a 429 without RetryInfo is not a rate but a wall (e.g. "prepayment credits are depleted"): waiting won't help
    if response.status_code == 429:
        return rpc_retry_delay(response) is not None
    return response.status_code in (500, 502, 503, 504)


def _error_for(response: httpx.Response, model: str, options: GeminiOptions) -> ImagegateError:
    return rpc_error(
        response,
        upstream=UPSTREAM,
        model=model,
        where=options.api_version,
        secrets=(options.api_key.get_secret_value(),),
        credentials="the gemini deployment's API key",
        check="check the upstream key configured for this deployment",
    )


def rpc_error(
    response: httpx.Response,
    *,
    upstream: str,
    model: str,
    where: str,
    secrets: tuple[str, ...],
    credentials: str,
    check: str,
) -> ImagegateError:
    """The domain error for a non-200 ``google.rpc.Status`` answer of a Google generative API.

    ``credentials`` names what was presented (for 401/403/API_KEY_INVALID) and ``check`` where to look; every
    string in ``secrets`` is masked should Google ever quote it. Shared by the ``gemini`` and ``vertex`` providers.
    """
    code = response.status_code
    status = rpc_status(response)
    rpc_code = str(status.get("status") or "")
    message = str(status.get("message") or "").strip()
    for secret in secrets:
        message = _redact(message, secret)
    said = " ".join(filter(None, (f"HTTP {code}", rpc_code))) + (
        f": {message}" if message else "" if status else " (no Google error body)"
    )
    reasons = {d.get("reason") for d in _details(status, "ErrorInfo")}
    if code == 429:
        delay = rpc_retry_delay(response)
        if delay is not None:
            return UpstreamRateLimited(f"{upstream} rate limit reached ({said}).", retry_after_s=delay)
        return UpstreamRejected(f"{upstream} refused the request and gave no time to retry ({said}).")
    if "API_KEY_INVALID" in reasons or code in (401, 403):
        # Google's message is safe to repeat, but the operator needs to know where to look, not what the key was
        return UpstreamRejected(f"{upstream} did not accept {credentials} ({said}); {check}.")
    if code == 400 and rpc_code == "FAILED_PRECONDITION":
        # e.g. "User location is not supported": the deployment's problem, nothing the caller can fix
        return UpstreamRejected(f"{upstream} cannot serve this deployment ({said}).")
    if code == 400:
        return InvalidRequest(message or f"{upstream} rejected the request as invalid.", field=_field(status))
    if code == 404:
        return UpstreamRejected(f"model {model!r} not found upstream at {upstream} ({where}) ({said}).")
    if code in (408, 504):
        return UpstreamTimeout(f"{upstream} timed out ({said}).")
    if code >= 500 or code == 499:
        return UpstreamUnavailable(f"{upstream} is unavailable ({said}).")
    return UpstreamRejected(f"{upstream} refused the request ({said}).")


def _field(status: Mapping[str, Any]) -> str | None:
    for bad in _details(status, "BadRequest"):
        violations = bad.get("fieldViolations")
        for violation in violations if isinstance(violations, list) else []:
            if isinstance(violation, dict) and isinstance(violation.get("field"), str):
                return str(violation["field"])
    return None


def _redact(text: str, secret: str) -> str:
    # Google never quotes the key today; should a message ever carry the URL or the key, it must not leak
    return text.replace(secret, "***") if secret else text
