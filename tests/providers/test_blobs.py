"""Lifting image base64 out of an answer before parsing gives exactly what a full parse would."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagegate.core.images import decode_base64
from imagegate.providers import blobs as blobs_module
from imagegate.providers.blobs import Blobs, loads_lifting

BIG = os.urandom(40_000)
BIG_B64 = base64.b64encode(BIG).decode()


def resolved(doc: Any, blobs: Blobs) -> Any:
    """``doc`` with every ``data`` string decoded, the way a provider reads images."""
    if isinstance(doc, dict):
        return {
            k: (blobs.decode(v) if k == "data" and isinstance(v, str) else resolved(v, blobs)) for k, v in doc.items()
        }
    if isinstance(doc, list):
        return [resolved(v, blobs) for v in doc]
    return doc


def full_parse(content: bytes) -> Any:
    return resolved(orjson.loads(content), Blobs(b""))


def answer(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"candidates": [{"content": {"parts": list(parts)}, "finishReason": "STOP"}], "modelVersion": "m"}


CASES = {
    "one image": json.dumps(answer({"inlineData": {"mimeType": "image/png", "data": BIG_B64}})),
    "two images and text": json.dumps(
        answer(
            {"text": "here"},
            {"inlineData": {"data": BIG_B64}},
            {"inlineData": {"data": base64.b64encode(BIG[::-1]).decode()}},
        )
    ),
    "pretty printed": json.dumps(answer({"inlineData": {"data": BIG_B64}}), indent=2),
    "spaces around the colon": json.dumps(answer({"inlineData": {"data": BIG_B64}})).replace(
        '"data": ', '"data"  :\n "'[:-1]
    ),
    "a text that quotes a data key": json.dumps(answer({"text": '{"data": "' + "A" * 20_000 + '"}'})),
    "a key ending in an escaped quote": json.dumps({'x"data': BIG_B64, "y": 1}),
    "data as a value, not a key": json.dumps({"k": "data", "data": BIG_B64}),
    "escaped slashes in the base64": json.dumps(answer({"inlineData": {"data": BIG_B64}})).replace("/", "\\/"),
    "URL-safe base64": json.dumps(answer({"inlineData": {"data": base64.urlsafe_b64encode(BIG).decode()}})),
    "a short value": json.dumps(answer({"inlineData": {"data": base64.b64encode(b"tiny").decode()}})),
}


@pytest.mark.parametrize("name", CASES)
def test_the_same_document_as_a_full_parse(name: str) -> None:
    content = CASES[name].encode()
    doc, blobs = loads_lifting(content)
    assert resolved(doc, blobs) == full_parse(content)


def test_a_big_image_is_lifted_not_parsed() -> None:
    content = CASES["one image"].encode()
    doc, blobs = loads_lifting(content)
    marker = doc["candidates"][0]["content"]["parts"][0]["inlineData"]["data"]
    assert marker != BIG_B64 and len(marker) < 40
    assert blobs.decode(marker) == BIG


def test_a_canonical_lifted_value_keeps_its_text_for_passing_on() -> None:
    doc, blobs = loads_lifting(CASES["one image"].encode())
    data, text = blobs.decode_keeping(doc["candidates"][0]["content"]["parts"][0]["inlineData"]["data"])
    assert data == BIG and text is not None and bytes(text) == BIG_B64.encode()


def test_a_text_whose_spare_bits_are_set_keeps_no_text() -> None:
    image = BIG  # 40,000 bytes: "==" padding, the last character's four low bits spare
    canonical = base64.b64encode(image).decode()
    odd = canonical[:-3] + chr(ord(canonical[-3]) + 1) + "=="
    for text, kept in ((canonical, True), (odd, False)):
        doc, blobs = loads_lifting(json.dumps({"data": text}).encode())
        data, view = blobs.decode_keeping(doc["data"])
        assert data == image and (view is not None) is kept


@pytest.mark.parametrize(
    ("name", "image"), [("URL-safe base64", BIG), ("a short value", b"tiny"), ("escaped slashes in the base64", BIG)]
)
def test_any_other_value_keeps_no_text(name: str, image: bytes) -> None:
    doc, blobs = loads_lifting(CASES[name].encode())
    [part] = [p for p in doc["candidates"][0]["content"]["parts"] if "inlineData" in p]
    assert blobs.decode_keeping(part["inlineData"]["data"]) == (image, None)


def test_a_value_with_escapes_stays_in_the_text() -> None:
    doc, _ = loads_lifting(CASES["escaped slashes in the base64"].encode())
    assert doc["candidates"][0]["content"]["parts"][0]["inlineData"]["data"] == BIG_B64


def test_a_lifted_value_that_is_no_base64_is_an_error() -> None:
    content = json.dumps({"data": "!" * blobs_module.MIN_LIFTED_BYTES}).encode()
    doc, blobs = loads_lifting(content)
    with pytest.raises(ValueError, match="base64"):
        blobs.decode(doc["data"])


def test_broken_json_is_still_an_error() -> None:
    content = CASES["one image"].encode()[:-3]
    with pytest.raises(orjson.JSONDecodeError):
        loads_lifting(content)
    with pytest.raises(orjson.JSONDecodeError):
        loads_lifting(b'{"data": "' + BIG_B64.encode())  # the value never ends


def test_a_marker_an_upstream_might_send_is_only_text() -> None:
    content = json.dumps({"data": "\x00" + "0" * 16 + ":0", "other": {"data": BIG_B64}}).encode()
    doc, blobs = loads_lifting(content)
    with pytest.raises(ValueError, match="base64"):
        blobs.decode(doc["data"])  # decoded as the (invalid) base64 it is, not as someone else's span
    assert blobs.decode(doc["other"]["data"]) == BIG


texts = st.text(alphabet=st.sampled_from(list('ab"\\:{}, data\n')), max_size=40)


def unlifted(doc: Any, blobs: Blobs) -> Any:
    """``doc`` with every marker replaced by the text it stands for."""
    if isinstance(doc, dict):
        return {k: unlifted(v, blobs) for k, v in doc.items()}
    if isinstance(doc, list):
        return [unlifted(v, blobs) for v in doc]
    if isinstance(doc, str) and doc in blobs._spans:
        start, end = blobs._spans[doc]
        return bytes(blobs._content[start:end]).decode()
    return doc


@given(prefix=texts, suffix=texts)
def test_any_text_around_a_data_key_parses_the_same(prefix: str, suffix: str) -> None:
    saved, blobs_module.MIN_LIFTED_BYTES = blobs_module.MIN_LIFTED_BYTES, 4  # lift nearly everything
    try:
        document = {"text": prefix + '"data": "' + suffix, "data": BIG_B64[:64], "n": [prefix, {"data": suffix}]}
        for content in (json.dumps(document).encode(), json.dumps(document, indent=1).encode()):
            doc, blobs = loads_lifting(content)
            assert unlifted(doc, blobs) == orjson.loads(content)
            assert blobs.decode(doc["data"]) == decode_base64(BIG_B64[:64])
    finally:
        blobs_module.MIN_LIFTED_BYTES = saved
