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
    (body(top_p=0.5), "top_p", "not supported"),
    (body(logprobs=True), "logprobs", "not supported"),
]


@pytest.mark.parametrize(("fields", "param", "words"), REFUSED)
def test_refused_fields_name_their_param(fields: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_chat_request(fields)
    assert refused.value.field == param
    assert words in refused.value.message


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
        )
    )
    assert parsed.modalities == ("image",)
    assert (parsed.aspect_ratio, parsed.image_size, parsed.n, parsed.stream) == ("16:9", "512", 3, True)
    assert (parsed.temperature, parsed.seed, parsed.max_tokens) == (0.5, 7, 4000)
    assert [m.role for m in parsed.messages] == ["developer", "user", "assistant", "user"]
    assert parsed.image_urls == (
        ImageUrl("data:x", "messages[1].content[1].image_url"),
        ImageUrl("https://h/i.png", "messages[2].images[0].image_url.url"),
    )
