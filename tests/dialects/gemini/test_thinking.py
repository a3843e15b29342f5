"""Thinking and grounding in the Gemini dialect: thinkingConfig and tools in, thoughts, signatures and
groundingMetadata out, in the shapes Google uses and the google-genai SDK parses."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from imagegate.core.capabilities import NANO_BANANA, ModelSpec
from imagegate.core.catalog import builtin_model
from imagegate.core.images import PNG
from imagegate.core.jobs import FinishReason, Job, SearchGrounding, SlotResult, StoredImage, StoredThought, Usage
from imagegate.dialects.gemini.translate import (
    parse_generate_request,
    render_response,
    render_stream_chunks,
    to_job_spec,
)
from imagegate.errors import InvalidRequest

from .test_render import assert_clean, sdk_parse

PRO = builtin_model("gemini-3-pro-image")  # thinks and grounds


def spec_of(model: ModelSpec, **extra: Any) -> Any:
    body = {"contents": [{"role": "user", "parts": [{"text": "a weather chart of Paris"}]}], **extra}
    return to_job_spec(parse_generate_request(body), model)


def refusal(model: ModelSpec, **extra: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        spec_of(model, **extra)
    return caught.value


def test_include_thoughts_and_level_are_kept() -> None:
    config = {"thinkingConfig": {"includeThoughts": True, "thinkingLevel": "high"}}
    spec = spec_of(PRO, generationConfig=config)
    assert spec.include_thoughts is True and spec.thinking_level == "HIGH"
    assert spec_of(PRO).include_thoughts is False and spec_of(PRO).thinking_level is None


def test_include_thoughts_false_on_a_model_that_does_not_think_is_fine() -> None:
    # the google-genai SDK's own examples send it to gemini-2.5-flash-image
    spec = spec_of(NANO_BANANA, generationConfig={"thinking_config": {"include_thoughts": False}})
    assert spec.include_thoughts is False


def test_thinking_level_on_a_model_that_does_not_think_is_refused() -> None:
    error = refusal(NANO_BANANA, generationConfig={"thinkingConfig": {"thinkingLevel": "HIGH"}})
    assert error.field == "generation_config.thinking_config.thinking_level"
    assert "does not think" in error.message


def test_unknown_thinking_level_is_refused() -> None:
    error = refusal(PRO, generationConfig={"thinkingConfig": {"thinkingLevel": "EXTREME"}})
    assert error.field == "generation_config.thinking_config.thinking_level" and "EXTREME" in error.message


def test_thinking_budget_is_refused_naming_the_field() -> None:
    error = refusal(PRO, generationConfig={"thinkingConfig": {"thinkingBudget": 1024}})
    assert error.field == "generation_config.thinking_config.thinking_budget" and "thinking_level" in error.message
    assert spec_of(NANO_BANANA, generationConfig={"thinkingConfig": {"thinkingBudget": 0}}).thinking_level is None


def test_google_search_grounding() -> None:
    assert spec_of(PRO, tools=[{"googleSearch": {}}]).grounding == SearchGrounding()
    both = {"google_search": {"search_types": {"web_search": {}, "image_search": {}}}}
    assert spec_of(PRO, tools=[both]).grounding == SearchGrounding(web=True, images=True)
    images_only = {"googleSearch": {"searchTypes": {"imageSearch": {}}}}
    assert spec_of(PRO, tools=[images_only]).grounding == SearchGrounding(web=False, images=True)
    ranged = {
        "googleSearch": {"timeRangeFilter": {"startTime": "2026-01-01T00:00:00Z", "endTime": "2026-02-01T00:00:00Z"}}
    }
    grounding = spec_of(PRO, tools=[ranged]).grounding
    assert grounding is not None and grounding.time_range == ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
    assert spec_of(PRO, tools=[]).grounding is None


def test_grounding_on_a_model_without_it_is_a_400_naming_tools() -> None:
    error = refusal(NANO_BANANA, tools=[{"googleSearch": {}}])
    assert error.field == "tools"
    assert "gemini-2.5-flash-image" in error.message and "grounding" in error.message


@pytest.mark.parametrize(
    ("tool", "field"),
    [
        ({"functionDeclarations": [{"name": "f"}]}, "tools[0].functionDeclarations"),
        ({"codeExecution": {}}, "tools[0].codeExecution"),
        ({"googleSearch": {"excludeDomains": ["a.com"]}}, "tools[0].googleSearch.excludeDomains"),
        ({"googleSearch": {"bogus": 1}}, "tools[0].googleSearch.bogus"),
        (
            {"googleSearch": {"timeRangeFilter": {"startTime": "2026-01-01T00:00:00Z"}}},
            "tools[0].googleSearch.time_range_filter",
        ),
    ],
)
def test_other_tools_and_options_are_refused(tool: dict[str, Any], field: str) -> None:
    assert refusal(PRO, tools=[tool]).field == field


# --- out ---------------------------------------------------------------------------------------------------

GROUNDING = {
    "searchEntryPoint": {"renderedContent": "<div>Paris weather</div>"},
    "groundingChunks": [{"web": {"uri": "https://example.org/paris", "title": "example.org"}}],
    "webSearchQueries": ["weather Paris"],
}


def thinking_slot(png: bytes) -> SlotResult:
    image = StoredImage("file_1", PNG, 1024, 1024, len(png))
    interim = StoredImage("file_0", PNG, 1024, 1024, len(png))
    return SlotResult(
        index=0,
        images=(image,),
        text="Here is the chart.",
        finish_reason=FinishReason.STOP,
        usage=Usage(input_text_tokens=10, output_image_tokens=1120, thoughts_tokens=200),
        thoughts=(StoredThought(text="**Planning** a bar chart"), StoredThought(image=interim)),
        text_signature=b"sig-text",
        image_signatures=(b"sig-image",),
        grounding=GROUNDING,
    )


def test_thoughts_signatures_and_grounding_render_as_google_sends_them(
    png: bytes, make_job: Callable[[SlotResult], Job]
) -> None:
    body = render_response(make_job(thinking_slot(png)), {"file_0": png, "file_1": png}, PRO, response_id="r")
    assert_clean(body)
    candidate = body["candidates"][0]
    parts = candidate["content"]["parts"]
    b64 = base64.b64encode(png).decode()
    assert parts == [
        {"text": "**Planning** a bar chart", "thought": True},
        {"inlineData": {"mimeType": PNG, "data": b64}, "thought": True},
        {"text": "Here is the chart.", "thoughtSignature": base64.b64encode(b"sig-text").decode()},
        {"inlineData": {"mimeType": PNG, "data": b64}, "thoughtSignature": base64.b64encode(b"sig-image").decode()},
    ]
    assert candidate["groundingMetadata"] == GROUNDING
    assert body["usageMetadata"]["thoughtsTokenCount"] == 200
    parsed = sdk_parse(body)
    sdk_parts = parsed.candidates[0].content.parts  # type: ignore[index, union-attr]
    assert [p.thought for p in sdk_parts] == [True, True, None, None]  # type: ignore[union-attr]
    assert sdk_parts[3].thought_signature == b"sig-image"  # type: ignore[index]
    assert parsed.text == "Here is the chart."  # the SDK's .text leaves thoughts out
    grounding = parsed.candidates[0].grounding_metadata  # type: ignore[index]
    assert grounding is not None and grounding.web_search_queries == ["weather Paris"]


def test_stream_puts_thoughts_and_text_first(png: bytes, make_job: Callable[[SlotResult], Job]) -> None:
    chunks = render_stream_chunks(make_job(thinking_slot(png)), {"file_0": png, "file_1": png}, PRO, response_id="r")
    assert len(chunks) == 2
    first = chunks[0]["candidates"][0]["content"]["parts"]
    assert [p.get("thought", False) for p in first] == [True, True, False]
    last = chunks[1]["candidates"][0]
    assert last["content"]["parts"][0]["thoughtSignature"] and last["groundingMetadata"] == GROUNDING
