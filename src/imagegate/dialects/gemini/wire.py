"""Pydantic models of the Gemini ``generateContent``, ``countTokens`` and ``batchGenerateContent`` request bodies.

Google's proto3-JSON parser accepts lowerCamelCase and the original snake_case name of every field, at every
level and mixed within one body (google-genai >= 2.25 sends ``inlineData`` holding ``mime_type``), and rejects
any name it does not know; every model here does the same (``extra="forbid"``). Class names are the proto
message names because validation errors quote them. Enum fields raise a ``proto_enum`` error carrying the
proto enum's name so that ``requests`` can phrase Google's message. Fields this model never uses (tools,
function calls, safety settings, …) are accepted and ignored, because SDKs send them and chat history echoes
them back. Responses are not modelled here: they are rendered as plain camelCase dicts by ``responses``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

#: The error type that enum validators raise; its context holds ``proto_type`` (e.g. ``HarmCategory``).
PROTO_ENUM_ERROR = "proto_enum"

#: ``GenerationConfig.Modality``: every value the API knows (this model only makes TEXT and IMAGE).
MODALITIES = frozenset({"MODALITY_UNSPECIFIED", "TEXT", "IMAGE", "AUDIO", "VIDEO"})
HARM_BLOCK_THRESHOLDS = frozenset(
    {
        "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
        "BLOCK_LOW_AND_ABOVE",
        "BLOCK_MEDIUM_AND_ABOVE",
        "BLOCK_ONLY_HIGH",
        "BLOCK_NONE",
        "OFF",
    }
)

#: The values Google's API takes, as the google-genai SDK lists them (a test compares the two, so a value a newer
#: SDK sends shows up as a failing test here, not as a silent pass-through of something Google would refuse).
HARM_CATEGORIES = frozenset(
    {
        "HARM_CATEGORY_UNSPECIFIED",
        "HARM_CATEGORY_HARASSMENT",
        "HARM_CATEGORY_HATE_SPEECH",
        "HARM_CATEGORY_SEXUALLY_EXPLICIT",
        "HARM_CATEGORY_DANGEROUS_CONTENT",
        "HARM_CATEGORY_CIVIC_INTEGRITY",
        "HARM_CATEGORY_JAILBREAK",
        "HARM_CATEGORY_IMAGE_HATE",
        "HARM_CATEGORY_IMAGE_DANGEROUS_CONTENT",
        "HARM_CATEGORY_IMAGE_HARASSMENT",
        "HARM_CATEGORY_IMAGE_SEXUALLY_EXPLICIT",
    }
)
MEDIA_RESOLUTIONS = frozenset(
    {"MEDIA_RESOLUTION_UNSPECIFIED", "MEDIA_RESOLUTION_LOW", "MEDIA_RESOLUTION_MEDIUM", "MEDIA_RESOLUTION_HIGH"}
)


def _enum(proto_type: str, values: frozenset[str]) -> Callable[[object], str]:
    """A validator for a proto enum sent as a string, in any letter case (the docs write ``["Image"]``)."""

    def check(value: object) -> str:
        if isinstance(value, str):
            upper = value.strip().upper()
            if upper in values:
                return upper
        raise PydanticCustomError(PROTO_ENUM_ERROR, "Invalid value for {proto_type}", {"proto_type": proto_type})

    return check


ResponseModality = Annotated[str, BeforeValidator(_enum("GenerationConfig.Modality", MODALITIES))]
HarmCategory = Annotated[str, BeforeValidator(_enum("HarmCategory", HARM_CATEGORIES))]
HarmBlockThreshold = Annotated[str, BeforeValidator(_enum("SafetySetting.HarmBlockThreshold", HARM_BLOCK_THRESHOLDS))]
MediaResolution = Annotated[str, BeforeValidator(_enum("GenerationConfig.MediaResolution", MEDIA_RESOLUTIONS))]

#: An object this server passes over without looking inside (a ``google.protobuf.Struct`` or a message).
JsonObject = dict[str, Any]


class WireModel(BaseModel):
    """Both spellings of every field, nothing else; immutable once parsed."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class Blob(WireModel):
    data: str | None = None  # base64, either alphabet; decoded by ``requests.decode_base64``
    mime_type: str | None = None
    display_name: str | None = None


class FileData(WireModel):
    file_uri: str | None = None
    mime_type: str | None = None
    display_name: str | None = None


class Part(WireModel):
    text: str | None = None
    inline_data: Blob | None = None
    file_data: FileData | None = None
    thought: bool | None = None
    thought_signature: str | None = None
    # Tolerated so that chat history and newer SDKs parse; never used for image generation.
    function_call: JsonObject | None = None
    function_response: JsonObject | None = None
    executable_code: JsonObject | None = None
    code_execution_result: JsonObject | None = None
    video_metadata: JsonObject | None = None
    media_resolution: Any = None  # an enum string in v1beta, an object in google-genai 3.x
    part_metadata: JsonObject | None = None
    tool_call: JsonObject | None = None
    tool_response: JsonObject | None = None
    audio_metadata: JsonObject | None = None
    speech_metadata: JsonObject | None = None
    document_metadata: JsonObject | None = None
    spreadsheet_metadata: JsonObject | None = None
    audio_transcription: JsonObject | None = None
    media_processing: JsonObject | None = None


class Content(WireModel):
    role: str | None = None  # "user" | "model"; omitted means user
    parts: list[Part] | None = None


class ImageConfig(WireModel):
    # No personGeneration and friends: they are Vertex-only and Google answers them with "Unknown name".
    aspect_ratio: str | None = None
    image_size: str | None = None


class ThinkingConfig(WireModel):
    include_thoughts: bool | None = None
    thinking_budget: int | None = None
    thinking_level: str | None = None


class GenerationConfig(WireModel):
    response_modalities: list[ResponseModality] | None = None
    image_config: ImageConfig | None = None
    candidate_count: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    max_output_tokens: int | None = None
    stop_sequences: list[str] | None = None
    response_mime_type: str | None = None
    response_schema: JsonObject | None = None
    response_json_schema: Any = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_logprobs: bool | None = None
    logprobs: int | None = None
    thinking_config: ThinkingConfig | None = None
    media_resolution: MediaResolution | None = None
    speech_config: JsonObject | None = None
    audio_transcription_config: JsonObject | None = None
    enable_enhanced_civic_answers: bool | None = None
    enable_affective_dialog: bool | None = None


class SafetySetting(WireModel):
    # ``method`` is Vertex-only: the SDK refuses to send it here and Google rejects it as an unknown name.
    category: HarmCategory | None = None
    threshold: HarmBlockThreshold | None = None


class GenerateContentRequest(WireModel):
    model: str | None = None  # normally in the URL; required inside countTokens' generateContentRequest
    contents: list[Content] | None = None
    system_instruction: Content | None = None
    generation_config: GenerationConfig | None = None
    safety_settings: list[SafetySetting] | None = None
    tools: list[JsonObject] | None = None
    tool_config: JsonObject | None = None
    cached_content: str | None = None
    service_tier: str | None = None
    store: bool | None = None
    labels: dict[str, str] | None = None
    continuation_token: str | None = None


class CountTokensRequest(WireModel):
    contents: list[Content] | None = None
    generate_content_request: GenerateContentRequest | None = None


class InlinedRequest(WireModel):
    # Each request is parsed on its own (``batch_routes``): what is wrong with one is its error, not the batch's.
    request: Any = None
    metadata: JsonObject | None = None


class InlinedRequests(WireModel):
    requests: list[InlinedRequest] | None = None


class InputConfig(WireModel):
    file_name: str | None = None
    requests: InlinedRequests | None = None


class GenerateContentBatch(WireModel):
    """``Batch``; the output-only fields a client may echo back (``name``, ``state``, …) are accepted and ignored."""

    model: str | None = None
    name: str | None = None
    display_name: str | None = None
    input_config: InputConfig | None = None
    priority: int | None = None  # int64: a JSON number or a decimal string
    output: JsonObject | None = None
    create_time: str | None = None
    end_time: str | None = None
    update_time: str | None = None
    batch_stats: JsonObject | None = None
    state: str | None = None


class BatchGenerateContentRequest(WireModel):
    batch: GenerateContentBatch | None = None
