"""The contract checker itself: it reads the seed's YAML, and it fails the bodies it should fail."""

from __future__ import annotations

import uuid

import pytest
from jsonschema import ValidationError

from .seed import Seed, extract_openapi_yaml

GOOD = {
    "code": 0,
    "data": {
        "task_id": "0190f3a2-7c1d-7b2e-9a4f-3c5d6e7f8a9b",
        "order_id": str(uuid.uuid4()),
        "status": "processing",
        "price": 0.039,
    },
    "msg": "success",
    "request_id": "0190f3a2-7c1d-7b2e-9a4f-000000000001",
}


def test_the_yaml_is_cut_from_between_the_fences() -> None:
    text = "# title\n\n````yaml /openapi/x.yaml post /x\nopenapi: 3.0.3\npaths: {}\n\n````\ntrailing"
    assert extract_openapi_yaml(text) == "openapi: 3.0.3\npaths: {}\n"


def test_the_seed_is_the_create_operation_of_openapi_3_0(seed: Seed) -> None:
    assert seed.spec["openapi"] == "3.0.3"
    assert seed.operation["operationId"] == "gemini-2-5-flash-image"
    assert seed.spec["servers"][0]["url"].endswith("/api/v1")


def test_a_good_body_passes(seed: Seed) -> None:
    seed.validate_response(200, GOOD)


@pytest.mark.parametrize(
    "broken",
    [
        {**GOOD, "extra": 1},  # undocumented field
        {key: value for key, value in GOOD.items() if key != "request_id"},  # documented field missing
        {**GOOD, "data": {**GOOD["data"], "status": "queued"}},  # not in the status enum
        {**GOOD, "data": {**GOOD["data"], "price": "0.039"}},  # a string, the seed says number
        {**GOOD, "data": {**GOOD["data"], "order_id": "ord_123"}},  # neither a UUID nor an imagegate id
        {**GOOD, "request_id": "trace-42"},  # likewise
        {**GOOD, "code": "0"},
    ],
)
def test_a_broken_body_fails(seed: Seed, broken: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        seed.validate_response(200, broken)


def test_an_undocumented_status_fails(seed: Seed) -> None:
    with pytest.raises(AssertionError, match="documents no 404"):
        seed.validate_response(404, {"code": 404, "msg": "x", "request_id": GOOD["request_id"]})
