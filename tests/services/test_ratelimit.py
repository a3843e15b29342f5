"""The per-key token bucket, on a fake clock."""

from __future__ import annotations

import pytest

from imagegate.errors import InvalidRequest, RateLimited
from imagegate.services import accounts
from imagegate.services.ratelimit import KeyRateLimiter
from imagegate.services.submit import submit_job

from .conftest import text_spec


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_up_to_the_quota_then_a_retry_delay() -> None:
    clock = FakeClock()
    limiter = KeyRateLimiter(3, clock=clock)
    for _ in range(3):
        limiter.check("k")
    with pytest.raises(RateLimited) as caught:
        limiter.check("k")
    assert caught.value.retry_after_s == pytest.approx(20.0)  # one request every 20 s at 3/min
    limiter.check("other")  # keys have their own buckets
    clock.now += 20
    limiter.check("k")
    with pytest.raises(RateLimited):
        limiter.check("k")


def test_an_idle_key_refills_only_to_capacity() -> None:
    clock = FakeClock()
    limiter = KeyRateLimiter(2, clock=clock)
    clock.now += 3600
    limiter.check("k")
    limiter.check("k")
    with pytest.raises(RateLimited):
        limiter.check("k")


async def test_submit_applies_the_quota_after_validation(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    svc.limiter = KeyRateLimiter(1, clock=FakeClock())
    principal = (await accounts.create_key(svc, name="q")).record
    with pytest.raises(InvalidRequest, match="not supported"):
        await submit_job(svc, principal, text_spec(aspect_ratio="1:4"))  # refused: costs no quota
    await submit_job(svc, principal, text_spec())
    with pytest.raises(RateLimited, match="quota of 1 requests per minute"):
        await submit_job(svc, principal, text_spec())
