"""The linkmodel contract, read at test time from the seed itself: the OpenAPI 3.0.3 YAML between the ````yaml fence
and the closing ```` of ``shared/seeds/linkmodel-openapi.txt``, validated with ``openapi-schema-validator``.

Every response body is checked twice: against the seed's schema as written (the contract), and against a strict
copy in which every documented property is required and no other is allowed (so a missing or stray field fails
too; the seed's schemas set neither ``required`` nor ``additionalProperties``). ``GET /api/v1/tasks/{task_id}``
has no schema in the seed; its answer is checked against the create answer's envelope, with ``data`` extended by
the fields this dialect documents (``model``, ``output_images``, ``msg``).

``format: uuid`` is checked strictly: a task made here has a UUID as its job id, and request ids are UUIDs unless
the caller sent an ``x-request-id`` of its own. Only ``strict_uuid=False`` (for polling a job another dialect
made, whose id is an imagegate ``job_…`` id) lets an imagegate id pass as well.
The seed is found beside the checkout (any parent's ``shared/seeds/``) or at ``$IMAGEGATE_LINKMODEL_SEED``.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import uuid
from pathlib import Path
from typing import Any

import yaml
from jsonschema import FormatChecker
from openapi_schema_validator import OAS30Validator, oas30_format_checker

SEED_ENV = "IMAGEGATE_LINKMODEL_SEED"
SEED_PATH = Path("shared/seeds/linkmodel-openapi.txt")
CREATE_PATH = "/image-generation"

_IMAGEGATE_ID = re.compile(r"^[a-z]+_[0-9A-Za-z]{24}$")


def find_seed() -> Path | None:
    if env := os.environ.get(SEED_ENV):
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        if (parent / SEED_PATH).is_file():
            return parent / SEED_PATH
    return None


def extract_openapi_yaml(text: str) -> str:
    """The text between the line opening with ````yaml and the next line opening with ````."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("````yaml"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("````"))
    return "\n".join(lines[start + 1 : end])


@functools.cache
def load_spec(path: Path) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(extract_openapi_yaml(path.read_text(encoding="utf-8")))
    assert spec["openapi"].startswith("3.0"), "the seed is expected to be OpenAPI 3.0.x"
    return spec


def _format_checker(*, strict_uuid: bool) -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checkers = dict(oas30_format_checker.checkers)
    check = _uuid if strict_uuid else _uuid_or_imagegate_id
    checker.checkers["uuid"] = (check, ValueError)  # a ValueError fails the format check
    return checker


def _uuid(value: object) -> bool:
    if isinstance(value, str):
        uuid.UUID(value)
    return True


def _uuid_or_imagegate_id(value: object) -> bool:
    if isinstance(value, str) and not _IMAGEGATE_ID.match(value):
        uuid.UUID(value)
    return True


FORMAT_CHECKER = _format_checker(strict_uuid=True)
LENIENT_FORMAT_CHECKER = _format_checker(strict_uuid=False)


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every documented property required and nothing undocumented allowed, at every level."""
    out = copy.deepcopy(schema)
    if out.get("type") == "object":
        properties = out.get("properties", {})
        out["properties"] = {name: strict(sub) for name, sub in properties.items()}
        out["required"] = list(properties)
        out["additionalProperties"] = False
    if out.get("type") == "array" and "items" in out:
        out["items"] = strict(out["items"])
    return out


class Seed:
    """The seed's schemas for the create operation, and validators over them."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.operation = spec["paths"][CREATE_PATH]["post"]

    @property
    def request_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = self.operation["requestBody"]["content"]["application/json"]["schema"]
        return schema

    def response_schema(self, status: int) -> dict[str, Any]:
        schema: dict[str, Any] = self.operation["responses"][str(status)]["content"]["application/json"]["schema"]
        return schema

    @property
    def documented_statuses(self) -> set[int]:
        return {int(code) for code in self.operation["responses"]}

    def request_errors(self, body: object) -> list[str]:
        validator = OAS30Validator(self.request_schema, format_checker=FORMAT_CHECKER)
        return [error.message for error in validator.iter_errors(body)]

    def validate_request(self, body: object) -> None:
        OAS30Validator(self.request_schema, format_checker=FORMAT_CHECKER).validate(body)

    def validate_response(self, status: int, body: object) -> None:
        """``body`` under the seed's schema for ``status``, as written and strictly."""
        assert status in self.documented_statuses, f"the seed documents no {status} answer"
        schema = self.response_schema(status)
        OAS30Validator(schema, format_checker=FORMAT_CHECKER).validate(body)
        OAS30Validator(strict(schema), format_checker=FORMAT_CHECKER).validate(body)

    def poll_schema(self) -> dict[str, Any]:
        """The create answer's envelope, strict, with ``data`` extended by the polled task's documented fields."""
        schema = strict(self.response_schema(200))
        data = schema["properties"]["data"]
        data["properties"].update(
            {
                "model": {"type": "string"},
                "output_images": {"type": "array", "items": {"type": "string", "format": "uri"}},
                "msg": {"type": "string"},
            }
        )
        data["required"] = list(data["properties"])
        return schema

    def validate_poll(self, body: object, *, strict_uuid: bool = True) -> None:
        checker = FORMAT_CHECKER if strict_uuid else LENIENT_FORMAT_CHECKER
        OAS30Validator(self.response_schema(200), format_checker=checker).validate(body)
        OAS30Validator(self.poll_schema(), format_checker=checker).validate(body)
