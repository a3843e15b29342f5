"""The router: capability filter, priority and weights, retries that honour Retry-After, failover, breakers,
concurrency limits, deadlines, image-specific health and the stats it publishes."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from imagegate.core.capabilities import NANO_BANANA, ModelSpec
from imagegate.core.images import ImageInput, ImageOutput
from imagegate.core.jobs import FinishReason, Generation, JobSpec, Role, Turn
from imagegate.core.timing import mark_first_byte
from imagegate.errors import (
    InvalidRequest,
    NoDeploymentAvailable,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from imagegate.metrics import Metrics
from imagegate.routing.router import Deployment, Router, RoutingPolicy

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)
IMAGE = Generation(images=(ImageOutput(PNG, "image/png", 1, 1),))
SPEC = JobSpec(model=NANO_BANANA.id, turns=(Turn(Role.USER, ("a cat",)),))

Behaviour = Generation | Exception | Callable[[], Any]


class Upstream:
    """A scripted provider: pops one behaviour per call, then repeats ``default``."""

    def __init__(self, *script: Behaviour, default: Behaviour = IMAGE, delay_s: float = 0) -> None:
        self.script = list(script)
        self.default = default
        self.delay_s = delay_s
        self.calls = 0
        self.running = 0
        self.most_running = 0

    async def generate(self, spec: JobSpec, model: ModelSpec, upstream_model: str) -> Generation:
        self.calls += 1
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            item = self.script.pop(0) if self.script else self.default
            if callable(item) and not isinstance(item, Exception):
                item = item()
            if isinstance(item, Exception):
                raise item
            assert isinstance(item, Generation)
            return item
        finally:
            self.running -= 1

    async def aclose(self) -> None:
        pass


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def router(*deployments: Deployment, sleep: Sleeps | None = None, clock: Clock | None = None, **policy: Any) -> Router:
    return Router(
        deployments,
        RoutingPolicy(**{"retry_base_delay_s": 0.5, **policy}),
        sleep=sleep or Sleeps(),
        clock=clock or Clock(),
        rand=random.Random(1).random,
    )


def dep(name: str, upstream: Upstream, **kwargs: Any) -> Deployment:
    return Deployment(name, "fake", upstream, **kwargs)  # type: ignore[arg-type]


async def test_lower_priority_number_serves_first() -> None:
    a, b = Upstream(), Upstream()
    r = router(dep("backup", b, priority=2), dep("main", a, priority=1))
    routed = await r.generate(SPEC, NANO_BANANA)
    assert routed.deployment == "main" and (a.calls, b.calls) == (1, 0)


async def test_weights_share_traffic_within_a_priority() -> None:
    a, b = Upstream(), Upstream()
    r = router(dep("a", a, weight=3), dep("b", b, weight=1))
    served = Counter([(await r.generate(SPEC, NANO_BANANA)).deployment for _ in range(400)])
    assert 250 < served["a"] < 350 and served["a"] + served["b"] == 400


async def test_a_retryable_failure_is_retried_after_the_upstreams_delay_then_fails_over() -> None:
    busy = UpstreamRateLimited("busy", retry_after_s=3)
    a, b = Upstream(busy, busy), Upstream()
    sleeps = Sleeps()
    r = router(dep("a", a, priority=1, retries=1), dep("b", b, priority=2), sleep=sleeps)
    routed = await r.generate(SPEC, NANO_BANANA)
    assert routed.deployment == "b" and a.calls == 2 and sleeps.waits == [3]


async def test_backoff_grows_when_the_upstream_names_no_delay() -> None:
    a = Upstream(UpstreamUnavailable("503"), UpstreamUnavailable("503"))
    sleeps = Sleeps()
    r = router(dep("a", a, retries=2), sleep=sleeps)
    assert (await r.generate(SPEC, NANO_BANANA)).deployment == "a"
    assert len(sleeps.waits) == 2 and 0.5 <= sleeps.waits[0] <= 0.6 and 1.0 <= sleeps.waits[1] <= 1.2


async def test_a_longer_wait_than_we_accept_fails_over_at_once() -> None:
    a, b = Upstream(default=UpstreamRateLimited("quota", retry_after_s=3600)), Upstream()
    sleeps = Sleeps()
    r = router(dep("a", a, priority=1, retries=3), dep("b", b, priority=2), sleep=sleeps)
    assert (await r.generate(SPEC, NANO_BANANA)).deployment == "b" and a.calls == 1 and sleeps.waits == []


async def test_a_rejected_key_is_not_retried_but_failed_over() -> None:
    a, b = Upstream(default=UpstreamRejected("bad key")), Upstream()
    r = router(dep("a", a, priority=1, retries=3), dep("b", b, priority=2))
    assert (await r.generate(SPEC, NANO_BANANA)).deployment == "b" and a.calls == 1


async def test_the_callers_mistake_is_not_tried_elsewhere() -> None:
    a, b = Upstream(default=InvalidRequest("bad prompt")), Upstream()
    r = router(dep("a", a, priority=1), dep("b", b, priority=2))
    with pytest.raises(InvalidRequest):
        await r.generate(SPEC, NANO_BANANA)
    assert b.calls == 0 and r.snapshot()[0]["stats"]["5m"]["rejected"] == 1


async def test_every_deployment_failing_raises_the_last_error() -> None:
    a, b = Upstream(default=UpstreamUnavailable("a down")), Upstream(default=UpstreamTimeout("b slow"))
    r = router(dep("a", a, priority=1, retries=0), dep("b", b, priority=2, retries=0))
    with pytest.raises(UpstreamTimeout, match="b slow"):
        await r.generate(SPEC, NANO_BANANA)


async def test_capability_filter_skips_upstreams_that_cannot_take_the_images() -> None:
    images = tuple(ImageInput(PNG, "image/png") for _ in range(2))
    edit = JobSpec(model=NANO_BANANA.id, turns=(Turn(Role.USER, ("merge", *images)),))
    text_only, full = Upstream(), Upstream()
    r = router(dep("text-only", text_only, priority=1, max_input_images=0), dep("full", full, priority=2))
    assert (await r.generate(edit, NANO_BANANA)).deployment == "full" and text_only.calls == 0
    assert (await r.generate(SPEC, NANO_BANANA)).deployment == "text-only"
    only = router(dep("one", Upstream(), max_input_images=1))
    with pytest.raises(InvalidRequest, match="at most 1 input image"):
        await only.generate(edit, NANO_BANANA)


async def test_no_deployment_for_the_model() -> None:
    r = router(dep("other", Upstream(), models={"imagen-4": "imagen-4"}))
    with pytest.raises(UpstreamUnavailable, match="No deployment serves"):
        await r.generate(SPEC, NANO_BANANA)


async def test_breaker_cycle_fails_fast_when_all_are_open_then_probes_and_recovers() -> None:
    clock = Clock()
    flaky = Upstream(default=UpstreamUnavailable("down"))
    r = router(dep("only", flaky, retries=0), clock=clock, breaker_failures=3, breaker_cooldown_s=30)
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable, match="down"):
            await r.generate(SPEC, NANO_BANANA)
    assert r.snapshot()[0]["state"] == "open"
    with pytest.raises(NoDeploymentAvailable) as caught:
        await r.generate(SPEC, NANO_BANANA)
    assert flaky.calls == 3 and caught.value.retry_after_s == 30  # failed fast: the upstream was not called
    clock.now += 31
    assert r.snapshot()[0]["state"] == "half_open"
    flaky.default = IMAGE  # it came back
    assert (await r.generate(SPEC, NANO_BANANA)).deployment == "only"
    assert r.snapshot()[0]["state"] == "closed" and flaky.calls == 4


async def test_an_open_breaker_sends_traffic_to_the_lower_priority() -> None:
    a, b = Upstream(default=UpstreamUnavailable("down")), Upstream()
    r = router(dep("a", a, priority=1, retries=0), dep("b", b, priority=2), breaker_failures=2)
    for _ in range(5):
        assert (await r.generate(SPEC, NANO_BANANA)).deployment == "b"
    assert a.calls == 2  # after two failures it is skipped without a call


async def test_an_empty_answer_fails_over_and_counts_against_health() -> None:
    empty = Generation(images=(), finish_reason=FinishReason.STOP, text="Here is your image!")
    a, b = Upstream(default=empty), Upstream()
    r = router(dep("a", a, priority=1), dep("b", b, priority=2))
    assert (await r.generate(SPEC, NANO_BANANA)).deployment == "b"
    only = router(dep("a", Upstream(default=empty)))
    assert (await only.generate(SPEC, NANO_BANANA)).generation == empty  # nobody better: the answer stands
    assert r.snapshot()[0]["stats"]["5m"]["empty"] == 1


async def test_a_refusing_upstream_does_not_look_healthy_and_gets_less_traffic() -> None:
    refusal = Generation(images=(), finish_reason=FinishReason.IMAGE_SAFETY)
    refuser, good = Upstream(default=refusal), Upstream()
    r = router(dep("refuser", refuser), dep("good", good))
    served = Counter([(await r.generate(SPEC, NANO_BANANA)).deployment for _ in range(300)])
    snapshot = {d["name"]: d for d in r.snapshot()}
    assert snapshot["refuser"]["stats"]["5m"]["success_rate"] == 0.0
    assert snapshot["refuser"]["health"] == "unhealthy" and snapshot["good"]["health"] == "healthy"
    assert snapshot["refuser"]["state"] == "closed"  # it answers: a refusal is not an outage
    assert served["good"] > 5 * served["refuser"]


async def test_a_deadline_turns_a_hang_into_a_timeout_and_fails_over() -> None:
    slow, fast = Upstream(delay_s=5), Upstream()
    r = Router([dep("slow", slow, priority=1, timeout_s=0.05, retries=0), dep("fast", fast, priority=2)])
    assert (await r.generate(SPEC, NANO_BANANA)).deployment == "fast"
    assert r.snapshot()[0]["stats"]["5m"]["errors"] == 1


async def test_concurrency_limit_spills_over_then_waits() -> None:
    limited, other = Upstream(delay_s=0.05), Upstream(delay_s=0.05)
    r = Router([dep("limited", limited, priority=1, max_concurrency=2), dep("other", other, priority=2)])
    routed = await asyncio.gather(*(r.generate(SPEC, NANO_BANANA) for _ in range(6)))
    assert limited.most_running <= 2 and Counter(x.deployment for x in routed)["other"] >= 1
    alone = Upstream(delay_s=0.02)
    r2 = Router([dep("alone", alone, max_concurrency=1)])
    await asyncio.gather(*(r2.generate(SPEC, NANO_BANANA) for _ in range(4)))
    assert alone.most_running == 1 and alone.calls == 4


class Gated(Upstream):
    """Holds every call until ``release`` is set, so a test can look at what runs at once."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def generate(self, spec: JobSpec, model: ModelSpec, upstream_model: str) -> Generation:
        self.started.set()
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.release.wait()
            return IMAGE
        finally:
            self.running -= 1
            self.calls += 1


async def _settle() -> None:
    for _ in range(20):  # let every task that can move get to its gate
        await asyncio.sleep(0)


async def test_batch_calls_take_at_most_their_share_and_interactive_ones_start_at_once() -> None:
    upstream = Gated()
    r = Router([dep("only", upstream, max_concurrency=2, batch_share=0.5)])
    batch = [asyncio.create_task(r.generate(SPEC, NANO_BANANA, batch=True)) for _ in range(6)]
    await _settle()
    assert upstream.running == 1  # floor(0.5 x 2): one batch call; the other slot stays free
    interactive = asyncio.create_task(r.generate(SPEC, NANO_BANANA))
    await _settle()
    assert upstream.running == 2  # the interactive call did not queue behind the batch
    upstream.release.set()
    await asyncio.gather(interactive, *batch)
    assert upstream.calls == 7


@pytest.mark.parametrize(("limit", "share", "slots"), [(2, 0.5, 1), (3, 0.5, 1), (10, 0.25, 2), (1, 0.1, 1), (4, 1, 4)])
def test_batch_slots_are_a_floor_of_the_share_but_at_least_one(limit: int, share: float, slots: int) -> None:
    assert dep("d", Upstream(), max_concurrency=limit, batch_share=share).batch_slots == slots
    assert dep("d", Upstream(), batch_share=share).batch_slots is None  # no limit on the deployment: none on batch


async def test_a_crashing_provider_is_treated_as_down() -> None:
    def crash() -> Generation:
        raise RuntimeError("provider bug with secret sk-123")

    a, b = Upstream(default=crash), Upstream()
    r = router(dep("a", a, priority=1, retries=0), dep("b", b, priority=2))
    assert (await r.generate(SPEC, NANO_BANANA)).deployment == "b"


async def test_cancellation_passes_through_and_frees_the_probe() -> None:
    clock = Clock()
    hang = Upstream(delay_s=10)
    r = router(dep("a", hang, retries=0), clock=clock, breaker_failures=1)
    r.health("a").breaker.record_failure()
    clock.now += 31
    task = asyncio.create_task(r.generate(SPEC, NANO_BANANA))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert r.health("a").breaker.try_acquire() and r.health("a").in_flight == 0


async def test_time_to_first_byte_and_metrics_are_recorded() -> None:
    clock = Clock()

    def answer_later() -> Generation:
        clock.now += 0.2
        mark_first_byte()
        clock.now += 0.8
        mark_first_byte()  # only the first mark counts
        return IMAGE

    metrics = Metrics()
    r = Router([dep("a", Upstream(default=answer_later))], metrics=metrics, clock=clock)
    await r.generate(SPEC, NANO_BANANA)
    stats = r.snapshot()[0]["stats"]["5m"]
    assert 190 < stats["ttfb_ms"]["p50"] < 210 and 950 < stats["latency_ms"]["p50"] < 1050
    text = metrics.render().decode()
    assert 'imagegate_provider_requests_total{deployment="a",outcome="success",provider="fake"} 1.0' in text
    assert 'imagegate_provider_ttfb_seconds_count{deployment="a",provider="fake"} 1.0' in text


def test_deployment_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        Router([dep("a", Upstream()), dep("a", Upstream())])


async def test_snapshot_shape() -> None:
    r = router(dep("a", Upstream(), models={NANO_BANANA.id: "gemini-2.5-flash-image"}, max_concurrency=4))
    await r.generate(SPEC, NANO_BANANA)
    (entry,) = r.snapshot()
    assert entry["models"] == [NANO_BANANA.id] and entry["concurrency_limit"] == 4 and entry["in_flight"] == 0
    assert set(entry["stats"]) == {"5m", "1h", "24h"} and entry["stats"]["1h"]["requests"] == 1
    assert entry["retry_after_s"] is None and entry["health"] == "unknown"  # one call is too few to judge
