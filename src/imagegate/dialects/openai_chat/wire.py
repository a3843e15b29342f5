"""The Chat Completions request body as OpenRouter serves image models, parsed and checked field by field.

``parse_chat_request`` turns a decoded JSON body into a ``ChatRequest`` or raises a domain error naming the
field with OpenAI's wording (``Missing required parameter: 'model'.``, ``Unrecognized request argument
supplied: foo``, ``Invalid 'n': integer above maximum value. …``). Unlike the Images API, unknown fields are
refused, at the top level and inside a message, as OpenAI's Chat Completions endpoint refuses them.

Every field is one of three kinds, each listed below: it changes the job (the sampling knobs OpenRouter passes
to Gemini become the job's ``GoogleOptions``; ``user`` is the job's end user), it is accepted because it only
describes the request or its routing (``ACCEPTED``, each with the reason it cannot change the images), or an
image model cannot honour it and it is refused by name (``UNSUPPORTED``). Image parts keep their URL: fetching
(or reading this server's own links) is the route's job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from imagegate.core.images import GEMINI_API_RATIOS
from imagegate.core.jobs import GoogleOptions
from imagegate.dialects.openai_common.wire import json_type, quote_list
from imagegate.errors import InvalidRequest, UnknownField

MAX_N = 10
MAX_TEMPERATURE = 2.0
ROLES = ("system", "assistant", "user", "function", "tool", "developer")
PART_TYPES = ("text", "image_url", "input_audio", "refusal", "audio", "file")
MODALITIES = ("text", "image")
#: ``image_url.detail`` as Google's ``mediaResolution``: how finely the model reads the input images.
DETAILS = {"auto": None, "low": "MEDIA_RESOLUTION_LOW", "high": "MEDIA_RESOLUTION_HIGH"}
MAX_STOP = 4  # OpenAI's limit on stop sequences
MAX_PENALTY = 2.0
MAX_END_USER = 256
#: OpenRouter spells Google's 512 as 0.5K; both are taken, Google's spelling is what the job carries.
IMAGE_SIZES = {"0.5k": "512", "512": "512", "1k": "1K", "2k": "2K", "4k": "4K"}

#: Chat fields an image model cannot honour: refused with a reason instead of being ignored.
UNSUPPORTED = {
    "tools": "this model does not call tools",
    "tool_choice": "this model does not call tools",
    "functions": "this model does not call functions",
    "function_call": "this model does not call functions",
    "parallel_tool_calls": "this model does not call tools",
    "response_format": "the answer is images and text; structured output is not available",
    "logprobs": "log probabilities are not available for image output",
    "top_logprobs": "log probabilities are not available for image output",
    "logit_bias": "logit bias is not available for this model",
    "audio": "this model does not make audio",
    "prediction": "predicted outputs are not available for this model",
    "reasoning_effort": "reasoning effort is not configurable for this model",
    "web_search_options": "web search is not available for this model",
}
#: Accepted, and why each cannot change the images: it describes the request, or routes it where routing is this
#: server's own configuration.
ACCEPTED = {
    "metadata": "tags for OpenAI's stored completions; checked for OpenAI's shape, kept nowhere",
    "store": "OpenAI's opt-in to keep the completion; every job is kept in this server's history anyway",
    "provider": "OpenRouter's provider routing; deployments are chosen by this server's configuration",
    "transforms": "OpenRouter's prompt transforms; prompts are sent whole",
    "usage": "OpenRouter's usage accounting switch; usage is always in the answer",
    "service_tier": "a processing tier; this server has one",
}
#: The fields that change the job, and the message fields of a chat history.
KNOWN = (
    "model",
    "messages",
    "modalities",
    "image_config",
    "n",
    "stream",
    "stream_options",
    "temperature",
    "seed",
    "max_tokens",
    "max_completion_tokens",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "stop",
    "user",
    "safety_identifier",
)
MESSAGE_KEYS = ("role", "content", "name")
#: What an assistant message of an earlier answer carries when a client sends it back: OpenRouter's ``images``
#: (context for the next edit), and its reasoning and annotations, which are the model's own words and not sent.
ASSISTANT_KEYS = ("images", "refusal", "reasoning", "reasoning_details", "annotations")
SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority")


@dataclass(frozen=True, slots=True)
class ImageUrl:
    """An image part: a data URL, an http(s) URL, or one of this server's file links, not yet loaded."""

    url: str
    field: str
    detail: str = "auto"


ChatPart = str | ImageUrl


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str  # system, developer, user or assistant
    parts: tuple[ChatPart, ...]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    modalities: tuple[str, ...] | None = None  # None: the model's default, image and text
    aspect_ratio: str | None = None
    image_size: str | None = None  # Google's spelling: 512, 1K, 2K, 4K
    n: int = 1
    stream: bool = False
    temperature: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    include_usage: bool = False  # stream_options.include_usage: a last chunk with no choices and the usage
    end_user: str | None = None
    google: GoogleOptions = field(default_factory=GoogleOptions)

    @property
    def image_urls(self) -> tuple[ImageUrl, ...]:
        return tuple(part for m in self.messages for part in m.parts if isinstance(part, ImageUrl))


def parse_chat_request(body: object) -> ChatRequest:
    """A decoded ``POST /v1/chat/completions`` body, checked; raises ``InvalidRequest`` naming the field."""
    if not isinstance(body, dict):
        raise InvalidRequest(f"Invalid type for request body: expected an object, but got {json_type(body)} instead.")
    fields: dict[str, object] = {str(k): v for k, v in body.items()}
    for name, value in fields.items():
        if name in UNSUPPORTED and value is not None:
            raise InvalidRequest(f"'{name}' is not supported for image models: {UNSUPPORTED[name]}.", field=name)
        if name not in KNOWN and name not in ACCEPTED and name not in UNSUPPORTED:
            raise UnknownField(f"Unrecognized request argument supplied: {name}", field=name)
    _check_accepted(fields)
    model = fields.get("model")
    if model is None or (isinstance(model, str) and not model.strip()):
        raise InvalidRequest("Missing required parameter: 'model'.", field="model")
    if not isinstance(model, str):
        raise _type_error("model", "a string", model)
    aspect_ratio, image_size = _image_config(fields.get("image_config"))
    max_tokens = _integer(fields, "max_completion_tokens", 1, 2**31) or _integer(fields, "max_tokens", 1, 2**31)
    messages = _messages(fields.get("messages"))
    stream, include_usage = _stream(fields.get("stream"), fields.get("stream_options"))
    return ChatRequest(
        model=model.strip(),
        messages=messages,
        modalities=_modalities(fields.get("modalities")),
        aspect_ratio=aspect_ratio,
        image_size=image_size,
        n=_integer(fields, "n", 1, MAX_N) or 1,
        stream=stream,
        temperature=_decimal(fields, "temperature", 0, MAX_TEMPERATURE),
        seed=_integer(fields, "seed", -(2**63), 2**63 - 1),
        max_tokens=max_tokens,
        include_usage=include_usage,
        end_user=_end_user(fields),
        google=GoogleOptions(
            top_p=_decimal(fields, "top_p", 0, 1),
            presence_penalty=_decimal(fields, "presence_penalty", -MAX_PENALTY, MAX_PENALTY),
            frequency_penalty=_decimal(fields, "frequency_penalty", -MAX_PENALTY, MAX_PENALTY),
            stop_sequences=_stop(fields.get("stop")),
            media_resolution=_finest_detail(messages),
        ),
    )


def _type_error(param: str, expected: str, value: object) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.", field=param
    )


def _messages(value: object) -> tuple[ChatMessage, ...]:
    if value is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", field="messages")
    if not isinstance(value, list):
        raise _type_error("messages", "an array of objects", value)
    if not value:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            field="messages",
        )
    messages = tuple(_message(item, f"messages[{i}]") for i, item in enumerate(value))
    if not any(m.role == "user" and m.parts for m in messages):
        raise InvalidRequest("The messages hold no user message with content: say what to draw.", field="messages")
    return messages


def _message(item: object, where: str) -> ChatMessage:
    if not isinstance(item, dict):
        raise _type_error(where, "an object", item)
    role = item.get("role")
    if role is None:
        raise InvalidRequest(f"Missing required parameter: '{where}.role'.", field=f"{where}.role")
    if not isinstance(role, str) or role not in ROLES:
        shown = role if isinstance(role, str) else json_type(role)
        raise InvalidRequest(
            f"Invalid value: '{shown}'. Supported values are: {quote_list(ROLES)}.", field=f"{where}.role"
        )
    if role in ("tool", "function") or item.get("tool_calls") or item.get("function_call"):
        raise InvalidRequest(
            f"Invalid '{where}': tool and function messages are not supported; this model does not call tools.",
            field=where,
        )
    allowed = MESSAGE_KEYS + ASSISTANT_KEYS + ("tool_calls", "function_call") if role == "assistant" else MESSAGE_KEYS
    for key in item:
        if key not in allowed:
            raise UnknownField(f"Unrecognized argument in {where}: {key}", field=f"{where}.{key}")
    name = item.get("name")
    if name is not None and not isinstance(name, str):
        raise _type_error(f"{where}.name", "a string", name)
    parts = list(_content(item.get("content"), f"{where}.content", allow_images=role in ("user", "assistant")))
    if role == "assistant":
        parts.extend(_assistant_images(item.get("images"), f"{where}.images"))
    if role == "user" and not parts:
        raise InvalidRequest(f"Invalid '{where}.content': a user message needs text or an image.", field=where)
    return ChatMessage(role=role, parts=tuple(parts))


def _content(value: object, where: str, *, allow_images: bool) -> list[ChatPart]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if not isinstance(value, list):
        raise _type_error(where, "a string or an array of content parts", value)
    parts: list[ChatPart] = []
    for j, part in enumerate(value):
        at = f"{where}[{j}]"
        if not isinstance(part, dict):
            raise _type_error(at, "an object", part)
        kind = part.get("type")
        if kind not in PART_TYPES:
            shown = kind if isinstance(kind, str) else json_type(kind)
            raise InvalidRequest(
                f"Invalid value: '{shown}'. Supported values are: {quote_list(PART_TYPES)}.", field=f"{at}.type"
            )
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise _type_error(f"{at}.text", "a string", text)
            if text:
                parts.append(text)
        elif kind == "image_url":
            if not allow_images:
                raise InvalidRequest(
                    f"Invalid '{at}': system and developer messages take text only; put images in a user message.",
                    field=at,
                )
            parts.append(_image_url(part.get("image_url"), f"{at}.image_url"))
        else:
            raise InvalidRequest(
                f"Invalid '{at}': content parts of type '{kind}' are not supported; send text and image_url parts.",
                field=f"{at}.type",
            )
    return parts


def _image_url(value: object, where: str) -> ImageUrl:
    url: object
    detail: object = "auto"
    if isinstance(value, str):  # some clients flatten {"url": …} to the string itself
        url = value
    elif isinstance(value, dict):
        url = value.get("url")
        detail = value.get("detail")
        detail = "auto" if detail is None else detail
        if not isinstance(detail, str) or detail not in DETAILS:
            shown = detail if isinstance(detail, str) else json_type(detail)
            raise InvalidRequest(
                f"Invalid value: '{shown}'. Supported values are: {quote_list(tuple(DETAILS))}.",
                field=f"{where}.detail",
            )
        where = f"{where}.url"
    else:
        raise _type_error(where, "an object", value)
    if not isinstance(url, str) or not url.strip():
        raise InvalidRequest(f"Missing required parameter: '{where}'.", field=where)
    scheme = url.strip()[:8].lower()
    if not scheme.startswith(("data:", "http://", "https://")):
        raise InvalidRequest(
            f"Invalid '{where}': expected an http(s) URL or a base64 data URL (data:image/png;base64,...).",
            field=where,
        )
    return ImageUrl(url.strip(), where, str(detail))


def _assistant_images(value: object, where: str) -> list[ChatPart]:
    """The ``images`` an earlier answer carried (OpenRouter's shape), echoed back in the history."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _type_error(where, "an array", value)
    images: list[ChatPart] = []
    for j, item in enumerate(value):
        at = f"{where}[{j}]"
        if not isinstance(item, dict):
            raise _type_error(at, "an object", item)
        images.append(_image_url(item.get("image_url"), f"{at}.image_url"))
    return images


def _modalities(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _type_error("modalities", "an array of strings", value)
    names = tuple(str(v).lower() for v in value)
    for name in names:
        if name not in MODALITIES:
            raise InvalidRequest(
                f"Invalid value: '{name}'. Supported values are: {quote_list(MODALITIES)}.", field="modalities"
            )
    if not names:
        raise InvalidRequest(
            'Invalid \'modalities\': empty array. Send ["image", "text"] or ["image"].', field="modalities"
        )
    return names


def _image_config(value: object) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise _type_error("image_config", "an object", value)
    for key in value:
        if key not in ("aspect_ratio", "image_size"):
            raise UnknownField(f"Unrecognized argument in image_config: {key}", field=f"image_config.{key}")
    ratio = value.get("aspect_ratio")
    if ratio is not None and (not isinstance(ratio, str) or ratio.strip() not in GEMINI_API_RATIOS):
        shown = ratio if isinstance(ratio, str) else json_type(ratio)
        raise InvalidRequest(
            f"Invalid value: '{shown}'. Supported values are: {quote_list(GEMINI_API_RATIOS)}.",
            field="image_config.aspect_ratio",
        )
    size = value.get("image_size")
    if size is not None and (not isinstance(size, str) or size.strip().lower() not in IMAGE_SIZES):
        shown = size if isinstance(size, str) else json_type(size)
        raise InvalidRequest(
            f"Invalid value: '{shown}'. Supported values are: '0.5K', '1K', '2K', and '4K'.",
            field="image_config.image_size",
        )
    return (ratio.strip() if ratio else None), (IMAGE_SIZES[size.strip().lower()] if size else None)


def _integer(fields: Mapping[str, object], name: str, low: int, high: int) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_error(name, "an integer", value)
    if value < low:
        raise InvalidRequest(
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, but got {value} instead.",
            field=name,
        )
    if value > high:
        raise InvalidRequest(
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, but got {value} instead.",
            field=name,
        )
    return value


def _decimal(fields: Mapping[str, object], name: str, low: float, high: float) -> float | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _type_error(name, "a decimal", value)
    if value < low:
        raise InvalidRequest(
            f"Invalid '{name}': decimal below minimum value. Expected a value >= {low:g}, but got {value} instead.",
            field=name,
        )
    if value > high:
        raise InvalidRequest(
            f"Invalid '{name}': decimal above maximum value. Expected a value <= {high:g}, but got {value} instead.",
            field=name,
        )
    return float(value)


def _stop(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(v, str) for v in stops):
        raise _type_error("stop", "a string or an array of strings", value)
    if len(stops) > MAX_STOP:
        raise InvalidRequest(
            f"Invalid 'stop': array too long. Expected an array with maximum length {MAX_STOP}, "
            f"but got an array with length {len(stops)} instead.",
            field="stop",
        )
    return tuple(str(v) for v in stops if v)


def _end_user(fields: Mapping[str, object]) -> str | None:
    """``safety_identifier`` (OpenAI's newer name) or ``user``: the caller's own id for the person asking."""
    chosen: str | None = None
    for name in ("user", "safety_identifier"):  # the later one wins
        value = fields.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise _type_error(name, "a string", value)
        if len(value) > MAX_END_USER:
            raise InvalidRequest(
                f"Invalid '{name}': string too long. Expected a string with maximum length {MAX_END_USER}, "
                f"but got a string with length {len(value)} instead.",
                field=name,
            )
        chosen = value or chosen
    return chosen


def _finest_detail(messages: tuple[ChatMessage, ...]) -> str | None:
    """One ``mediaResolution`` for the request: the finest any image part asks for, so none is read coarser."""
    asked = {part.detail for m in messages for part in m.parts if isinstance(part, ImageUrl)}
    for detail in ("high", "low"):
        if detail in asked:
            return DETAILS[detail]
    return None


def _check_accepted(fields: Mapping[str, object]) -> None:
    """The accepted fields change nothing, but a malformed one is still the caller's mistake to hear about."""
    metadata = fields.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise _type_error("metadata", "an object of strings", metadata)
        if len(metadata) > 16 or any(len(str(k)) > 64 or len(v) > 512 for k, v in metadata.items()):
            raise InvalidRequest(
                "Invalid 'metadata': at most 16 keys of up to 64 characters, values up to 512 characters.",
                field="metadata",
            )
    for name, kind, expected in (
        ("store", bool, "a boolean"),
        ("provider", dict, "an object"),
        ("usage", dict, "an object"),
        ("transforms", list, "an array of strings"),
        ("service_tier", str, "a string"),
    ):
        value = fields.get(name)
        if value is not None and not isinstance(value, kind):
            raise _type_error(name, expected, value)
    tier = fields.get("service_tier")
    if tier is not None and tier not in SERVICE_TIERS:
        raise InvalidRequest(
            f"Invalid value: '{tier}'. Supported values are: {quote_list(SERVICE_TIERS)}.", field="service_tier"
        )


def _stream(value: object, options: object) -> tuple[bool, bool]:
    """Whether to stream, and whether the stream ends with a usage chunk (``stream_options.include_usage``)."""
    if value is not None and not isinstance(value, bool):
        raise _type_error("stream", "a boolean", value)
    if options is not None:
        if not value:
            raise InvalidRequest(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.", field="stream_options"
            )
        if not isinstance(options, dict):
            raise _type_error("stream_options", "an object", options)
        for key, option in options.items():
            if key != "include_usage":
                raise UnknownField(f"Unrecognized argument in stream_options: {key}", field=f"stream_options.{key}")
            if not isinstance(option, bool):
                raise _type_error("stream_options.include_usage", "a boolean", option)
        return bool(value), bool(options.get("include_usage"))
    return bool(value), False
