"""Billing: hold at submission, capture per delivered image, release the rest; exact under failure and concurrency."""

from __future__ import annotations

import asyncio

import pytest

from imagegate.core.capabilities import NANO_BANANA
from imagegate.core.jobs import FinishReason, Generation, JobPriority, JobStatus
from imagegate.errors import InsufficientCredits, UpstreamUnavailable
from imagegate.services import accounts
from imagegate.services.billing import quote, token_cost
from imagegate.services.execute import execute_job
from imagegate.services.recovery import recover_jobs
from imagegate.services.submit import submit_job
from imagegate.services.tasks import cancel_job, list_jobs

from .conftest import FakeProvider, text_spec

PRICE = NANO_BANANA.price_per_image


async def _metered(svc, credits: int):  # type: ignore[no-untyped-def]
    return (await accounts.create_key(svc, name="payer", credits=credits)).record


async def _balance(svc, key_id: str) -> int:  # type: ignore[no-untyped-def]
    async with svc.uow() as uow:
        key = await uow.keys.get(key_id)
    assert key is not None
    return key.credits


async def _ledger(svc, job_id: str):  # type: ignore[no-untyped-def]
    async with svc.uow() as uow:
        return {(e.kind, e.amount) for e in await uow.ledger.for_job(job_id)}


def test_quote_is_images_plus_input_tokens() -> None:
    spec = text_spec(n=3)
    per_slot = PRICE + token_cost(2, NANO_BANANA.price_per_million_input_tokens)  # "a red bicycle" ~ 4 tokens
    assert quote(spec, NANO_BANANA) >= 3 * PRICE
    assert quote(spec, NANO_BANANA) <= 3 * (per_slot + 10)
    assert token_cost(1, 300_000) == 1  # rounding never makes a token free
    assert token_cost(1_000_000, 300_000) == 300_000


async def test_delivered_image_is_captured_and_the_rest_released(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    key = await _metered(svc, 1_000_000)
    job = await submit_job(svc, key, text_spec())
    held = quote(text_spec(), NANO_BANANA)
    assert job.held == held and await _balance(svc, key.id) == 1_000_000 - held
    finished = await execute_job(svc, job.id)
    assert finished is not None and finished.charged is not None
    assert PRICE <= finished.charged <= held
    assert await _balance(svc, key.id) == 1_000_000 - finished.charged
    refund = held - finished.charged
    assert await _ledger(svc, job.id) == {("hold", held), ("capture", finished.charged)} | (
        {("release", refund)} if refund else set()
    )


async def test_partial_success_charges_only_what_was_delivered(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services(FakeProvider(UpstreamUnavailable("down")))
    key = await _metered(svc, 1_000_000)
    job = await submit_job(svc, key, text_spec(n=4))
    finished = await execute_job(svc, job.id)
    assert finished is not None and len(finished.images) == 3
    input_cost = sum(token_cost(r.usage.input_tokens, 300_000) for r in finished.results if r.images)
    assert finished.charged == 3 * PRICE + input_cost
    assert await _balance(svc, key.id) == 1_000_000 - finished.charged


@pytest.mark.parametrize(
    "outcome",
    [
        Generation(images=(), finish_reason=FinishReason.IMAGE_SAFETY),
        Generation(images=(), finish_reason=None, block_reason="PROHIBITED_CONTENT"),
        UpstreamUnavailable("down"),
    ],
)
async def test_refusals_and_failures_cost_nothing(make_services, outcome) -> None:  # type: ignore[no-untyped-def]
    svc = make_services(FakeProvider(default=outcome))
    key = await _metered(svc, 500_000)
    job = await submit_job(svc, key, text_spec())
    finished = await execute_job(svc, job.id)
    assert finished is not None and finished.charged == 0
    assert await _balance(svc, key.id) == 500_000


async def test_cancel_and_give_up_release_the_hold(make_services) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from imagegate.services.context import ServiceConfig

    svc = make_services(config=ServiceConfig(max_attempts=1))
    key = await _metered(svc, 500_000)
    cancelled = await submit_job(svc, key, text_spec())
    await cancel_job(svc, key, cancelled.id)
    dead = await submit_job(svc, key, text_spec())
    now = svc.clock()
    async with svc.uow() as uow:  # its worker claims it and dies
        await uow.jobs.claim_with_spec(dead.id, now=now, lease_until=now + timedelta(seconds=1))
        await uow.commit()
    await recover_jobs(svc, stale_before=now + timedelta(seconds=2))
    assert await _balance(svc, key.id) == 500_000
    for job_id in (cancelled.id, dead.id):
        kinds = {kind for kind, _ in await _ledger(svc, job_id)}
        assert kinds == {"hold", "capture", "release"}


async def test_a_job_killed_after_delivery_but_before_capture_settles_once(make_services) -> None:  # type: ignore[no-untyped-def]
    """Images and capture commit together: a crash before the commit leaves neither, the re-run charges once."""
    from datetime import timedelta

    svc = make_services()
    key = await _metered(svc, 1_000_000)
    job = await submit_job(svc, key, text_spec())
    now = svc.clock()
    async with svc.uow() as uow:  # attempt 1 ran, stored its image bytes, and died before its final transaction
        await uow.jobs.claim_with_spec(job.id, now=now, lease_until=now + timedelta(seconds=1))
        await uow.commit()
    await recover_jobs(svc, stale_before=now + timedelta(seconds=2))
    finished = await execute_job(svc, job.id)
    assert finished is not None and finished.attempts == 2 and finished.charged is not None
    assert await _balance(svc, key.id) == 1_000_000 - finished.charged
    assert sorted(kind for kind, _ in await _ledger(svc, job.id)) in (
        ["capture", "hold"],
        ["capture", "hold", "release"],
    )


async def test_insufficient_balance_is_refused_before_anything_is_queued(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    key = await _metered(svc, PRICE)  # enough for the image, not for its input tokens too
    with pytest.raises(InsufficientCredits, match="insufficient balance"):
        await submit_job(svc, key, text_spec())
    assert await list_jobs(svc, key) == [] and svc.queue.qsize() == 0  # type: ignore[attr-defined]
    assert await _balance(svc, key.id) == PRICE


async def test_unmetered_keys_are_not_limited_but_usage_is_recorded(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    key = (await accounts.create_key(svc, name="free")).record
    job = await submit_job(svc, key, text_spec())
    assert job.held == 0
    finished = await execute_job(svc, job.id)
    assert finished is not None and finished.status is JobStatus.SUCCEEDED and finished.charged
    async with svc.uow() as uow:
        [capture] = await uow.ledger.captures(key.id)
    assert capture.images == 1 and capture.amount == finished.charged


async def test_concurrent_spending_never_overdraws(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    per_request = quote(text_spec(), NANO_BANANA)
    key = await _metered(svc, per_request * 5 + per_request // 2)
    outcomes = await asyncio.gather(*(submit_job(svc, key, text_spec()) for _ in range(20)), return_exceptions=True)
    accepted = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, InsufficientCredits)]
    assert len(accepted) == 5 and len(refused) == 15
    assert await _balance(svc, key.id) == per_request // 2


async def test_each_slot_pays_the_prices_of_the_deployment_that_served_it(make_services) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from imagegate.core.capabilities import Prices

    cheap_but_down = FakeProvider(default=UpstreamUnavailable("down"))
    svc = make_services(cheap_but_down, FakeProvider())
    dear = Prices(per_image=50_000, per_million_input_tokens=1_000_000, per_million_output_tokens=0)
    cheap = Prices(per_image=20_000, per_million_input_tokens=0, per_million_output_tokens=0)
    first, second = svc.router.deployments
    svc.router.deployments = (
        replace(first, prices={NANO_BANANA.id: cheap}),
        replace(second, prices={NANO_BANANA.id: dear}),
    )
    key = await _metered(svc, 1_000_000)
    job = await submit_job(svc, key, text_spec())
    assert job.held == quote(text_spec(), NANO_BANANA, svc.router) >= 50_000  # the dearest deployment is held
    finished = await execute_job(svc, job.id)
    assert finished is not None and finished.results[0].deployment == "dep1"
    input_tokens = finished.results[0].usage.input_tokens
    assert finished.charged == 50_000 + token_cost(input_tokens, 1_000_000)  # the one that delivered set the price


async def test_batch_jobs_hold_and_pay_the_batch_price(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    key = await _metered(svc, 1_000_000)
    usual = await execute_job(svc, (await submit_job(svc, key, text_spec())).id)
    batch = await submit_job(svc, key, text_spec(), priority=JobPriority.BATCH)
    assert batch.held == -(-quote(text_spec(), NANO_BANANA) // 2)  # half, as Google prices batch, rounded up
    finished = await execute_job(svc, batch.id)
    assert usual is not None and usual.charged and finished is not None and finished.charged is not None
    assert finished.charged == -(-usual.charged // 2)
