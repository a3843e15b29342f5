"""Prometheus metrics of one server: provider calls, jobs in flight, queue depth, images and credits.

Each runtime owns its own registry (not the library's global one), so several servers in one process (tests,
embedding) never mix their numbers. Gauges that mirror state elsewhere (queue depth) are read at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

# Image generation takes seconds, not milliseconds: buckets from 50 ms to 5 minutes.
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 6, 8, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.provider_requests = Counter(
            "imagegate_provider_requests",
            "Provider calls by deployment and outcome (success, refusal, empty, error, rejected).",
            ["deployment", "provider", "outcome"],
            registry=r,
        )
        self.provider_latency = Histogram(
            "imagegate_provider_latency_seconds",
            "Duration of provider calls.",
            ["deployment", "provider"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.provider_ttfb = Histogram(
            "imagegate_provider_ttfb_seconds",
            "Time until the upstream started to answer.",
            ["deployment", "provider"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.provider_in_flight = Gauge(
            "imagegate_provider_in_flight", "Provider calls running now.", ["deployment"], registry=r
        )
        self.breaker_open = Gauge(
            "imagegate_breaker_open",
            "1 while a deployment's circuit breaker is open or half-open.",
            ["deployment"],
            registry=r,
        )
        self.jobs_in_flight = Gauge("imagegate_jobs_in_flight", "Jobs being run by this process.", registry=r)
        self.jobs_finished = Counter(
            "imagegate_jobs_finished", "Jobs finished, by model and final status.", ["model", "status"], registry=r
        )
        self.images_delivered = Counter(
            "imagegate_images_delivered", "Images delivered to callers.", ["model"], registry=r
        )
        self.credits_captured = Counter(
            "imagegate_credits_captured_micro",
            "Credits captured for delivered work, in micro-units of the operator's currency.",
            ["model"],
            registry=r,
        )
        self.queue_depth = Gauge("imagegate_queue_depth", "Jobs waiting for a worker.", registry=r)
        # Fleet-wide figures (every process, headless workers included), set at scrape time when state is shared
        # through Redis; the per-process series above are summed by Prometheus over the processes it scrapes.
        self.fleet_provider_calls = Gauge(
            "imagegate_fleet_provider_calls",
            "Provider calls of every process in the trailing window, by deployment and outcome.",
            ["deployment", "outcome", "window"],
            registry=r,
        )
        self.fleet_in_flight = Gauge(
            "imagegate_fleet_provider_in_flight",
            "Concurrency slots every process holds now, per deployment with max_concurrency.",
            ["deployment"],
            registry=r,
        )
        self.fleet_processes = Gauge(
            "imagegate_fleet_processes", "imagegate processes seen alive through the shared Redis.", registry=r
        )

    def watch_queue_depth(self, depth: Callable[[], int]) -> None:
        self.queue_depth.set_function(depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)
