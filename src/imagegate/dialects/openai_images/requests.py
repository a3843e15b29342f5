"""OpenAI Images requests in: JSON and multipart bodies parsed into an ``ImagesRequest``, then into a ``JobSpec``.

Parsing gathers the input images wherever clients put them (``image``, ``image[]`` and ``image[N]`` files;
URLs, data URLs or bare base64 under ``image``, ``images``, ``image[]`` or ``image_urls`` in JSON), sniffs
their bytes, and validates every known field with OpenAI's messages; translation maps ``size`` or AIML's
``aspect_ratio`` onto the model's ten ratios and checks the input-image limit. Every function is pure: URLs
are returned for the route to fetch, never fetched here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from imagegate.core.capabilities import ModelSpec, Resolution
from imagegate.core.checks import ViolationKind, check_job
from imagegate.core.images import JPEG, PNG, RATIO_TOLERANCE, WEBP, ImageInput, decode_base64, near_ratio
from imagegate.core.jobs import JobSpec, Role, Turn
from imagegate.dialects.openai_images.wire import (
    DEFAULT_RESPONSE_FORMAT,
    PARAM_ERROR,
    ImagesRequest,
    json_type,
    parse_dimensions,
    quote_list,
)
from imagegate.errors import InvalidImage, InvalidRequest, UnknownField, Unsupported

_MIME_TYPES = {"png": PNG, "jpeg": JPEG, "webp": WEBP}
_IMAGE_FIELD = re.compile(r"^images?(?:\[(\d*)\])?$")  # image, image[], image[3] (and the plural, seen in JSON)
_JSON_IMAGE_KEYS = ("image", "images", "image[]", "image_urls")
_ImageRef = ImageInput | str
#: Every parameter this dialect knows: the wire model's, the image fields, and the async API's webhook_url.
_KNOWN_PARAMS = frozenset(ImagesRequest.model_fields) | {"image_urls[]", "mask", "webhook_url"}


@dataclass(frozen=True, slots=True)
class OutputOptions:
    """How the service encodes and delivers the images: ``b64_json`` or ``url``, a MIME type, JPEG/WEBP quality,
    and the ``revised_prompt`` each image is labelled with (None: the field is left out)."""

    response_format: str
    mime_type: str
    quality: int | None
    revised_prompt: str | None = None


def parse_generation_request(body: object) -> ImagesRequest:
    """A ``POST /v1/images/generations`` JSON body (already decoded); AIML's ``image_urls`` make it an edit."""
    fields = _json_object(body)
    refs = _json_images(fields, ("image_urls",))
    return _validate(fields, refs)


def parse_edit_json(body: object) -> ImagesRequest:
    """A JSON ``POST /v1/images/edits`` body: images as URLs, data URLs or base64, in a string or a list."""
    fields = _json_object(body)
    refs = _json_images(fields, _JSON_IMAGE_KEYS)
    request = _validate(fields, refs)
    if not _absent(fields.get("mask")):
        raise _mask_error(request)
    return _require_images(request)


def parse_edit_form(fields: Sequence[tuple[str, str]], files: Sequence[tuple[str, bytes]]) -> ImagesRequest:
    """A multipart ``POST /v1/images/edits``: text fields as ``(name, value)``, file parts as ``(name, bytes)``.

    Image files are sniffed (openai-python labels raw bytes ``application/octet-stream``) and kept in the order
    sent, or in index order when every part is numbered ``image[N]``. A text field named like an image holds a
    URL or data URL, as curl users write ``-F image=https://…``.
    """
    values: dict[str, object] = {}
    refs: list[tuple[str, _ImageRef]] = []
    for name, value in fields:
        if _IMAGE_FIELD.match(name) or name in ("image_urls", "image_urls[]"):
            if value.strip():  # an untouched file input of an HTML form posts an empty text part
                refs.append((name, _image_ref(value, name)))
        elif name != "mask":  # a mask is refused below, whichever way it came
            values[name] = value  # a repeated scalar: the last one wins, as most form parsers do
    uploads = _ordered_uploads(files)
    refs = [(name, ImageInput.from_bytes(data, field=name)) for name, data in uploads] + refs
    request = _validate(values, refs)
    has_mask = any(name == "mask" and data for name, data in files) or any(
        name == "mask" and value.strip() for name, value in fields
    )
    if has_mask:
        raise _mask_error(request)
    return _require_images(request)


def output_options(
    request: ImagesRequest, *, default_response_format: str = DEFAULT_RESPONSE_FORMAT, revised_prompt: bool = False
) -> OutputOptions:
    """The encoding the caller asked for; ``output_compression`` only means something for JPEG and WEBP.

    Without ``response_format`` the server's configured default applies (``url``, as OpenAI's Images API
    defaults to and the Lumenfall and AI/ML seeds document). With ``revised_prompt`` each image carries the
    prompt it was made from: this model does not rewrite prompts, so it is the caller's own, unchanged.
    """
    output_format = request.output_format or "png"
    quality = request.output_compression if output_format in ("jpeg", "webp") else None
    return OutputOptions(
        response_format=request.response_format or default_response_format,
        mime_type=_MIME_TYPES[output_format],
        quality=quality,
        revised_prompt=request.prompt if revised_prompt else None,
    )


#: The JobSpec fields as this dialect names them: ``core.checks`` violations name these params.
FIELDS = {
    "input_images": "image",
    "image_size": "size",
    "aspect_ratio": "size",
    "n": "n",
    "seed": "seed",
    "negative_prompt": "negative_prompt",
    "steps": "num_inference_steps",
    "guidance": "guidance_scale",
    "deployment": "provider",
}


def fields_for(request: ImagesRequest) -> dict[str, str]:
    """``FIELDS``, naming the param the caller actually used for the ratio and the resolution."""
    fields = dict(FIELDS)
    if request.aspect_ratio is not None:
        fields["aspect_ratio"] = "aspect_ratio"
    if request.size in (None, "auto") and request.quality is not None:
        fields["image_size"] = "quality"
    return fields


def check_input_limits(request: ImagesRequest, model: ModelSpec) -> None:
    """Refuse more input images than ``model`` takes; call before fetching ``image_urls`` to spare the fetches."""
    count = len(request.images) + len(request.image_urls)
    if count > model.max_input_images:
        raise InvalidRequest(
            f"{model.id} accepts at most {model.max_input_images} input images per request; got {count}.",
            field="image",
        )


def to_job_spec(
    request: ImagesRequest, model: ModelSpec, images: Sequence[ImageInput] = (), *, image_size: str | None = None
) -> JobSpec:
    """The job ``request`` asks of ``model``; ``images`` are those fetched for ``request.image_urls``, in order;
    ``image_size`` is what the model id implied (Pixapi's ``…-2k``). The request's own images (uploads, data
    URLs, base64) come first, then the fetched ones; checked against ``model`` by ``core.checks``."""
    _refuse_unmappable(request, model)
    output = output_options(request)
    aspect_ratio, sized = _shape(request, model)
    spec = JobSpec(
        model=model.id,
        turns=(Turn(Role.USER, (request.prompt, *request.images, *images)),),
        aspect_ratio=aspect_ratio,
        image_size=_resolution(request, model, sized) or image_size,
        n=request.count,
        seed=request.seed,
        dialect="openai",
        output_mime_type=output.mime_type,
        output_quality=output.quality,
        end_user=request.safety_identifier or request.user,
        negative_prompt=request.negative_prompt,
        steps=request.num_inference_steps,
        guidance=request.guidance_scale,
        # AIML's per-request choice of who serves the model: here a deployment's name; "auto" is the router's
        deployment=None if request.provider in (None, "auto") else request.provider,
    )
    for violation in check_job(spec, model)[:1]:
        field = fields_for(request).get(violation.field, violation.field)
        if violation.kind == ViolationKind.ASPECT_RATIO and field == "aspect_ratio":  # OpenAI's own enum wording
            raise Unsupported(
                f"Invalid value: '{spec.aspect_ratio}'. Supported values are: {quote_list(violation.supported)}.",
                field=field,
            )
        raise Unsupported(violation.explained + ".", field=field)
    return spec


_RESOLUTIONS = ("512", "1K", "2K", "4K")
_QUALITY_RESOLUTIONS = {"512": "512", "1k": "1K", "2k": "2K", "4k": "4K"}


def _shape(request: ImagesRequest, model: ModelSpec) -> tuple[str | None, str | None]:
    """``(aspect ratio, resolution)`` from AIML's ``aspect_ratio`` and OpenAI's ``size``.

    ``size`` as ``WxH`` means the nearest ratio when one is within ``RATIO_TOLERANCE`` (else 400), and the
    model's resolution whose size for that ratio is closest in pixels; as "2K" it is the resolution alone.
    """
    size = request.size
    if size is None or size == "auto":
        return request.aspect_ratio, None
    if size in _RESOLUTIONS:
        return request.aspect_ratio, size
    dimensions = parse_dimensions(size)
    if dimensions is None:  # wire validation already refused it; kept for a request built by hand
        raise InvalidRequest(f"Invalid value: '{size}'.", field="size")
    ratio = request.aspect_ratio
    if ratio is None:
        ratio = near_ratio(*dimensions, model.aspect_ratios)
        if ratio is None:
            raise InvalidRequest(
                f"Invalid value: '{size}'. {model.id} makes images in the aspect ratios "
                f"{quote_list(model.aspect_ratios)}; a size must be within {RATIO_TOLERANCE:.0%} of one of them.",
                field="size",
            )
    if len(model.tiers) == 1:
        return ratio, None  # one resolution: the size only chose the ratio (1024x1024 and 1536x1024 alike)
    area = dimensions[0] * dimensions[1]

    def distance(tier: Resolution) -> float:
        w, h = tier.size(ratio) or tier.sizes[0][1:]
        return abs(math.log(area / (w * h)))

    return ratio, min(model.tiers, key=distance).name


def _resolution(request: ImagesRequest, model: ModelSpec, from_size: str | None) -> str | None:
    """The resolution asked by ``size`` and/or ``quality``: a resolution named by both must agree; a ``WxH``
    size gives the resolution nearest in pixels unless ``quality`` names one.

    ``quality``: "1k"/"2k"/"4k"/"512" name a resolution; "low" is the model's smallest, "high"/"hd" its 2K (its
    default when it has no 2K), "xhigh"/"max" its largest; "auto", "standard" and "medium" its default.
    """
    quality = request.quality
    names = model.resolution_names
    from_quality: str | None
    if quality is None or quality in ("auto", "standard", "medium"):
        from_quality = None
    elif quality in _QUALITY_RESOLUTIONS:
        from_quality = _QUALITY_RESOLUTIONS[quality]
    elif quality == "low":
        from_quality = names[0]
    elif quality in ("high", "hd"):
        from_quality = "2K" if "2K" in names else None
    else:  # xhigh, max
        from_quality = names[-1]
    if from_quality is not None and request.size not in _RESOLUTIONS:
        return from_quality  # a WIDTHxHEIGHT size chose the ratio; quality names the resolution
    if from_size is not None and from_quality is not None and from_size != from_quality:
        raise InvalidRequest(
            f"size asks for {from_size} and quality '{quality}' for {from_quality}; send one of them.",
            field="quality",
        )
    return from_size or from_quality


def _refuse_unmappable(request: ImagesRequest, model: ModelSpec) -> None:
    """OpenAI params this model has no equivalent for: refused by name, never dropped."""
    if request.style is not None:
        raise InvalidRequest(
            f"style is not supported by {model.id}; describe the style ('{request.style}') in the prompt.",
            field="style",
        )
    if request.moderation == "low":
        raise InvalidRequest(
            f"moderation 'low' is not available for {model.id}: its safety filters are fixed; omit it or send 'auto'.",
            field="moderation",
        )
    if request.input_fidelity is not None:
        raise InvalidRequest(
            f"input_fidelity is not supported by {model.id}, which always keeps the input images' details as it "
            "can; omit it.",
            field="input_fidelity",
        )


def _json_object(body: object) -> dict[str, object]:
    if not isinstance(body, dict):
        raise InvalidRequest(f"Invalid type for request body: expected an object, but got {json_type(body)} instead.")
    return {str(key): value for key, value in body.items()}


def _validate(fields: Mapping[str, object], refs: Iterable[tuple[str, _ImageRef]]) -> ImagesRequest:
    """The wire model of ``fields`` with the gathered images; the first complaint becomes a domain error."""
    refs = list(refs)
    unknown = [k for k in fields if k not in _KNOWN_PARAMS and not _IMAGE_FIELD.match(k)]
    if unknown:  # OpenAI's answer to a parameter it does not define; nothing is silently dropped
        raise UnknownField(f"Unknown parameter: '{unknown[0]}'.", field=unknown[0])
    data = {k: v for k, v in fields.items() if k not in ("images", "image_urls")}
    data["images"] = tuple(ref for _, ref in refs if isinstance(ref, ImageInput))
    data["image_urls"] = tuple(ref for _, ref in refs if isinstance(ref, str))
    try:
        return ImagesRequest.model_validate(data)
    except ValidationError as exc:
        raise _domain_error(exc) from exc


def _domain_error(exc: ValidationError) -> InvalidRequest:
    error = exc.errors()[0]
    loc = error["loc"]
    param = str(loc[0]) if loc else None
    context = error.get("ctx") or {}
    if error["type"] == PARAM_ERROR:
        return InvalidRequest(str(context["message"]), field=str(context.get("param", param)))
    if error["type"] == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", field=param)
    return InvalidRequest(f"Invalid '{param}': {error['msg']}.", field=param)  # not reached by wire's own validators


def _json_images(fields: Mapping[str, object], keys: Sequence[str]) -> list[tuple[str, _ImageRef]]:
    refs: list[tuple[str, _ImageRef]] = []
    for key in keys:
        value = fields.get(key)
        if _absent(value):
            continue
        if isinstance(value, list):
            refs.extend((f"{key}[{i}]", _image_ref(item, f"{key}[{i}]")) for i, item in enumerate(value))
        else:
            refs.append((key, _image_ref(value, key)))
    return refs


def _image_ref(value: object, param: str) -> _ImageRef:
    """An http(s) URL to fetch later, or an image decoded now from a data URL or bare base64."""
    if isinstance(value, dict):
        # OpenAI's JSON edits send ``{"image_url": "..."}`` (or ``{"file_id": ...}``, which has no meaning here).
        if "image_url" not in value:
            hint = "file ids are not supported here" if "file_id" in value else "expected an object with image_url"
            raise InvalidRequest(f"Invalid '{param}': {hint}; send the image as an http(s) or data URL.", field=param)
        inner = value["image_url"]
        value = inner.get("url") if isinstance(inner, dict) else inner
        param = f"{param}.image_url"
    if not isinstance(value, str):
        raise InvalidRequest(
            f"Invalid type for '{param}': expected a string, but got {json_type(value)} instead.", field=param
        )
    text = value.strip()
    lowered = text[:8].lower()
    if lowered.startswith(("http://", "https://")):
        return text
    if lowered.startswith("data:"):
        return _data_url(text, param)
    try:
        data = decode_base64(text)
    except ValueError:
        raise InvalidRequest(
            f"Invalid '{param}': expected an http(s) URL, a data URL or base64 image data.", field=param
        ) from None
    return ImageInput.from_bytes(data, field=param)


def _data_url(text: str, param: str) -> ImageInput:
    header, sep, payload = text[len("data:") :].partition(",")
    if not sep or ";base64" not in header.lower():
        raise InvalidImage(f"Invalid '{param}': a data URL must be base64 (data:image/png;base64,...).", field=param)
    try:
        data = decode_base64(payload)
    except ValueError:
        raise InvalidImage(f"Invalid '{param}': the data URL's base64 data is not valid.", field=param) from None
    return ImageInput.from_bytes(data, field=param)  # the declared MIME type is not trusted: the bytes decide


def _ordered_uploads(files: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    indexed: list[tuple[int | None, str, bytes]] = []
    for name, data in files:
        match = _IMAGE_FIELD.match(name)
        if match is not None:
            index = match.group(1)
            indexed.append((int(index) if index else None, name, data))
    if indexed and all(index is not None for index, _, _ in indexed):
        indexed.sort(key=lambda item: item[0] or 0)  # stable: repeated indexes keep the order they came in
    return [(name, data) for _, name, data in indexed]


def _require_images(request: ImagesRequest) -> ImagesRequest:
    if not request.images and not request.image_urls:
        raise InvalidRequest("Missing required parameter: 'image'.", field="image")
    return request


def _mask_error(request: ImagesRequest) -> InvalidRequest:
    return InvalidRequest(
        f"mask is not supported by {request.model}; describe the edit in the prompt instead.", field="mask"
    )


def _absent(value: object) -> bool:
    return value is None or value == "" or value == []
