"""One retry budget per job: a provider's own retries and its deployment's retries draw on the same count."""

from __future__ import annotations

import random

import httpx
import pytest

from imagegate.core.capabilities import NANO_BANANA, ModelSpec
from imagegate.core.jobs import FinishReason, Generation, JobSpec, Role, Turn
from imagegate.core.retry import RetryPolicy, retry_budget, take_retry
from imagegate.providers.gemini import GeminiOptions, GeminiProvider
from imagegate.routing.router import Deployment, Router, RoutingPolicy

SPEC = JobSpec(model="gemini-2.5-flash-image", turns=(Turn(Role.USER, ("a banana",)),))
UNAVAILABLE = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}


class Served:
    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, spec: JobSpec, model: ModelSpec, upstream_model: str) -> Generation:
        self.calls += 1
        return Generation(images=(), text="fine", finish_reason=FinishReason.STOP)

    async def aclose(self) -> None:
        pass


async def no_sleep(seconds: float) -> None:
    pass


async def test_provider_and_deployment_retries_share_one_budget_then_fail_over() -> None:
    requests: list[httpx.Request] = []

    def overloaded(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(503, json=UNAVAILABLE)

    async with httpx.AsyncClient(transport=httpx.MockTransport(overloaded)) as client:
        gemini = GeminiProvider(
            GeminiOptions(api_key="k", base_url="https://a.test", max_retries=2), client=client, sleep=no_sleep
        )
        backup = Served()
        router = Router(
            [
                Deployment("a", "gemini", gemini, priority=1, retries=5),
                Deployment("b", "fake", backup, priority=2),  # type: ignore[arg-type]
            ],
            RoutingPolicy(retry_base_delay_s=0.01, retry_budget=3),
            sleep=no_sleep,
            rand=random.Random(1).random,
        )
        routed = await router.generate(SPEC, NANO_BANANA)
    # without one budget: (1 + 2 provider retries) x (1 + 5 deployment retries) = 18 calls before failing over
    assert routed.deployment == "b" and backup.calls == 1
    assert len(requests) == 1 + 3


def test_a_policy_retries_only_while_the_budget_lasts() -> None:
    policy = RetryPolicy(max_retries=5, base_delay_s=1, jitter=0)
    with retry_budget(2) as budget:
        assert [policy.delay_s(n) for n in (1, 2, 3)] == [1.0, 2.0, None]
        assert budget.left == 0 and not take_retry()
    assert take_retry()  # no budget open: a policy alone decides
    assert policy.delay_s(3) == 4.0


def test_a_negative_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"), retry_budget(-1):
        pass
