"""Gemini requests in: parse a JSON body into the wire model, then translate it into a ``JobSpec``.

Parsing enforces what Google's proto layer enforces (names, types, enums, non-empty input) with Google's own
messages; translation enforces what the model accepts (aspect ratios, one candidate, the input-image limit)
and turns parts into turns: thought parts dropped, images decoded from either base64 alphabet and sniffed.
Every function is pure: no I/O, no clock, no settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from imagegate.core.capabilities import ModelSpec
from imagegate.core.checks import first_violation
from imagegate.core.images import GEMINI_API_RATIOS, ImageInput, decode_base64
from imagegate.core.jobs import JobSpec, Modality, PartInfo, Role, Turn
from imagegate.core.jobs import Part as TurnPart
from imagegate.dialects.gemini.options import google_options
from imagegate.dialects.gemini.proto_errors import domain_error
from imagegate.dialects.gemini.thinking import grounding, thinking_level
from imagegate.dialects.gemini.wire import (
    BatchGenerateContentRequest,
    Blob,
    Content,
    CountTokensRequest,
    GenerateContentBatch,
    GenerateContentRequest,
    GenerationConfig,
    InputConfig,
    Part,
)
from imagegate.errors import InvalidRequest, Unsupported

EMPTY_INPUT = "Request has empty input."
CONTENTS_NOT_SPECIFIED = "* GenerateContentRequest.contents: contents is not specified"
_ROLES = {"user": Role.USER, "model": Role.MODEL}
_ASPECT_FIELD = "generation_config.image_config.aspect_ratio"
_DEFAULT_MODALITIES = frozenset({Modality.TEXT, Modality.IMAGE})
_M = TypeVar("_M", bound=BaseModel)


def parse_generate_request(body: object) -> GenerateContentRequest:
    """A ``generateContent`` body (already JSON-decoded) as the wire model, or Google's 400 as a domain error."""
    request = _validate(GenerateContentRequest, body)
    _check_contents(request.contents)
    return request


def parse_batch_request(body: object) -> tuple[GenerateContentBatch, InputConfig]:
    """A ``batchGenerateContent`` body as the wire model (and its input), or Google's 400 as a domain error."""
    batch = _validate(BatchGenerateContentRequest, body).batch
    config = batch.input_config if batch is not None else None
    if batch is None or config is None or not (config.file_name or (config.requests and config.requests.requests)):
        raise InvalidRequest(
            "* BatchGenerateContentRequest.batch.input_config: requests or file_name must be set.",
            field="batch.input_config",
        )
    if batch.priority:
        raise Unsupported(
            "batch.priority is not supported here: batches run in the order they were created, after interactive "
            "and async work. Leave it out or send 0.",
            field="batch.priority",
        )
    return batch, config


def parse_count_tokens_request(body: object) -> GenerateContentRequest:
    """A ``countTokens`` body: ``{"contents": …}`` or ``{"generateContentRequest": {…}}``, as one request."""
    wrapper = _validate(CountTokensRequest, body)
    inner = wrapper.generate_content_request
    if inner is not None:
        if wrapper.contents:
            raise InvalidRequest(
                "contents and generate_content_request cannot both be set.", field="generate_content_request"
            )
        request = inner
    else:
        request = GenerateContentRequest.model_validate({"contents": wrapper.contents})
    _check_contents(request.contents)
    return request


#: The JobSpec fields as Google names them in its errors: ``core.checks`` violations are worded with these.
FIELDS = {
    "image_size": "generation_config.image_config.image_size",
    "aspect_ratio": "generation_config.image_config.aspect_ratio",
    "input_images": "contents",
    "prompt": "contents",
    "temperature": "generation_config.temperature",
    "seed": "generation_config.seed",
    "modalities": "generation_config.response_modalities",
    "grounding": "tools",
    "thinking_level": "generation_config.thinking_config.thinking_level",
    "include_thoughts": "generation_config.thinking_config.include_thoughts",
}

#: What Google takes for ``imageSize`` (case-sensitive), and the canonical resolution each one means.
IMAGE_SIZES = {"1K": "1K", "2K": "2K", "4K": "4K", "512": "512", "512P": "512", "512PX": "512"}


def file_references(request: GenerateContentRequest) -> list[tuple[str, str]]:
    """``(file id, field)`` of every ``fileData`` part, for the route to load before ``to_job_spec``.

    ``fileUri`` may be the ``uri`` this server returned, Google's form of it
    (``https://generativelanguage.googleapis.com/v1beta/files/abc``) or the bare name ``files/abc``; anything
    else cannot be one of the caller's uploads and is refused here.
    """
    found: list[tuple[str, str]] = []
    for i, content in enumerate(request.contents or ()):
        for j, part in enumerate(content.parts or ()):
            if part.file_data is None or part.thought:
                continue
            field = f"contents[{i}].parts[{j}].file_data.file_uri"
            found.append((_file_id(part.file_data.file_uri, field), field))
    return found


def _file_id(uri: str | None, field: str) -> str:
    text = (uri or "").strip()
    head, sep, name = text.rpartition("files/")
    if not sep or not name or "/" in name or not (head == "" or head.endswith("/")):
        raise InvalidRequest(
            f"Invalid value at '{field}': expected the uri of a file uploaded through the Files API "
            "(files/NAME); other URIs cannot be read.",
            field=field,
        )
    return name.split("?", 1)[0]


def to_job_spec(
    request: GenerateContentRequest,
    model: ModelSpec,
    files: Mapping[str, ImageInput] | None = None,
    *,
    image_size: str | None = None,
) -> JobSpec:
    """The job a parsed request asks for, checked against what ``model`` can do (``core.checks``).

    ``files`` are the uploaded images its ``fileData`` parts name, by field (see ``file_references``);
    ``image_size`` is what the model id implied (a resolution-suffixed alias), overridden by ``imageSize``.
    """
    if request.cached_content:  # the cached turns would be missing from the prompt: refuse, never drop
        raise InvalidRequest(
            "cachedContent is not supported here: send the contents themselves.", field="cached_content"
        )
    config = request.generation_config or GenerationConfig()
    aspect_ratio = _aspect_ratio(config)
    image_size = _image_size(config) or image_size
    modalities = _modalities(config)
    _check_candidate_count(config)
    loaded = files or {}
    turns = tuple(turn for i, content in enumerate(request.contents or ()) if (turn := _turn(i, content, loaded)).parts)
    if not turns:
        raise InvalidRequest(EMPTY_INPUT, field="contents")
    spec = JobSpec(
        model=model.id,
        turns=turns,
        system_instruction=_system_instruction(request.system_instruction),
        aspect_ratio=aspect_ratio,
        image_size=image_size,
        modalities=modalities,
        n=1,  # one candidate per request; other dialects fan out, Gemini callers send n requests
        seed=config.seed,
        temperature=config.temperature,
        dialect="gemini",
        include_thoughts=bool(config.thinking_config and config.thinking_config.include_thoughts),
        thinking_level=thinking_level(config, model),
        grounding=grounding(request.tools),
        google=google_options(config, request.safety_settings),
    )
    if (violation := first_violation(spec, model, FIELDS, hint=False)) is not None:
        raise Unsupported(violation[1], field=violation[0])
    return spec


def _validate(model: type[_M], body: object) -> _M:
    if not isinstance(body, dict):
        raise InvalidRequest("Invalid JSON payload received. Root element must be a message.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise domain_error(model, exc.errors()[0]) from exc


def _check_contents(contents: Sequence[Content] | None) -> None:
    """What Google's proto layer refuses before any model sees the request."""
    if not contents:
        raise InvalidRequest(CONTENTS_NOT_SPECIFIED, field="contents")
    usable = False
    for i, content in enumerate(contents):
        if content.role and content.role.lower() not in _ROLES:
            raise InvalidRequest("Please use a valid role: user, model.", field=f"contents[{i}].role")
        if not content.parts:
            raise InvalidRequest(EMPTY_INPUT, field=f"contents[{i}].parts")
        for j, part in enumerate(content.parts):
            _check_oneof(part, f"contents[{i}].parts[{j}]")
        usable = usable or any(_is_usable(part) for part in content.parts)
    if not usable:
        raise InvalidRequest(EMPTY_INPUT, field="contents")


def _check_oneof(part: Part, where: str) -> None:
    # text, inlineData and fileData are members of the proto oneof ``data``; a part holds one of them.
    given = [name for name in ("text", "inline_data", "file_data") if getattr(part, name) is not None]
    if len(given) > 1:
        raise InvalidRequest(
            f"Invalid JSON payload received. Oneof field 'data' is already set. Cannot set '{given[1]}'",
            field=f"{where}.{given[1]}",
        )


def _is_usable(part: Part) -> bool:
    return not part.thought and (part.text is not None or part.inline_data is not None or part.file_data is not None)


def _turn(index: int, content: Content, files: Mapping[str, ImageInput]) -> Turn:
    role = _ROLES.get((content.role or "user").lower(), Role.USER)
    parts: list[TurnPart] = []
    infos: list[PartInfo] = []
    for j, part in enumerate(content.parts or ()):
        where = f"contents[{index}].parts[{j}]"
        if part.file_data is not None:
            field = f"{where}.file_data.file_uri"
            if field not in files:  # a caller that did not load the files first: a bug, not the client's
                raise InvalidRequest(f"The file at '{field}' was not loaded.", field=field)
            parts.append(files[field])
            continue
        if part.inline_data is not None:
            parts.append(_image(part.inline_data, f"{where}.inline_data"))
        elif part.text is not None:
            parts.append(part.text)
        else:
            continue  # a part of another kind (a function call echoed in history): nothing an image model uses
        # Thoughts and signatures echoed back in chat history go upstream as they came: a thinking model
        # keeps its context across turns only when it gets its thoughtSignatures back.
        infos.append(PartInfo(thought=bool(part.thought), signature=_signature(part, f"{where}.thought_signature")))
    marked = any(info != PartInfo() for info in infos)
    return Turn(role=role, parts=tuple(parts), info=tuple(infos) if marked else ())


def _signature(part: Part, field: str) -> bytes | None:
    text = part.thought_signature
    if not text:  # proto3: empty bytes are unset
        return None
    try:
        return decode_base64(text)
    except ValueError:
        preview = text if len(text) <= 40 else text[:40] + "…"
        raise InvalidRequest(
            f"Invalid value at '{field}' (TYPE_BYTES), Base64 decoding failed for \"{preview}\"", field=field
        ) from None


def _image(blob: Blob, where: str) -> ImageInput:
    field = f"{where}.data"
    data = blob.data or ""
    if data.lstrip().startswith("data:"):
        raise InvalidRequest(
            f"Invalid value at '{field}' (TYPE_BYTES): send bare base64, without a 'data:' URI prefix.", field=field
        )
    try:
        raw = decode_base64(data)
    except ValueError:
        preview = data if len(data) <= 40 else data[:40] + "…"
        raise InvalidRequest(
            f"Invalid value at '{field}' (TYPE_BYTES), Base64 decoding failed for \"{preview}\"", field=field
        ) from None
    # The declared mimeType is ignored on purpose: the bytes say what the image is (clients mislabel often).
    return ImageInput.from_bytes(raw, field=field)


def _system_instruction(content: Content | None) -> str | None:
    if content is None:
        return None
    texts: list[str] = []
    for j, part in enumerate(content.parts or ()):
        if part.thought:
            continue
        if part.inline_data is not None or part.file_data is not None:
            raise InvalidRequest(
                "systemInstruction accepts text parts only; put images in contents.",
                field=f"system_instruction.parts[{j}]",
            )
        if part.text:
            texts.append(part.text)
    return "\n".join(texts) or None


def _aspect_ratio(config: GenerationConfig) -> str | None:
    """The API enum's check, in Google's words; whether the model has the ratio is ``core.checks``' question."""
    ratio = config.image_config.aspect_ratio if config.image_config else None
    if not ratio:  # proto3: an empty string is the same as unset
        return None
    if ratio not in GEMINI_API_RATIOS:
        allowed = ", ".join(f"'{r}'" for r in GEMINI_API_RATIOS[:-1]) + f", or '{GEMINI_API_RATIOS[-1]}'"
        raise InvalidRequest(
            f"* GenerateContentRequest.{_ASPECT_FIELD}: aspect_ratio must be one of {allowed}.", field=_ASPECT_FIELD
        )
    return ratio


def _image_size(config: GenerationConfig) -> str | None:
    """``imageSize`` as Google spells it; anything else (lowercase "2k", "8K") gets Google's message."""
    size = config.image_config.image_size if config.image_config else None
    if not size:
        return None
    if size not in IMAGE_SIZES:
        raise InvalidRequest(
            f"Unsupported image_size '{size}'. Supported values are: {', '.join(IMAGE_SIZES)}.",
            field=FIELDS["image_size"],
        )
    return IMAGE_SIZES[size]


def _modalities(config: GenerationConfig) -> frozenset[Modality]:
    values = [m for m in config.response_modalities or () if m != "MODALITY_UNSPECIFIED"]
    if not values:
        return _DEFAULT_MODALITIES  # the model's own default: text and image
    unsupported = sorted({m for m in values if m not in Modality.__members__})
    if unsupported:
        raise InvalidRequest(
            "Model does not support the requested response modalities: " + ", ".join(m.lower() for m in unsupported),
            field="generation_config.response_modalities",
        )
    return frozenset(Modality(m) for m in values)


def _check_candidate_count(config: GenerationConfig) -> None:
    count = config.candidate_count
    if count is not None and count < 0:
        raise InvalidRequest(
            "* GenerateContentRequest.generation_config.candidate_count: candidate_count must be positive.",
            field="generation_config.candidate_count",
        )
    if count is not None and count > 1:
        raise InvalidRequest(
            "Multiple candidates is not enabled for this model", field="generation_config.candidate_count"
        )
