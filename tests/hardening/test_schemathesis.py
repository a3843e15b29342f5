"""Schemathesis over the server's own ``/openapi.json``: generated requests for every operation (request bodies
included, as the routes declare them) never get a 5xx, and every answer matches what the schema documents.

A real ``imagegate serve`` on loopback (emulator, SQLite), a bounded number of examples per operation so the run
stays well under two minutes in CI, and no shrinking time limit: each example is one HTTP request.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from e2e.server import Server, start_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Failures asked for by generated prompts must not pause the one deployment for the rest of the run.
    running = start_server(
        tmp_path_factory.mktemp("imagegate-schemathesis"), env={"IMAGEGATE_ROUTING__BREAKER_FAILURES": "1000000"}
    )
    yield running
    running.stop()


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def test_no_operation_answers_5xx_or_off_schema(served: Server) -> None:
    # Driven through Hypothesis directly: Schemathesis' pytest plugin does not load under this pytest.
    api = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    headers = {"Authorization": f"Bearer {served.key}"}
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, timeout=60, checks=CHECKS)

        call()
