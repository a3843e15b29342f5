"""Rolling per-deployment statistics: outcomes, latency and time to first byte over 5 minutes, 1 hour, 24 hours.

Each call lands in a one-minute bucket holding outcome counts and log-scale latency histograms (5 % wide
bins), so memory stays fixed however many calls arrive and any window is the sum of its buckets. Percentiles
read from the histograms are within 2.5 % of the true value; means are exact.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

BUCKET_S = 60
WINDOWS_S = {"5m": 300, "1h": 3600, "24h": 86400}
_BIN_RATIO = 1.05
_LOG_RATIO = math.log(_BIN_RATIO)
_MIN_MS = 0.1


class Outcome(StrEnum):
    SUCCESS = "success"  # at least one image delivered
    REFUSAL = "refusal"  # the model declined (safety, policy): counted against health, not a failure
    EMPTY = "empty"  # a normal-looking answer with no image and no reason: image-specific trouble
    ERROR = "error"  # the upstream failed: timeout, 429, 5xx, connection, bad configuration
    REJECTED = "rejected"  # the request itself was wrong: says nothing about the upstream


class Histogram:
    """Counts of values (milliseconds) in geometric bins; a percentile is its bin's geometric middle."""

    __slots__ = ("bins", "count", "total")

    def __init__(self) -> None:
        self.bins: Counter[int] = Counter()
        self.count = 0
        self.total = 0.0

    def add(self, value_ms: float) -> None:
        self.bins[_bin(value_ms)] += 1
        self.count += 1
        self.total += value_ms

    def merge(self, other: Histogram) -> None:
        self.bins.update(other.bins)
        self.count += other.count
        self.total += other.total

    def percentile(self, q: float) -> float | None:
        if self.count == 0:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index in sorted(self.bins):
            seen += self.bins[index]
            if seen >= rank:
                return math.exp((index + 0.5) * _LOG_RATIO)
        raise AssertionError("unreachable: rank never exceeds count")

    def summary(self) -> dict[str, float | None]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        mean = self.total / self.count if self.count else None
        return {"p50": rounded(self.percentile(0.5)), "p95": rounded(self.percentile(0.95)), "mean": rounded(mean)}


@dataclass
class _Bucket:
    minute: int
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    latency: Histogram = field(default_factory=Histogram)
    ttfb: Histogram = field(default_factory=Histogram)


def _bin(value_ms: float) -> int:
    return math.floor(math.log(max(value_ms, _MIN_MS)) / _LOG_RATIO)


def call_fields(outcome: Outcome, latency_s: float, ttfb_s: float | None) -> dict[str, float]:
    """One call as flat counter fields (outcome, latency bin and sum, ttfb bin and sum), to add up elsewhere."""
    latency_ms = latency_s * 1000
    fields = {f"o:{outcome.value}": 1.0, f"l:{_bin(latency_ms)}": 1.0, "lt": latency_ms}
    if ttfb_s is not None:
        fields[f"t:{_bin(ttfb_s * 1000)}"] = 1.0
        fields["tt"] = ttfb_s * 1000
    return fields


class RollingStats:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._buckets: deque[_Bucket] = deque()

    def _bucket(self, minute: int) -> _Bucket:
        if not self._buckets or self._buckets[-1].minute < minute:
            self._buckets.append(_Bucket(minute))
            horizon = minute - max(WINDOWS_S.values()) // BUCKET_S
            while self._buckets and self._buckets[0].minute <= horizon:
                self._buckets.popleft()
            return self._buckets[-1]
        for bucket in reversed(self._buckets):  # an older minute (fields added out of order)
            if bucket.minute == minute:
                return bucket
            if bucket.minute < minute:
                break
        inserted = _Bucket(minute)
        self._buckets = deque(sorted([*self._buckets, inserted], key=lambda b: b.minute))
        return inserted

    def record(self, outcome: Outcome, latency_s: float, ttfb_s: float | None = None) -> None:
        bucket = self._bucket(int(self._clock() // BUCKET_S))
        bucket.outcomes[outcome] += 1
        bucket.latency.add(latency_s * 1000)
        if ttfb_s is not None:
            bucket.ttfb.add(ttfb_s * 1000)

    def add_fields(self, minute: int, fields: dict[str, float]) -> None:
        """Add counter fields (``call_fields`` summed, e.g. over processes) to one minute's bucket."""
        bucket = self._bucket(minute)
        for name, value in fields.items():
            kind, _, index = name.partition(":")
            if kind == "o":
                bucket.outcomes[Outcome(index)] += int(value)
            elif kind in ("l", "t"):
                histogram = bucket.latency if kind == "l" else bucket.ttfb
                histogram.bins[int(index)] += int(value)
                histogram.count += int(value)
            elif kind == "lt":
                bucket.latency.total += value
            elif kind == "tt":
                bucket.ttfb.total += value

    def _within(self, seconds: int) -> Iterable[_Bucket]:
        first = int(self._clock() // BUCKET_S) - seconds // BUCKET_S
        return (b for b in self._buckets if b.minute > first)

    def window(self, seconds: int) -> dict[str, Any]:
        """Counts, success rate and latency of the calls in the last ``seconds`` (whole minutes)."""
        outcomes: Counter[Outcome] = Counter()
        latency, ttfb = Histogram(), Histogram()
        for bucket in self._within(seconds):
            outcomes.update(bucket.outcomes)
            latency.merge(bucket.latency)
            ttfb.merge(bucket.ttfb)
        judged = sum(outcomes.values()) - outcomes[Outcome.REJECTED]  # a caller's bad request proves nothing
        return {
            "requests": sum(outcomes.values()),
            "successes": outcomes[Outcome.SUCCESS],
            "refusals": outcomes[Outcome.REFUSAL],
            "empty": outcomes[Outcome.EMPTY],
            "errors": outcomes[Outcome.ERROR],
            "rejected": outcomes[Outcome.REJECTED],
            "success_rate": round(outcomes[Outcome.SUCCESS] / judged, 4) if judged else None,
            "latency_ms": latency.summary(),
            "ttfb_ms": ttfb.summary(),
        }

    def all_windows(self) -> dict[str, dict[str, Any]]:
        return {name: self.window(seconds) for name, seconds in WINDOWS_S.items()}

    def recent_success_rate(self, *, seconds: int = 300, min_requests: int = 5) -> float | None:
        """The success rate over ``seconds`` when enough calls were judged to mean something."""
        stats = self.window(seconds)
        judged = stats["requests"] - stats["rejected"]
        return stats["success_rate"] if judged >= min_requests else None
