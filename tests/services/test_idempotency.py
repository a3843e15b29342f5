"""The Idempotency-Key rules on a real SQLite database: claim, replay, conflict, mismatch, takeover, expiry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from imagegate.errors import IdempotencyConflict, IdempotencyMismatch
from imagegate.services.context import Services
from imagegate.services.idempotency import IdempotencyPolicy, New, Replay, abandon, begin, complete, purge_expired

from .conftest import ServicesFactory

SCOPE = "s" * 64
BODY = b'{"data": [1, 2, 3]}'
HEADERS = (("content-type", "application/json"),)
POLICY = IdempotencyPolicy(ttl=timedelta(hours=24), stale_after=timedelta(minutes=10))


class Clock:
    """A clock the test moves by hand, so expiry and staleness need no waiting."""

    def __init__(self) -> None:
        self.now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(make_services: ServicesFactory, clock: Clock) -> Services:
    services = make_services()
    services.clock = clock
    return services


async def claimed(svc: Services, key: str = "k1", fingerprint: str = "fp1", scope: str = SCOPE) -> New:
    outcome = await begin(svc, scope, key, fingerprint, policy=POLICY)
    assert isinstance(outcome, New)
    return outcome


async def test_the_first_request_claims_and_a_retry_while_it_runs_is_a_conflict(svc: Services) -> None:
    await claimed(svc)
    with pytest.raises(IdempotencyConflict) as raised:
        await begin(svc, SCOPE, "k1", "fp1", policy=POLICY)
    assert raised.value.kind == "conflict" and raised.value.code == "idempotency_in_progress"


async def test_another_request_under_the_key_is_a_mismatch_running_or_answered(svc: Services) -> None:
    first = await claimed(svc)
    with pytest.raises(IdempotencyMismatch) as raised:
        await begin(svc, SCOPE, "k1", "fp2", policy=POLICY)
    assert raised.value.kind == "unprocessable" and raised.value.code == "idempotency_key_reused"

    await complete(svc, first.claim, 200, HEADERS, BODY, policy=POLICY)
    with pytest.raises(IdempotencyMismatch):
        await begin(svc, SCOPE, "k1", "fp2", policy=POLICY)


async def test_an_answered_request_is_replayed_exactly(svc: Services, clock: Clock) -> None:
    first = await claimed(svc)
    clock.advance(timedelta(seconds=5))
    assert await complete(svc, first.claim, 201, HEADERS, BODY, policy=POLICY) is True

    clock.advance(timedelta(hours=23))
    replay = await begin(svc, SCOPE, "k1", "fp1", policy=POLICY)
    assert isinstance(replay, Replay)
    assert (replay.record.status, replay.record.headers, replay.record.body) == (201, HEADERS, BODY)
    assert replay.record.completed_at == first.claim.created_at + timedelta(seconds=5)


async def test_client_errors_are_kept_but_5xx_and_not_now_answers_are_not(svc: Services) -> None:
    invalid = await claimed(svc, "bad-request")
    assert await complete(svc, invalid.claim, 400, HEADERS, b"{}", policy=POLICY) is True
    assert isinstance(await begin(svc, SCOPE, "bad-request", "fp1", policy=POLICY), Replay)

    for status in (500, 503, 504, 401, 402, 409, 429):
        attempt = await claimed(svc, f"k-{status}")
        assert await complete(svc, attempt.claim, status, HEADERS, b"{}", policy=POLICY) is False
        await claimed(svc, f"k-{status}")  # a retry runs again


async def test_an_abandoned_claim_lets_the_retry_run(svc: Services) -> None:
    first = await claimed(svc)
    assert await abandon(svc, first.claim) is True
    second = await claimed(svc)
    assert second.claim.token != first.claim.token


async def test_a_stale_claim_is_taken_over_and_its_late_answer_is_dropped(svc: Services, clock: Clock) -> None:
    first = await claimed(svc)
    # A claim with no job is only ever held while its request parses and fetches inputs (seconds); a holder that
    # has not created its job after ``unlinked_stale_after`` died before doing so, and the retry runs afresh.
    clock.advance(POLICY.unlinked_stale_after - timedelta(seconds=1))
    with pytest.raises(IdempotencyConflict):
        await begin(svc, SCOPE, "k1", "fp1", policy=POLICY)

    clock.advance(timedelta(seconds=1))
    second = await claimed(svc)
    assert await complete(svc, first.claim, 200, HEADERS, b"late", policy=POLICY) is False
    assert await abandon(svc, first.claim) is False
    assert await complete(svc, second.claim, 200, HEADERS, BODY, policy=POLICY) is True
    replay = await begin(svc, SCOPE, "k1", "fp1", policy=POLICY)
    assert isinstance(replay, Replay) and replay.record.body == BODY


async def test_a_stale_claim_of_another_request_is_still_a_mismatch(svc: Services, clock: Clock) -> None:
    await claimed(svc)
    clock.advance(timedelta(hours=1))
    with pytest.raises(IdempotencyMismatch):
        await begin(svc, SCOPE, "k1", "fp2", policy=POLICY)


async def test_answers_expire_after_the_ttl(svc: Services, clock: Clock) -> None:
    first = await claimed(svc)
    await complete(svc, first.claim, 200, HEADERS, BODY, policy=POLICY)
    clock.advance(POLICY.ttl + timedelta(seconds=1))
    # Forgotten: the key is free again, even for another request.
    await claimed(svc, fingerprint="fp2")


async def test_purge_forgets_only_expired_entries(svc: Services, clock: Clock) -> None:
    old = await claimed(svc, "old")
    await complete(svc, old.claim, 200, HEADERS, BODY, policy=POLICY)
    clock.advance(timedelta(hours=20))
    await claimed(svc, "recent")
    clock.advance(timedelta(hours=5))
    assert await purge_expired(svc) == 1
    async with svc.uow() as uow:
        assert await uow.idempotency.get(SCOPE, "old") is None
        assert await uow.idempotency.get(SCOPE, "recent") is not None


async def test_scopes_never_share_keys(svc: Services) -> None:
    await claimed(svc, scope="a" * 64)
    await claimed(svc, scope="b" * 64)


async def test_concurrent_first_requests_let_exactly_one_run(svc: Services) -> None:
    async def attempt() -> str:
        try:
            outcome = await begin(svc, SCOPE, "k1", "fp1", policy=POLICY)
        except IdempotencyConflict:
            return "conflict"
        return type(outcome).__name__

    results = await asyncio.gather(*(attempt() for _ in range(5)))
    assert sorted(results) == ["New", "conflict", "conflict", "conflict", "conflict"]
