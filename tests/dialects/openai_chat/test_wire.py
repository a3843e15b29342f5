"""Every Chat Completions field: what is accepted, what is refused, and the param the refusal names."""

from __future__ import annotations

from typing import Any

import pytest

from imagegate.dialects.openai_chat.wire import ImageUrl, parse_chat_request
from imagegate.errors import InvalidRequest, UnknownField

USER = [{"role": "user", "content": "a cat"}]


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "gemini-2.5-flash-image", "messages": USER, **fields}


REFUSED: list[tuple[dict[str, Any], str, str]] = [
    ({"messages": USER}, "model", "Missing required parameter: 'model'."),
    ({"model": 3, "messages": USER}, "model", "expected a string"),
    ({"model": "m"}, "messages", "Missing required parameter: 'messages'."),
    (body(messages=[]), "messages", "empty array"),
    (body(messages="hi"), "messages", "expected an array"),
    (body(messages=[{"role": "robot", "content": "x"}]), "messages[0].role", "Supported values are"),
    (body(messages=[{"content": "x"}]), "messages[0].role", "Missing required parameter"),
    (body(messages=[{"role": "tool", "content": "x"}]), "messages[0]", "tool"),
    (body(messages=[{"role": "system", "content": "only a system prompt"}]), "messages", "no user message"),
    (body(messages=[{"role": "user", "content": [{"type": "input_audio"}]}]), "messages[0].content[0].type", ""),
    (body(messages=[{"role": "user", "content": [{"type": "video"}]}]), "messages[0].content[0].type", "'video'"),
    (body(messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}]), "messages[0].content[0].text", ""),
    (
        body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]),
        "messages[0].content[0].image_url.url",
        "http(s) URL",
    ),
    (
        body(
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,", "detail": "x"}}]}
            ]
        ),
        "messages[0].content[0].image_url.detail",
        "",
    ),
    (
        body(messages=[{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}, *USER]),
        "messages[0].content[0]",
        "text only",
    ),
    (body(modalities=["audio"]), "modalities", "'audio'"),
    (body(modalities=[]), "modalities", "empty"),
    (body(modalities="image"), "modalities", ""),
    (body(image_config={"aspect_ratio": "7:3"}), "image_config.aspect_ratio", "Supported values"),
    (body(image_config={"image_size": "8K"}), "image_config.image_size", "'8K'"),
    (body(image_config={"image_size": 1}), "image_config.image_size", ""),
    (body(image_config="16:9"), "image_config", ""),
    (body(n=0), "n", "below minimum"),
    (body(n=11), "n", "above maximum"),
    (body(n="2"), "n", "expected an integer"),
    (body(temperature=2.5), "temperature", "above maximum"),
    (body(temperature=-1), "temperature", "below minimum"),
    (body(temperature="hot"), "temperature", ""),
    (body(seed=1.5), "seed", ""),
    (body(stream="yes"), "stream", ""),
    (body(stream_options={"include_usage": True}), "stream_options", "only allowed when 'stream'"),
    (body(stream=True, stream_options={"include_usage": "y"}), "stream_options.include_usage", ""),
    (body(max_tokens=0), "max_tokens", "below minimum"),
    (body(tools=[{"type": "function"}]), "tools", "not supported"),
    (body(response_format={"type": "json_object"}), "response_format", "not supported"),
    (body(logprobs=True), "logprobs", "not supported"),
    (body(top_p=1.5), "top_p", "above maximum"),
    (body(top_p="x"), "top_p", "expected a decimal"),
    (body(presence_penalty=-2.5), "presence_penalty", "below minimum"),
    (body(frequency_penalty=3), "frequency_penalty", "above maximum"),
    (body(stop=["a", "b", "c", "d", "e"]), "stop", "maximum length 4"),
    (body(stop=[1]), "stop", "a string or an array of strings"),
    (body(user=7), "user", "expected a string"),
    (body(safety_identifier="x" * 257), "safety_identifier", "maximum length 256"),
    (body(metadata={"k": 1}), "metadata", "an object of strings"),
    (body(metadata={f"k{i}": "v" for i in range(17)}), "metadata", "at most 16 keys"),
    (body(store="yes"), "store", "a boolean"),
    (body(provider=["google"]), "provider", "an object"),
    (body(transforms="middle-out"), "transforms", "an array"),
    (body(service_tier="gold"), "service_tier", "Supported values"),
    (body(messages=[{"role": "user", "content": "x", "name": 3}]), "messages[0].name", "a string"),
    (
        body(
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,", "detail": []}}]}
            ]
        ),
        "messages[0].content[0].image_url.detail",
        "Supported values",
    ),
]


@pytest.mark.parametrize(("fields", "param", "words"), REFUSED)
def test_refused_fields_name_their_param(fields: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_chat_request(fields)
    assert refused.value.field == param
    assert words in refused.value.message


def test_unknown_message_keys_are_unrecognized() -> None:
    with pytest.raises(UnknownField) as refused:
        parse_chat_request(body(messages=[{"role": "user", "content": "x", "images": []}]))
    assert refused.value.field == "messages[0].images"
    with pytest.raises(UnknownField) as refused:
        parse_chat_request(body(messages=[{"role": "system", "content": "x", "reasoning": "r"}, *USER]))
    assert refused.value.field == "messages[0].reasoning"


def test_an_answer_sent_back_as_history_parses() -> None:
    """An assistant message exactly as OpenRouter returns it, echoed back with a follow-up edit."""
    answer = {
        "role": "assistant",
        "content": "Here it is.",
        "refusal": None,
        "reasoning": "Drawing a cat.",
        "reasoning_details": [{"type": "reasoning.text", "text": "Drawing a cat."}],
        "images": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}, "index": 0}],
        "annotations": [],
        "name": "artist",
    }
    parsed = parse_chat_request(body(messages=[*USER, answer, {"role": "user", "content": "now blue"}]))
    assert [part for part in parsed.messages[1].parts if isinstance(part, str)] == ["Here it is."]
    assert len(parsed.image_urls) == 1


def test_sampling_knobs_become_google_options() -> None:
    parsed = parse_chat_request(body(top_p=0.9, presence_penalty=0.5, frequency_penalty=-1, stop="END"))
    google = parsed.google
    assert (google.top_p, google.presence_penalty, google.frequency_penalty) == (0.9, 0.5, -1.0)
    assert google.stop_sequences == ("END",)
    assert not parse_chat_request(body()).google


@pytest.mark.parametrize(
    ("details", "resolution"),
    [(["auto"], None), (["low"], "MEDIA_RESOLUTION_LOW"), (["low", "high", None], "MEDIA_RESOLUTION_HIGH")],
)
def test_image_detail_is_the_finest_media_resolution(details: list[str | None], resolution: str | None) -> None:
    parts: list[dict[str, Any]] = [{"type": "text", "text": "blend"}]
    for detail in details:
        image: dict[str, Any] = {"url": "data:image/png;base64,AA=="} | ({"detail": detail} if detail else {})
        parts.append({"type": "image_url", "image_url": image})
    assert parse_chat_request(body(messages=[{"role": "user", "content": parts}])).google.media_resolution == resolution


def test_end_user_prefers_safety_identifier() -> None:
    assert parse_chat_request(body(user="u1")).end_user == "u1"
    assert parse_chat_request(body(user="u1", safety_identifier="s1")).end_user == "s1"
    assert parse_chat_request(body(user="u1", safety_identifier="")).end_user == "u1"


def test_include_usage_is_read() -> None:
    assert parse_chat_request(body(stream=True, stream_options={"include_usage": True})).include_usage
    assert not parse_chat_request(body(stream=True)).include_usage


@pytest.mark.parametrize("name", ["colour", "size", "response_modalities"])
def test_unknown_fields_are_unrecognized_arguments(name: str) -> None:
    with pytest.raises(UnknownField) as refused:
        parse_chat_request(body(**{name: 1}))
    assert refused.value.message == f"Unrecognized request argument supplied: {name}"
    with pytest.raises(UnknownField):
        parse_chat_request(body(image_config={"quality": "hd"}))


def test_accepted_fields_all_land_on_the_request() -> None:
    parsed = parse_chat_request(
        body(
            messages=[
                {"role": "developer", "content": "be brief"},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": "data:x"}],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "images": [{"type": "image_url", "image_url": {"url": "https://h/i.png"}}],
                },
                {"role": "user", "content": "b"},
            ],
            modalities=["Image"],
            image_config={"aspect_ratio": "16:9", "image_size": "0.5K"},
            n=3,
            stream=True,
            stream_options={"include_usage": True},
            temperature=0.5,
            seed=7,
            max_completion_tokens=4000,
            user="u1",
            provider={"order": ["google"]},
            metadata={"run": "7"},
            store=False,
            transforms=[],
            usage={"include": True},
            service_tier="auto",
        )
    )
    assert (parsed.end_user, parsed.include_usage) == ("u1", True)
    assert parsed.modalities == ("image",)
    assert (parsed.aspect_ratio, parsed.image_size, parsed.n, parsed.stream) == ("16:9", "512", 3, True)
    assert (parsed.temperature, parsed.seed, parsed.max_tokens) == (0.5, 7, 4000)
    assert [m.role for m in parsed.messages] == ["developer", "user", "assistant", "user"]
    assert parsed.image_urls == (
        ImageUrl("data:x", "messages[1].content[1].image_url"),
        ImageUrl("https://h/i.png", "messages[2].images[0].image_url.url"),
    )
