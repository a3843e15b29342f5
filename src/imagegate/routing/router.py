"""Which deployment serves each image call, and what happens when one fails.

For every call the router keeps the deployments that serve the model and can take the request (capability
filter), drops those whose circuit breaker is open, and orders the rest by priority (lower first), then by a
weighted random draw within a priority, the weights scaled by recent success so a deployment that refuses or
fails a lot gets less work. Deployments at their concurrency limit go last. A retryable failure (timeout, 429,
5xx, connection loss) is retried on the same deployment after a backoff that honours the upstream's
Retry-After/RetryInfo, then the next deployment is tried. When every breaker is open the call fails at once
with ``NoDeploymentAvailable`` carrying the time until one half-opens. A failure the request caused (an
``InvalidRequest`` such as an upstream 400, or text that cannot be encoded) never counts against a deployment's
breaker or success rate: one caller's bad input must not pause a model for everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imagegate.core.attempts import Attempt, record_attempt
from imagegate.core.capabilities import Feature, ModelSpec, Prices
from imagegate.core.checks import ALL, DeploymentCaps, Violation, ViolationKind, check_job
from imagegate.core.jobs import FinishReason, Generation, JobSpec
from imagegate.core.ports import ImageProvider
from imagegate.core.retry import RetryPolicy, retry_budget
from imagegate.core.timing import first_byte_marker
from imagegate.errors import (
    ImagegateError,
    InvalidRequest,
    NoDeploymentAvailable,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from imagegate.metrics import Metrics
from imagegate.routing.breaker import BreakerState, CircuitBreaker
from imagegate.routing.shared import ConcurrencySlots, HealthObserver, LocalSlots
from imagegate.routing.stats import Outcome, RollingStats

log = logging.getLogger(__name__)

Sleep = Callable[[float], Any]


@dataclass(frozen=True)
class Deployment:
    name: str
    provider_name: str
    # None: a deployment this process knows (prices, capabilities, for quotes) but does not run; another
    # process does (a GPU worker, say), so nothing of it is built or started here.
    provider: ImageProvider | None
    models: dict[str, str] = field(default_factory=dict)  # our model id -> the provider's; empty: all, same id
    prices: dict[str, Prices] = field(default_factory=dict)  # by our model id; absent: the model's own prices
    priority: int = 1  # lower is tried first
    weight: float = 1.0  # share of the traffic among deployments of the same priority
    max_concurrency: int | None = None  # calls at once; None: no limit
    batch_share: float = 0.5  # of max_concurrency, what batch jobs may take at once (at least one slot)
    timeout_s: float | None = None  # deadline of one call, the provider's own retries included
    # Further tries on this deployment after a retryable failure (timeouts included), before failing over. HTTP
    # providers already retry what cannot bill twice, honouring Retry-After (their own ``max_retries``).
    retries: int = 0
    # The deployment's own settings, each narrowing what its provider declares (``declared``).
    max_input_images: int | None = None  # what this upstream can take, when less than the model allows
    resolutions: frozenset[str] | None = None  # what this upstream can make; None: all the model's
    features: frozenset[str] | None = None  # seed, thinking, grounding… it can do; None: all the model's
    declared: DeploymentCaps = ALL  # what the provider's wire protocol can carry (``capabilities(options)``)
    # by our model id, where what it can serve differs per upstream model (a local checkpoint's family limits:
    # ``model_capabilities``); these replace ``declared`` for that model
    model_caps: Mapping[str, DeploymentCaps] = field(default_factory=dict)
    # caps_for's answers: the fields above never change, and each job asks several times (~20 us each)
    _caps: dict[str | None, DeploymentCaps] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def caps(self) -> DeploymentCaps:
        """What it can serve of any model: the provider's declaration narrowed by its settings."""
        return self.caps_for(None)

    def caps_for(self, model_id: str | None) -> DeploymentCaps:
        """What it can serve of ``model_id``: its upstream model's (or the provider's) caps, narrowed."""
        caps = self._caps.get(model_id)
        if caps is None:
            declared = self.model_caps.get(model_id, self.declared) if model_id is not None else self.declared
            caps = self._caps[model_id] = declared.narrowed(
                resolutions=self.resolutions, max_input_images=self.max_input_images, features=self.features
            )
        return caps

    @property
    def batch_slots(self) -> int | None:
        """How many of the concurrent calls batch jobs may hold; None: no limit (nor one on the deployment)."""
        if self.max_concurrency is None:
            return None
        return max(1, math.floor(self.batch_share * self.max_concurrency))

    def upstream_model(self, model_id: str) -> str | None:
        if not self.models:
            return model_id
        return self.models.get(model_id)

    def refusal_for(self, spec: JobSpec, model: ModelSpec) -> list[Violation]:
        """Why this deployment cannot take ``spec`` (the one capability check); empty when it can."""
        return check_job(spec, model, self.caps_for(model.id))


@dataclass(frozen=True)
class Candidate:
    deployment: Deployment
    upstream_model: str


@dataclass(frozen=True)
class Routed:
    generation: Generation
    deployment: str


@dataclass(frozen=True)
class RoutingPolicy:
    breaker_failures: int = 5  # failures in a row that open a deployment's breaker
    breaker_cooldown_s: float = 30.0  # how long it stays open before one probe is let through
    breaker_max_cooldown_s: float = 300.0  # failed probes double the cooldown up to this
    retry_base_delay_s: float = 0.5  # first backoff on the same deployment; doubles per retry
    retry_max_wait_s: float = 10.0  # an upstream asking for a longer wait is failed over at once
    # Retries one job may make in all: its deployments' and their providers' together (core.retry); failing over
    # to another deployment is not a retry.
    retry_budget: int = 3
    health_window_s: int = 300  # recent success rate that scales a deployment's weight


class DeploymentHealth:
    """A deployment's live state in this process: its breaker, rolling stats and calls in flight."""

    def __init__(self, deployment: Deployment, policy: RoutingPolicy, clock: Callable[[], float]) -> None:
        self.breaker = CircuitBreaker(
            failure_threshold=policy.breaker_failures,
            cooldown_s=policy.breaker_cooldown_s,
            max_cooldown_s=policy.breaker_max_cooldown_s,
            clock=clock,
        )
        self.stats = RollingStats()
        self.in_flight = 0


_NOT_REFUSALS = {None, FinishReason.STOP, FinishReason.MAX_TOKENS}


def classify(generation: Generation) -> Outcome:
    if generation.images:
        return Outcome.SUCCESS
    if generation.block_reason or generation.finish_reason not in _NOT_REFUSALS:
        return Outcome.REFUSAL
    return Outcome.EMPTY  # "finished normally" yet no image: the upstream is not doing its job


class Router:
    def __init__(
        self,
        deployments: Sequence[Deployment],
        policy: RoutingPolicy | None = None,
        *,
        metrics: Metrics | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        slots: ConcurrencySlots | None = None,
    ) -> None:
        names = [d.name for d in deployments]
        if len(set(names)) != len(names):
            raise ValueError(f"deployment names must be unique; got {names}")
        self.deployments = tuple(deployments)
        self.policy = policy or RoutingPolicy()
        self.metrics = metrics
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._health = {d.name: DeploymentHealth(d, self.policy, clock) for d in self.deployments}
        self.slots: ConcurrencySlots = slots or LocalSlots()  # max_concurrency, per process or fleet-wide
        self.observer: HealthObserver | None = None  # told every call and breaker move (to share them)

    def saturated(self, deployment: Deployment) -> bool:
        limit = deployment.max_concurrency
        return limit is not None and self.slots.in_use(deployment.name) >= limit

    def health(self, name: str) -> DeploymentHealth:
        return self._health[name]

    def violations(self, spec: JobSpec, model: ModelSpec) -> list[Violation]:
        """Why no deployment here can serve ``spec`` (the first one's reasons; for a job that names its
        deployment, that one's, or that no such deployment serves the model), or empty when one can (or when none
        serves the model at all: that is an outage, not the caller's fault)."""
        if spec.deployment is not None and not self.candidates(model.id, spec.deployment):
            serving = [c.deployment.name for c in self.candidates(model.id)]
            return [
                Violation(
                    ViolationKind.FEATURE,
                    "deployment",
                    f"No deployment named {spec.deployment} serves {model.id} here",
                    tuple(serving),
                    f"it is served by {', '.join(serving)}" if serving else "",
                )
            ]
        found: list[Violation] = []
        for candidate in self.candidates(model.id, spec.deployment):
            refusal = candidate.deployment.refusal_for(spec, model)
            if not refusal:
                return []
            found = found or refusal
        return found

    def takes_seed(self, deployment: str, model: ModelSpec) -> bool:
        """Whether ``deployment`` sends a job's seed to its upstream for ``model``."""
        for dep in self.deployments:
            if dep.name == deployment:
                features = dep.caps_for(model.id).features
                return model.supports(Feature.SEED) and (features is None or Feature.SEED in features)
        return False

    def diffusion(self, model_id: str) -> tuple[frozenset[str], int | None]:
        """The diffusion knobs some deployment of ``model_id`` takes, and the most steps one of those runs."""
        caps = [c.deployment.caps_for(model_id) for c in self.candidates(model_id)]
        knobs = frozenset().union(*(c.diffusion for c in caps))
        return knobs, max((c.max_steps for c in caps if c.max_steps is not None), default=None)

    def candidates(self, model_id: str, only: str | None = None) -> list[Candidate]:
        """Deployments able to serve ``model_id`` (just ``only``, when a job names its deployment), in
        configured order (health and load aside)."""
        found = []
        for dep in self.deployments:
            upstream = dep.upstream_model(model_id)
            if upstream is not None and only in (None, dep.name):
                found.append(Candidate(dep, upstream))
        return found

    def plan(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The order to try ``candidates`` in now; deployments whose breaker is open are left out."""
        policy = self.policy

        def draw(c: Candidate) -> float:
            # Efraimidis-Spirakis: sorting by u ** (1 / w) is a weighted shuffle without replacement
            rate = self._health[c.deployment.name].stats.recent_success_rate(seconds=policy.health_window_s)
            weight = c.deployment.weight * (1.0 if rate is None else max(0.05, rate))
            return float(self._rand() ** (1.0 / weight))

        usable = [c for c in candidates if self._health[c.deployment.name].breaker.available()]
        if len(usable) < 2:  # nothing to order (most jobs: one deployment serves the model)
            return usable
        keyed = [(c, self.saturated(c.deployment), draw(c)) for c in usable]
        keyed.sort(key=lambda item: (item[1], item[0].deployment.priority, -item[2]))
        return [c for c, _, _ in keyed]

    async def generate(self, spec: JobSpec, model: ModelSpec, *, batch: bool = False) -> Routed:
        """One image call for ``spec``, served by the best deployment that will answer; raises domain errors.

        ``batch``: the call is a batch job's, held to each deployment's ``batch_slots``."""
        serving = [c for c in self.candidates(model.id, spec.deployment) if c.deployment.provider is not None]
        if not serving:
            raise UpstreamUnavailable(f"No deployment serves {model.id}.")
        able = [c for c in serving if not c.deployment.refusal_for(spec, model)]
        if not able:
            [first, *_] = serving[0].deployment.refusal_for(spec, model)
            raise InvalidRequest(f"{first.explained}.", field=first.field)
        with retry_budget(self.policy.retry_budget):
            return await self._fail_over(able, spec, model, batch)

    async def _fail_over(self, able: list[Candidate], spec: JobSpec, model: ModelSpec, batch: bool) -> Routed:
        tried: set[str] = set()
        last_error: UpstreamError | None = None
        empty: Routed | None = None  # an imageless answer, kept in case no other deployment does better
        while order := [c for c in self.plan(able) if c.deployment.name not in tried]:
            candidate = order[0]
            tried.add(candidate.deployment.name)
            try:
                routed = await self._on_deployment(candidate, spec, model, batch)
            except UpstreamError as exc:
                last_error = exc
                continue
            if routed is None:  # breaker opened while we waited
                continue
            if classify(routed.generation) is Outcome.EMPTY:
                empty = empty or routed
                continue
            return routed
        if empty is not None:
            return empty
        if last_error is not None:
            raise last_error
        wait = min(self._health[c.deployment.name].breaker.retry_after_s() for c in able)
        raise NoDeploymentAvailable(
            f"Every deployment of {model.id} is failing and paused; try again in {max(1, round(wait))} s.",
            retry_after_s=max(1.0, wait),
        )

    async def _on_deployment(self, candidate: Candidate, spec: JobSpec, model: ModelSpec, batch: bool) -> Routed | None:
        """Call one deployment, retrying retryable failures with backoff; None if its breaker is open."""
        dep = candidate.deployment
        health = self._health[dep.name]
        retry = 0
        while True:
            if not health.breaker.try_acquire():
                record_attempt(Attempt(dep.name, "skipped", None, "circuit breaker open"))
                return None
            try:
                return Routed(await self._call(candidate, health, spec, model, batch), dep.name)
            except UpstreamError as exc:
                retry += 1
                delay = self._backoff(retry, exc, dep.retries)
                if delay is None:
                    raise
                log.warning("deployment %s: %s; retry %d in %.2fs", dep.name, exc.code, retry, delay)
                await self._sleep(delay)

    def _backoff(self, retry: int, exc: UpstreamError, retries: int) -> float | None:
        if isinstance(exc, UpstreamRejected):
            return None  # a key or configuration problem does not fix itself in a second
        asked = exc.retry_after_s if isinstance(exc, RateLimited) else None
        backoff = RetryPolicy(retries, self.policy.retry_base_delay_s, self.policy.retry_max_wait_s)
        return backoff.delay_s(retry, server_delay_s=asked, rand=self._rand)

    @contextlib.asynccontextmanager
    async def _holding(self, dep: Deployment, batch: bool) -> AsyncIterator[None]:
        """The deployment's concurrency slot and, for a batch job, first one of its batch slots too.

        The batch slots are a second set of the same kind (per process, or fleet-wide through Redis), so
        whichever queue delivered the job, batch work never holds more than its share and interactive calls
        always find the rest free."""
        async with contextlib.AsyncExitStack() as stack:
            limit = dep.max_concurrency
            share = dep.batch_slots
            if batch and share is not None:
                await stack.enter_async_context(self.slots.hold(f"{dep.name}:batch", share))
            if limit is not None:
                await stack.enter_async_context(self.slots.hold(dep.name, limit))
            yield

    async def _call(
        self, candidate: Candidate, health: DeploymentHealth, spec: JobSpec, model: ModelSpec, batch: bool
    ) -> Generation:
        dep = candidate.deployment
        provider = dep.provider
        if provider is None:  # generate() offers only deployments run here
            raise UpstreamUnavailable(f"Deployment {dep.name} does not run in this process.")
        async with self._holding(dep, batch):
            health.in_flight += 1
            self._gauge_in_flight(dep, health)
            started = self._clock()
            first_byte: list[float] = []

            def mark() -> None:
                if not first_byte:
                    first_byte.append(self._clock() - started)

            try:
                with first_byte_marker(mark):
                    async with asyncio.timeout(dep.timeout_s):
                        generation = await provider.generate(spec, model, candidate.upstream_model)
            except TimeoutError as exc:
                self._finish(
                    dep, health, Outcome.ERROR, started, first_byte, f"upstream_timeout after {dep.timeout_s:g} s"
                )
                raise UpstreamTimeout(f"Deployment {dep.name} did not answer within {dep.timeout_s:g} s.") from exc
            except UpstreamError as exc:
                self._finish(dep, health, Outcome.ERROR, started, first_byte, _reason(exc))
                raise
            except ImagegateError as exc:  # the request is wrong: another deployment would say the same
                self._finish(dep, health, Outcome.REJECTED, started, first_byte, _reason(exc))
                raise
            except asyncio.CancelledError:
                health.breaker.release()
                raise
            except UnicodeError as exc:  # text the request carried cannot be encoded: its fault, not the upstream's
                self._finish(dep, health, Outcome.REJECTED, started, first_byte, "invalid_request: text not encodable")
                raise InvalidRequest(f"The request has text that cannot be encoded ({exc}).") from exc
            except Exception as exc:  # a provider bug must not take the job down with it: fail over
                log.exception("deployment %s: provider %s failed unexpectedly", dep.name, dep.provider_name)
                self._finish(dep, health, Outcome.ERROR, started, first_byte, f"provider failed: {type(exc).__name__}")
                raise UpstreamUnavailable(f"Deployment {dep.name} failed unexpectedly.") from exc
            finally:
                health.in_flight -= 1
                self._gauge_in_flight(dep, health)
            outcome = classify(generation)
            why = None if outcome is Outcome.SUCCESS else generation.block_reason or generation.finish_reason
            self._finish(dep, health, outcome, started, first_byte, why)
            return generation

    def _finish(
        self,
        dep: Deployment,
        health: DeploymentHealth,
        outcome: Outcome,
        started: float,
        first_byte: list[float],
        reason: str | None = None,
    ) -> None:
        latency = self._clock() - started
        ttfb = first_byte[0] if first_byte else None
        record_attempt(Attempt(dep.name, outcome.value, round(latency * 1000, 1), reason))
        health.stats.record(outcome, latency, ttfb)
        was = health.breaker.state
        if outcome in (Outcome.SUCCESS, Outcome.REFUSAL):  # a refusal still proves the upstream is up
            health.breaker.record_success()
        elif outcome is Outcome.REJECTED:
            health.breaker.release()
        else:
            health.breaker.record_failure()
            if was is not BreakerState.OPEN and health.breaker.state is BreakerState.OPEN:
                log.warning("deployment %s: circuit breaker opened", dep.name)
        if self.observer is not None:
            self.observer.call_recorded(dep.name, outcome, latency, ttfb)
            self.observer.breaker_moved(dep.name, health.breaker, was)
        if self.metrics is not None:
            labels = {"deployment": dep.name, "provider": dep.provider_name}
            self.metrics.provider_requests.labels(outcome=outcome.value, **labels).inc()
            self.metrics.provider_latency.labels(**labels).observe(latency)
            if ttfb is not None:
                self.metrics.provider_ttfb.labels(**labels).observe(ttfb)
            self.metrics.breaker_open.labels(deployment=dep.name).set(
                0 if health.breaker.state is BreakerState.CLOSED else 1
            )

    def _gauge_in_flight(self, dep: Deployment, health: DeploymentHealth) -> None:
        if self.metrics is not None:
            self.metrics.provider_in_flight.labels(deployment=dep.name).set(health.in_flight)

    def snapshot(
        self, fleet_stats: Mapping[str, RollingStats] | None = None, fleet_in_flight: Mapping[str, int] | None = None
    ) -> list[dict[str, Any]]:
        """Every deployment's configuration, breaker state, load and rolling stats, for ``GET /v1/providers``.

        ``fleet_stats`` / ``fleet_in_flight`` replace this process's own figures with every process's.
        """
        out = []
        for dep in self.deployments:
            health = self._health[dep.name]
            stats = (fleet_stats or {}).get(dep.name, health.stats)
            windows = stats.all_windows()
            out.append(
                {
                    "name": dep.name,
                    "provider": dep.provider_name,
                    "models": sorted(dep.models) or ["*"],
                    "priority": dep.priority,
                    "weight": dep.weight,
                    "state": health.breaker.state.value,
                    "health": _health_word(health.breaker.state, stats.recent_success_rate()),
                    "retry_after_s": round(health.breaker.retry_after_s(), 1) or None,
                    "in_flight": (fleet_in_flight or {}).get(dep.name, health.in_flight),
                    "concurrency_limit": dep.max_concurrency,
                    "timeout_s": dep.timeout_s,
                    "stats": windows,
                }
            )
        return out

    async def aclose(self) -> None:
        for dep in self.deployments:
            if dep.provider is not None:
                await dep.provider.aclose()


def _reason(exc: ImagegateError) -> str:
    """An attempt's reason: the error's code and the start of its message."""
    return f"{exc.code}: {exc.message}"[:300]


def _health_word(state: BreakerState, rate: float | None) -> str:
    """healthy / degraded / unhealthy / unknown, from the breaker and the last five minutes' success rate."""
    if state is not BreakerState.CLOSED:
        return "unhealthy"
    if rate is None:
        return "unknown"
    if rate >= 0.95:
        return "healthy"
    return "degraded" if rate >= 0.5 else "unhealthy"
