"""Rolling statistics: percentiles within the histogram's precision, windows that forget, outcome arithmetic."""

from __future__ import annotations

import random

import pytest

from imagegate.routing.stats import Histogram, Outcome, RollingStats


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_histogram_percentiles_are_within_two_and_a_half_percent() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(7, 0.6) for _ in range(5000)]  # ~1.1 s typical, long tail
    h = Histogram()
    for v in values:
        h.add(v)
    ordered = sorted(values)
    for q in (0.5, 0.95, 0.99):
        exact = ordered[int(q * len(ordered)) - 1]
        got = h.percentile(q)
        assert got is not None and abs(got - exact) / exact < 0.05
    assert h.summary()["mean"] == pytest.approx(sum(values) / len(values), abs=0.1)


def test_empty_histogram_has_no_numbers() -> None:
    assert Histogram().summary() == {"p50": None, "p95": None, "mean": None}


def test_windows_count_outcomes_and_forget_old_minutes() -> None:
    stats = RollingStats(clock := Clock())
    stats.record(Outcome.SUCCESS, 1.0, 0.2)
    stats.record(Outcome.ERROR, 5.0)
    clock.now += 600  # ten minutes later
    stats.record(Outcome.SUCCESS, 2.0, 0.4)
    stats.record(Outcome.REFUSAL, 0.5, 0.1)
    stats.record(Outcome.REJECTED, 0.01)
    recent = stats.window(300)
    assert (recent["requests"], recent["successes"], recent["refusals"], recent["rejected"]) == (3, 1, 1, 1)
    assert recent["success_rate"] == 0.5  # the caller's bad request is not the upstream's fault
    hour = stats.window(3600)
    assert hour["requests"] == 5 and hour["errors"] == 1 and hour["success_rate"] == round(2 / 4, 4)
    assert hour["ttfb_ms"]["p50"] is not None and 195 < hour["latency_ms"]["mean"] < 2000
    clock.now += 86400
    assert stats.window(86400)["requests"] == 0 and stats.window(300)["success_rate"] is None


def test_recent_success_rate_needs_enough_calls() -> None:
    stats = RollingStats(Clock())
    for _ in range(4):
        stats.record(Outcome.REFUSAL, 1.0)
    assert stats.recent_success_rate(min_requests=5) is None
    stats.record(Outcome.SUCCESS, 1.0)
    assert stats.recent_success_rate(min_requests=5) == 0.2


def test_memory_is_bounded_by_minutes_not_calls() -> None:
    stats = RollingStats(clock := Clock())
    for minute in range(2000):
        clock.now += 60
        stats.record(Outcome.SUCCESS, minute / 1000)
    assert len(stats._buckets) <= 1441
