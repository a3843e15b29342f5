"""Errors caused by the request never count against a deployment's health (issue 15, defect 2).

One caller's unencodable text made the provider fail five times, the breaker opened, and another caller's clean
request got 503 "every deployment is failing and paused". Here the same happens to a router with a breaker
threshold of two: the bad requests are refused as the caller's fault, the breaker stays closed, and the clean
request is served.
"""

from __future__ import annotations

import pytest

from imagegate.core.capabilities import NANO_BANANA, ModelSpec
from imagegate.core.images import ImageOutput
from imagegate.core.jobs import Generation, JobSpec, Role, Turn
from imagegate.errors import InvalidImage, InvalidRequest, UpstreamUnavailable
from imagegate.routing.breaker import BreakerState
from imagegate.routing.router import Deployment, Router, RoutingPolicy

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)
CLEAN = JobSpec(model=NANO_BANANA.id, turns=(Turn(Role.USER, ("a cat",)),))
DIRTY = JobSpec(model=NANO_BANANA.id, turns=(Turn(Role.USER, ("x\ud800y",)),))


class EncodingUpstream:
    """Encodes the prompt as UTF-8 the way every HTTP provider does; a lone surrogate raises there."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.calls = 0

    async def generate(self, spec: JobSpec, model: ModelSpec, upstream_model: str) -> Generation:
        self.calls += 1
        spec.prompt.encode("utf-8")
        if self.failure is not None and spec is not CLEAN:
            raise self.failure
        return Generation(images=(ImageOutput(PNG, "image/png", 1, 1),))

    async def aclose(self) -> None:
        pass


def _router(upstream: EncodingUpstream) -> Router:
    deployment = Deployment("only", "fake", upstream)  # type: ignore[arg-type]
    return Router([deployment], RoutingPolicy(breaker_failures=2, retry_base_delay_s=0))


async def test_unencodable_text_is_the_callers_fault_and_leaves_the_breaker_closed() -> None:
    upstream = EncodingUpstream()
    router = _router(upstream)
    for _ in range(5):
        with pytest.raises(InvalidRequest, match="cannot be encoded"):
            await router.generate(DIRTY, NANO_BANANA)
    assert router.health("only").breaker.state is BreakerState.CLOSED
    assert (await router.generate(CLEAN, NANO_BANANA)).deployment == "only"


@pytest.mark.parametrize("failure", [InvalidRequest("upstream 400"), InvalidImage("cannot decode")])
async def test_upstream_400s_do_not_open_the_breaker(failure: Exception) -> None:
    upstream = EncodingUpstream(failure)
    router = _router(upstream)
    spec = JobSpec(model=NANO_BANANA.id, turns=(Turn(Role.USER, ("bad",)),))
    for _ in range(5):
        with pytest.raises(InvalidRequest):
            await router.generate(spec, NANO_BANANA)
    assert router.health("only").breaker.state is BreakerState.CLOSED
    assert (await router.generate(CLEAN, NANO_BANANA)).deployment == "only"


async def test_real_upstream_failures_still_open_it() -> None:
    upstream = EncodingUpstream(UpstreamUnavailable("503"))
    router = _router(upstream)
    spec = JobSpec(model=NANO_BANANA.id, turns=(Turn(Role.USER, ("fine",)),))
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await router.generate(spec, NANO_BANANA)
    assert router.health("only").breaker.state is BreakerState.OPEN
