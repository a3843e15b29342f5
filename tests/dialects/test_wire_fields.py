"""Every field of every dialect's request wire types, and what it does: it changes the job, it is refused with a
400 naming it, it is the request's structure, or (Gemini only) Google accepts it and it cannot change an image,
with the reason written down. A field added to a wire type without an entry here fails this test."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from imagegate.core.catalog import builtin_model
from imagegate.dialects.gemini import wire as gemini
from imagegate.dialects.gemini.requests import parse_generate_request
from imagegate.dialects.gemini.requests import to_job_spec as gemini_spec
from imagegate.dialects.linkmodel.wire import ImageGenerationRequest
from imagegate.dialects.openai_chat import wire as chat
from imagegate.dialects.openai_images.requests import parse_generation_request
from imagegate.dialects.openai_images.requests import to_job_spec as openai_spec
from imagegate.dialects.openai_images.wire import ImagesRequest
from imagegate.errors import InvalidRequest

JOB = "job"  # changes the JobSpec (the value says which field)
REFUSED = "refused"  # a 400 naming the field (always, or for the values the model cannot honour)
STRUCTURE = "structure"  # the request's shape: contents, parts, images
ACCEPTED = "accepted"  # Gemini only: Google accepts it on image models and it changes nothing we make

PRO = builtin_model("gemini-3-pro-image")
NB = builtin_model("gemini-2.5-flash-image")

FIELDS: dict[type[BaseModel], dict[str, tuple[str, str]]] = {
    gemini.GenerateContentRequest: {
        "model": (STRUCTURE, "the model is in the URL; countTokens' inner request names it"),
        "contents": (STRUCTURE, "turns"),
        "system_instruction": (JOB, "system_instruction"),
        "generation_config": (STRUCTURE, "GenerationConfig below"),
        "safety_settings": (JOB, "google.safety: sent to generateContent upstreams; no effect elsewhere"),
        "tools": (JOB, "grounding (googleSearch); any other tool is refused"),
        "tool_config": (ACCEPTED, "function-calling mode; no function tools are ever run"),
        "cached_content": (REFUSED, "no context cache here"),
        "service_tier": (ACCEPTED, "a billing tier hint; one tier here"),
        "store": (ACCEPTED, "logging opt-in; requests are not stored beyond the job"),
        "labels": (ACCEPTED, "billing labels (Vertex); kept out of the job"),
        "continuation_token": (ACCEPTED, "a streaming resume token; answers are one chunk"),
    },
    gemini.GenerationConfig: {
        "response_modalities": (JOB, "modalities"),
        "image_config": (STRUCTURE, "ImageConfig below"),
        "candidate_count": (REFUSED, "more than 1"),
        "temperature": (JOB, "temperature"),
        "top_p": (JOB, "google.top_p"),
        "top_k": (JOB, "google.top_k"),
        "seed": (JOB, "seed"),
        "max_output_tokens": (JOB, "google.max_output_tokens (limits the text half of the answer)"),
        "stop_sequences": (JOB, "google.stop_sequences"),
        "response_mime_type": (ACCEPTED, "text output format"),
        "response_schema": (ACCEPTED, "structured text output"),
        "response_json_schema": (ACCEPTED, "structured text output"),
        "presence_penalty": (JOB, "google.presence_penalty"),
        "frequency_penalty": (JOB, "google.frequency_penalty"),
        "response_logprobs": (ACCEPTED, "text log-probabilities"),
        "logprobs": (ACCEPTED, "text log-probabilities"),
        "thinking_config": (STRUCTURE, "ThinkingConfig below"),
        "media_resolution": (JOB, "google.media_resolution (countTokens still counts the model's rate per image)"),
        "speech_config": (ACCEPTED, "audio output; never produced"),
        "audio_transcription_config": (ACCEPTED, "audio input; never read"),
        "enable_enhanced_civic_answers": (ACCEPTED, "text answers"),
        "enable_affective_dialog": (ACCEPTED, "audio dialog"),
    },
    gemini.ImageConfig: {"aspect_ratio": (JOB, "aspect_ratio"), "image_size": (JOB, "image_size")},
    gemini.ThinkingConfig: {
        "include_thoughts": (JOB, "include_thoughts"),
        "thinking_budget": (REFUSED, "not 0 on a model that does not think"),
        "thinking_level": (JOB, "thinking_level"),
    },
    gemini.Content: {"role": (STRUCTURE, "turn role"), "parts": (STRUCTURE, "turn parts")},
    gemini.Part: {
        "text": (STRUCTURE, "text part"),
        "inline_data": (STRUCTURE, "image part"),
        "file_data": (STRUCTURE, "an uploaded file's image"),
        "thought": (STRUCTURE, "thought parts of history are left out of the prompt"),
        "thought_signature": (STRUCTURE, "carried back to thinking upstreams"),
        "function_call": (ACCEPTED, "chat history echo; no tools run"),
        "function_response": (ACCEPTED, "chat history echo; no tools run"),
        "executable_code": (ACCEPTED, "chat history echo"),
        "code_execution_result": (ACCEPTED, "chat history echo"),
        "video_metadata": (ACCEPTED, "video input; never read"),
        "media_resolution": (ACCEPTED, "per-part input resolution; counted at the model's rate"),
        "part_metadata": (ACCEPTED, "opaque client metadata"),
        "tool_call": (ACCEPTED, "chat history echo"),
        "tool_response": (ACCEPTED, "chat history echo"),
        "audio_metadata": (ACCEPTED, "audio input; never read"),
        "speech_metadata": (ACCEPTED, "audio input; never read"),
        "document_metadata": (ACCEPTED, "document input; never read"),
        "spreadsheet_metadata": (ACCEPTED, "document input; never read"),
        "audio_transcription": (ACCEPTED, "audio input; never read"),
        "media_processing": (ACCEPTED, "media input options; never read"),
    },
    gemini.Blob: {
        "data": (STRUCTURE, "image bytes"),
        "mime_type": (STRUCTURE, "ignored on purpose: the bytes are sniffed"),
        "display_name": (STRUCTURE, "a label"),
    },
    gemini.FileData: {
        "file_uri": (STRUCTURE, "an uploaded file"),
        "mime_type": (STRUCTURE, "the file's own type is used"),
        "display_name": (STRUCTURE, "a label"),
    },
    gemini.SafetySetting: {"category": (JOB, "google.safety"), "threshold": (JOB, "google.safety")},
    gemini.CountTokensRequest: {
        "contents": (STRUCTURE, "turns"),
        "generate_content_request": (STRUCTURE, "a whole request"),
    },
    gemini.BatchGenerateContentRequest: {"batch": (STRUCTURE, "GenerateContentBatch below")},
    gemini.GenerateContentBatch: {
        "model": (STRUCTURE, "the model is in the URL"),
        "name": (ACCEPTED, "output only: the server names the batch"),
        "display_name": (JOB, "the batch's display name"),
        "input_config": (STRUCTURE, "inline requests or a JSONL file"),
        "priority": (REFUSED, "not 0: batches run in the order they were created"),
        "output": (ACCEPTED, "output only"),
        "create_time": (ACCEPTED, "output only"),
        "end_time": (ACCEPTED, "output only"),
        "update_time": (ACCEPTED, "output only"),
        "batch_stats": (ACCEPTED, "output only"),
        "state": (ACCEPTED, "output only"),
    },
    gemini.InputConfig: {"file_name": (STRUCTURE, "a JSONL file of requests"), "requests": (STRUCTURE, "inline")},
    gemini.InlinedRequests: {"requests": (STRUCTURE, "the batch's requests, in order")},
    gemini.InlinedRequest: {
        "request": (STRUCTURE, "a GenerateContentRequest, parsed on its own: its error is its own"),
        "metadata": (JOB, "echoed back beside the request's response"),
    },
    ImagesRequest: {
        "prompt": (JOB, "turns"),
        "model": (JOB, "model"),
        "n": (JOB, "n"),
        "num_images": (JOB, "n"),
        "size": (JOB, "aspect_ratio and image_size"),
        "aspect_ratio": (JOB, "aspect_ratio"),
        "quality": (JOB, "image_size"),
        "response_format": (JOB, "how the job's images are delivered"),
        "output_format": (JOB, "output_mime_type"),
        "output_compression": (JOB, "output_quality"),
        "background": (REFUSED, "transparent; opaque/auto are what the model makes"),
        "moderation": (REFUSED, "low; auto is the model's fixed filter"),
        "style": (REFUSED, "always"),
        "input_fidelity": (REFUSED, "always"),
        "user": (JOB, "end_user: stored with the job, sent on to OpenAI-compatible upstreams as user"),
        "safety_identifier": (JOB, "end_user, ahead of user (OpenAI's newer name for it)"),
        "provider": (JOB, "deployment: AIML's routing override, the one deployment that may serve the job"),
        "stream": (JOB, "answered as an event stream"),
        "partial_images": (JOB, "with stream: these models send no partial image, only the completed event"),
        "seed": (JOB, "seed (not OpenAI's; fal's and Together's OpenAI-style image APIs take it)"),
        "negative_prompt": (
            JOB,
            "negative_prompt: local diffusion deployments take it, the router refuses it elsewhere",
        ),
        "num_inference_steps": (JOB, "steps, as negative_prompt"),
        "guidance_scale": (JOB, "guidance, as negative_prompt"),
        "image_urls": (STRUCTURE, "images to fetch"),
        "images": (STRUCTURE, "images sent"),
    },
    ImageGenerationRequest: {
        "model": (JOB, "model"),
        "prompt": (JOB, "turns"),
        "images": (STRUCTURE, "images to fetch"),
        "quality": (JOB, "image_size"),
        "size": (JOB, "aspect_ratio"),
    },
}

# The fields with no ACCEPTED escape hatch: every one changes the job or is refused.
STRICT = {ImagesRequest, ImageGenerationRequest, gemini.ImageConfig, gemini.ThinkingConfig}


#: Chat Completions is parsed by hand (OpenAI's wording for every refusal), so its table is checked against the
#: parser's own lists rather than a pydantic model.
CHAT: dict[str, tuple[str, str]] = {
    "model": (JOB, "model"),
    "messages": (STRUCTURE, "system instruction and turns; unknown message keys are refused"),
    "modalities": (JOB, "modalities"),
    "image_config": (JOB, "aspect_ratio and image_size"),
    "n": (JOB, "n"),
    "stream": (JOB, "answered as chat.completion.chunk events"),
    "stream_options": (JOB, "include_usage: a final usage chunk with no choices"),
    "temperature": (JOB, "temperature"),
    "seed": (JOB, "seed"),
    "max_tokens": (REFUSED, "below one image's output tokens"),
    "max_completion_tokens": (REFUSED, "as max_tokens, which it replaces"),
    "top_p": (JOB, "google.top_p"),
    "presence_penalty": (JOB, "google.presence_penalty"),
    "frequency_penalty": (JOB, "google.frequency_penalty"),
    "stop": (JOB, "google.stop_sequences"),
    "user": (JOB, "end_user"),
    "safety_identifier": (JOB, "end_user, ahead of user"),
    **{name: (ACCEPTED, why) for name, why in chat.ACCEPTED.items()},
    **{name: (REFUSED, why) for name, why in chat.UNSUPPORTED.items()},
}


def test_every_chat_field_has_an_entry() -> None:
    assert set(CHAT) == {*chat.KNOWN, *chat.ACCEPTED, *chat.UNSUPPORTED}
    for name, (kind, why) in CHAT.items():
        assert kind in (JOB, REFUSED, STRUCTURE, ACCEPTED) and why, name


def test_chat_fields_that_change_the_job() -> None:
    from imagegate.dialects.openai_chat.translate import to_job_spec as chat_spec
    from imagegate.dialects.openai_chat.wire import parse_chat_request

    request = parse_chat_request(
        {
            "model": PRO.id,
            "messages": [{"role": "user", "content": "a cat"}],
            "image_config": {"aspect_ratio": "21:9", "image_size": "2K"},
            "temperature": 0.4,
            "seed": 3,
            "n": 2,
            "top_p": 0.7,
            "stop": ["END"],
            "safety_identifier": "s-9",
            "modalities": ["image"],
        }
    )
    spec = chat_spec(request, PRO, {})
    assert (spec.aspect_ratio, spec.image_size, spec.temperature, spec.seed, spec.n) == ("21:9", "2K", 0.4, 3, 2)
    assert (spec.google.top_p, spec.google.stop_sequences, spec.end_user) == (0.7, ("END",), "s-9")
    assert {m.value for m in spec.modalities} == {"IMAGE"}


@pytest.mark.parametrize("wire", list(FIELDS), ids=lambda w: w.__name__)
def test_every_wire_field_has_an_entry(wire: type[BaseModel]) -> None:
    assert set(wire.model_fields) == set(FIELDS[wire]), "add the new field to FIELDS with what it does"
    for name, (kind, why) in FIELDS[wire].items():
        assert kind in (JOB, REFUSED, STRUCTURE, ACCEPTED) and why, name
        assert not (wire in STRICT and kind == ACCEPTED), f"{wire.__name__}.{name} must change the job or be refused"


def _gemini(model: Any = PRO, **config: Any) -> Any:
    body = {"contents": [{"parts": [{"text": "a cat"}]}], "generationConfig": config}
    return gemini_spec(parse_generate_request(body), model)


def _gemini_error(model: Any = PRO, **config: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        _gemini(model, **config)
    return info.value


def test_gemini_fields_that_change_the_job() -> None:
    assert _gemini(imageConfig={"imageSize": "4K", "aspectRatio": "21:9"}).image_size == "4K"
    assert _gemini(imageConfig={"aspectRatio": "21:9"}).aspect_ratio == "21:9"
    assert _gemini(temperature=0.3).temperature == 0.3 and _gemini(seed=7).seed == 7
    assert {m.value for m in _gemini(responseModalities=["IMAGE"]).modalities} == {"IMAGE"}
    google = _gemini(topP=0.5, topK=20, maxOutputTokens=300, stopSequences=["END"]).google
    assert (google.top_p, google.top_k, google.max_output_tokens, google.stop_sequences) == (0.5, 20, 300, ("END",))
    google = _gemini(presencePenalty=0.4, frequencyPenalty=-0.5, mediaResolution="media_resolution_low").google
    assert (google.presence_penalty, google.frequency_penalty) == (0.4, -0.5)
    assert google.media_resolution == "MEDIA_RESOLUTION_LOW"
    assert not _gemini(mediaResolution="MEDIA_RESOLUTION_UNSPECIFIED").google  # Google's default: nothing to send
    body = {
        "contents": [{"parts": [{"text": "a cat"}]}],
        "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH"}],
    }
    safety = gemini_spec(parse_generate_request(body), PRO).google.safety
    assert [(r.category, r.threshold) for r in safety] == [("HARM_CATEGORY_HATE_SPEECH", "BLOCK_ONLY_HIGH")]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"topP": 1.5}, "generation_config.top_p"),
        ({"topP": -0.1}, "generation_config.top_p"),
        ({"topK": 0}, "generation_config.top_k"),
        ({"maxOutputTokens": -1}, "generation_config.max_output_tokens"),
        ({"stopSequences": ["a", "b", "c", "d", "e", "f"]}, "generation_config.stop_sequences"),
    ],
)
def test_gemini_sampling_out_of_range_is_refused_by_field(config: dict[str, Any], field: str) -> None:
    error = _gemini_error(**config)
    assert error.field == field and field in str(error)


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ({"category": "HATE", "threshold": "BLOCK_NONE"}, "safety_settings[0].category"),
        ({"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_SOME"}, "safety_settings[0].threshold"),
        ({"threshold": "BLOCK_NONE"}, "safety_settings[0].category"),
        ({"category": "HARM_CATEGORY_HATE_SPEECH"}, "safety_settings[0].threshold"),
    ],
)
def test_gemini_bad_safety_settings_are_refused_by_field(setting: dict[str, str], field: str) -> None:
    body = {"contents": [{"parts": [{"text": "a cat"}]}], "safetySettings": [setting]}
    with pytest.raises(InvalidRequest) as info:
        gemini_spec(parse_generate_request(body), PRO)
    assert info.value.field == field and field in str(info.value)


def test_gemini_values_the_model_cannot_honour_are_refused_by_field() -> None:
    cases = [
        ({"imageConfig": {"imageSize": "512"}}, "generation_config.image_config.image_size"),
        ({"imageConfig": {"imageSize": "2k"}}, "generation_config.image_config.image_size"),
        ({"imageConfig": {"aspectRatio": "8:1"}}, "generation_config.image_config.aspect_ratio"),
        ({"candidateCount": 2}, "generation_config.candidate_count"),
        ({"temperature": 2.5}, "generation_config.temperature"),
    ]
    for config, field in cases:
        assert _gemini_error(**config).field == field, config
    assert _gemini_error(NB, temperature=1.5).field == "generation_config.temperature"  # Google: maxTemperature 1
    body = {"contents": [{"parts": [{"text": "a cat"}]}], "cachedContent": "cachedContents/abc"}
    with pytest.raises(InvalidRequest) as info:
        gemini_spec(parse_generate_request(body), PRO)
    assert info.value.field == "cached_content"


def _openai(model: Any = PRO, **body: Any) -> Any:
    return openai_spec(parse_generation_request({"prompt": "a cat", **body}), model)


def _openai_error(model: Any = PRO, **body: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        _openai(model, **body)
    return info.value


def test_openai_fields_map_or_are_refused() -> None:
    assert (_openai(size="2K").image_size, _openai(size="1792x1024").aspect_ratio) == ("2K", "16:9")
    assert _openai(size="4096x4096").image_size == "4K" and _openai(quality="hd").image_size == "2K"
    assert _openai(quality="low").image_size == "1K" and _openai(quality="max").image_size == "4K"
    assert _openai(aspect_ratio="21:9").aspect_ratio == "21:9" and _openai(n=3).n == 3
    assert _openai(output_format="webp", output_compression=40).output_quality == 40
    assert _openai(background="opaque").image_size is None  # what the model makes: accepted, nothing to change
    assert _openai(user="u-1").end_user == "u-1" and _openai(user="u-1", safety_identifier="s-1").end_user == "s-1"
    assert _openai(seed=-7).seed == -7 and _openai(seed="4294967").seed == 4294967  # forms send text
    # the diffusion knobs change the job; whether a deployment takes them is the router's check
    knobs = _openai(negative_prompt="blurry", num_inference_steps="12", guidance_scale="3.5")
    assert (knobs.negative_prompt, knobs.steps, knobs.guidance) == ("blurry", 12, 3.5)
    for body, field in [
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"num_inference_steps": 2.5}, "num_inference_steps"),
        ({"guidance_scale": -1}, "guidance_scale"),
        ({"guidance_scale": "lots"}, "guidance_scale"),
        ({"guidance_scale": 21}, "guidance_scale"),
        ({"negative_prompt": 5}, "negative_prompt"),
        ({"style": "vivid"}, "style"),
        ({"moderation": "low"}, "moderation"),
        ({"input_fidelity": "high"}, "input_fidelity"),
        ({"background": "transparent"}, "background"),
        ({"size": "7x3000"}, "size"),
        ({"size": "512"}, "size"),  # Pro has no 512
        ({"quality": "512"}, "quality"),
        ({"size": "2K", "quality": "4k"}, "quality"),
        ({"n": 11}, "n"),
        ({"seed": 2**31}, "seed"),  # Google's seed is an int32
        ({"seed": "x"}, "seed"),
    ]:
        assert _openai_error(**body).field == field, body


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"batch": {"inputConfig": {"requests": {"requests": [{"request": {}}]}}, "prio": 1}}, "batch.prio", "Unknown"),
        ({"batch": {"inputConfig": {"requests": {"requests": [{"request": {}, "key": "a"}]}}}}, None, "Unknown"),
        ({"batch": {"inputConfig": {"fileName": "files/x"}, "priority": "5"}}, "batch.priority", "priority"),
        ({"batch": {"displayName": "d"}}, "batch.input_config", "requests or file_name"),
        ({"batch": {"inputConfig": {"requests": {"requests": []}}}}, "batch.input_config", "requests or file_name"),
        ({"inputConfig": {"fileName": "files/x"}}, "input_config", "Unknown"),  # Google's body wraps it in batch
    ],
)
def test_gemini_batch_bodies_google_refuses_are_refused(body: dict[str, Any], field: str | None, words: str) -> None:
    from imagegate.dialects.gemini.requests import parse_batch_request

    with pytest.raises(InvalidRequest) as info:
        parse_batch_request(body)
    assert words in str(info.value)
    if field is not None:
        assert info.value.field == field


def test_gemini_batch_priority_zero_and_echoed_output_fields_are_accepted() -> None:
    from imagegate.dialects.gemini.requests import parse_batch_request

    batch, config = parse_batch_request(
        {"batch": {"inputConfig": {"fileName": "files/x"}, "priority": "0", "state": "BATCH_STATE_PENDING"}}
    )
    assert config.file_name == "files/x" and not batch.priority
