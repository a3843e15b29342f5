"""submit_job / execute_job / wait_for_job / recover_jobs over a real SQLite database."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from imagegate.core.images import ImageInput
from imagegate.core.jobs import FinishReason, Generation, JobStatus, Role, Turn, Usage
from imagegate.errors import (
    InvalidRequest,
    ModelNotFound,
    NotFound,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from imagegate.services import accounts
from imagegate.services.context import ServiceConfig
from imagegate.services.execute import execute_job
from imagegate.services.queries import get_job, load_job_images, wait_for_job
from imagegate.services.recovery import recover_jobs
from imagegate.services.spec_codec import load_spec
from imagegate.services.submit import submit_job

from .conftest import FakeProvider, PNG_1x1, text_spec


async def _principal(svc):  # type: ignore[no-untyped-def]
    return (await accounts.create_key(svc, name="t")).record


async def test_submit_then_execute_stores_the_image_and_finishes(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    principal = await _principal(svc)
    job = await submit_job(svc, principal, text_spec(aspect_ratio="16:9"))
    assert job.status is JobStatus.QUEUED
    assert await svc.queue.dequeue() == job.id

    finished = await execute_job(svc, job.id)
    assert finished is not None and finished.status is JobStatus.SUCCEEDED
    assert finished.attempts == 1 and finished.deployment == "dep0"
    [image] = finished.images
    assert (image.width, image.height) == (1344, 768)
    assert (await load_job_images(svc, finished))[image.file_id] == PNG_1x1
    assert (await get_job(svc, principal, job.id)).status is JobStatus.SUCCEEDED
    assert await execute_job(svc, job.id) is None  # a second delivery does nothing


async def test_input_images_survive_the_round_trip_through_storage(make_services) -> None:  # type: ignore[no-untyped-def]
    provider = FakeProvider()
    svc = make_services(provider)
    image = ImageInput.from_bytes(PNG_1x1)
    spec = text_spec().__class__(
        model="gemini-2.5-flash-image",
        turns=(Turn(Role.USER, ("draw", image)), Turn(Role.MODEL, ("ok", image)), Turn(Role.USER, ("again",))),
        system_instruction="be brief",
    )
    job = await submit_job(svc, await _principal(svc), spec)
    await execute_job(svc, job.id)
    [(seen, upstream)] = provider.calls
    assert replace(seen, seed=None, seed_drawn=False) == spec and upstream == "gemini-2.5-flash-image"
    assert seen.seed_drawn and seen.seed is not None  # an unseeded job draws its base seed once, at submission


async def test_fan_out_runs_n_calls_and_sums_usage(make_services) -> None:  # type: ignore[no-untyped-def]
    provider = FakeProvider()
    svc = make_services(provider)
    job = await submit_job(svc, await _principal(svc), text_spec(n=3))
    finished = await execute_job(svc, job.id)
    assert finished is not None and len(finished.images) == 3 and len(provider.calls) == 3
    assert finished.usage.output_image_tokens == 3 * 1290
    seeds = sorted(spec.seed or 0 for spec, _ in provider.calls)  # distinct pictures, not three copies
    assert seeds == [seeds[0], seeds[0] + 1, seeds[0] + 2]  # one drawn base seed, slot i at base + i


async def test_partial_success_keeps_what_was_made(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services(FakeProvider(UpstreamUnavailable("down")))
    job = await submit_job(svc, await _principal(svc), text_spec(n=2))
    finished = await execute_job(svc, job.id)
    assert finished is not None and finished.status is JobStatus.SUCCEEDED
    assert len(finished.images) == 1
    assert sorted(r.error.code if r.error else "ok" for r in finished.results) == ["ok", "upstream_unavailable"]


async def test_failover_to_the_next_deployment(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services(FakeProvider(default=UpstreamUnavailable("down")), FakeProvider())
    job = await submit_job(svc, await _principal(svc), text_spec())
    finished = await execute_job(svc, job.id)
    assert finished is not None and finished.status is JobStatus.SUCCEEDED and finished.deployment == "dep1"


async def test_a_bad_request_is_not_retried_elsewhere(make_services) -> None:  # type: ignore[no-untyped-def]
    second = FakeProvider()
    svc = make_services(FakeProvider(InvalidRequest("no such thing")), second)
    job = await submit_job(svc, await _principal(svc), text_spec())
    finished = await execute_job(svc, job.id)
    assert finished is not None and finished.status is JobStatus.FAILED
    assert finished.error is not None and finished.error.code == "invalid_request" and not second.calls


async def test_every_upstream_down_fails_with_the_last_error(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services(FakeProvider(default=UpstreamRateLimited("slow down", retry_after_s=34)))
    job = await submit_job(svc, await _principal(svc), text_spec())
    finished = await execute_job(svc, job.id)
    assert finished is not None and finished.status is JobStatus.FAILED
    assert finished.error is not None
    assert (finished.error.code, finished.error.retry_after_s) == ("upstream_rate_limited", 34)


async def test_a_refusal_is_a_finished_job_without_images(make_services) -> None:  # type: ignore[no-untyped-def]
    refusal = Generation(images=(), finish_reason=FinishReason.IMAGE_SAFETY, usage=Usage(input_text_tokens=7))
    svc = make_services(FakeProvider(refusal))
    job = await submit_job(svc, await _principal(svc), text_spec())
    finished = await execute_job(svc, job.id)
    assert finished is not None and finished.status is JobStatus.SUCCEEDED and not finished.images
    assert finished.results[0].finish_reason == "IMAGE_SAFETY" and finished.usage.input_text_tokens == 7


async def test_unexpected_provider_crash_fails_the_job_instead_of_hanging(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services(FakeProvider(RuntimeError("bug")))
    job = await submit_job(svc, await _principal(svc), text_spec())
    finished = await execute_job(svc, job.id)
    assert finished is not None and finished.status is JobStatus.FAILED
    assert (
        # a crashing provider is treated as a failing upstream (so another deployment may serve); no internals leak
        finished.error is not None
        and finished.error.code == "upstream_unavailable"
        and "bug" not in finished.error.message
    )


async def test_submit_checks_model_count_and_ratio(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    principal = await _principal(svc)
    with pytest.raises(ModelNotFound):
        await submit_job(svc, principal, text_spec().__class__(model="imagen-9", turns=text_spec().turns))
    with pytest.raises(InvalidRequest, match="between 1 and 10"):
        await submit_job(svc, principal, text_spec(n=11))
    with pytest.raises(InvalidRequest, match="not supported"):
        await submit_job(svc, principal, text_spec(aspect_ratio="1:4"))
    image = ImageInput.from_bytes(PNG_1x1)
    four = text_spec().__class__(model="nano-banana", turns=(Turn(Role.USER, ("x", image, image, image, image)),))
    with pytest.raises(InvalidRequest, match="at most 3 input images"):
        await submit_job(svc, principal, four)


async def test_wait_returns_when_a_worker_finishes(make_services) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    svc = make_services()
    job = await submit_job(svc, await _principal(svc), text_spec())

    async def worker() -> None:
        await execute_job(svc, await svc.queue.dequeue())

    task = asyncio.create_task(worker())
    finished = await wait_for_job(svc, job.id, timeout_s=30)
    await task
    assert finished.status is JobStatus.SUCCEEDED


async def test_wait_gives_up_with_a_timeout_error(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services(config=ServiceConfig(poll_interval_s=0.01, sync_timeout_s=0.05))
    job = await submit_job(svc, await _principal(svc), text_spec())
    with pytest.raises(UpstreamTimeout, match="goes on"):
        await wait_for_job(svc, job.id)


async def test_another_keys_job_is_not_found(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    owner, other = await _principal(svc), await _principal(svc)
    job = await submit_job(svc, owner, text_spec())
    with pytest.raises(NotFound):
        await get_job(svc, other, job.id)


async def test_a_job_left_running_by_a_dead_worker_is_run_again(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    job = await submit_job(svc, await _principal(svc), text_spec())
    await svc.queue.dequeue()
    now = svc.clock()
    async with svc.uow() as uow:  # a worker claims the job, then its process dies
        assert await uow.jobs.claim_with_spec(job.id, now=now, lease_until=now + timedelta(seconds=60)) is not None
        await uow.commit()

    assert await recover_jobs(svc) == (0, 0)  # the lease still runs: leave it alone
    assert await recover_jobs(svc, stale_before=now + timedelta(seconds=61)) == (1, 0)
    assert await svc.queue.dequeue() == job.id
    finished = await execute_job(svc, job.id)
    assert finished is not None and finished.status is JobStatus.SUCCEEDED and finished.attempts == 2


async def test_a_job_whose_workers_keep_dying_fails_for_good(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services(config=ServiceConfig(max_attempts=1))
    job = await submit_job(svc, await _principal(svc), text_spec())
    now = svc.clock()
    async with svc.uow() as uow:
        await uow.jobs.claim_with_spec(job.id, now=now, lease_until=now + timedelta(seconds=1))
        await uow.commit()
    assert await recover_jobs(svc, stale_before=now + timedelta(seconds=2)) == (0, 1)
    failed = await wait_for_job(svc, job.id, timeout_s=1)
    assert failed.status is JobStatus.FAILED and failed.error is not None and "stopped" in failed.error.message


async def test_a_worker_that_lost_its_lease_cannot_overwrite_the_new_attempt(make_services) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    gate = asyncio.Event()

    class SlowProvider(FakeProvider):
        async def generate(self, spec, model, upstream_model):  # type: ignore[no-untyped-def]
            await gate.wait()
            return await super().generate(spec, model, upstream_model)

    svc = make_services(SlowProvider())
    job = await submit_job(svc, await _principal(svc), text_spec())
    first = asyncio.create_task(execute_job(svc, job.id))
    while (await wait_for_job_status(svc, job.id)) is not JobStatus.RUNNING:
        await asyncio.sleep(0)
    # The lease is declared lost: the job is requeued and taken by a second attempt.
    assert await recover_jobs(svc, stale_before=svc.clock() + timedelta(days=1)) == (1, 0)
    second = asyncio.create_task(execute_job(svc, job.id))
    gate.set()
    results = await asyncio.gather(first, second)
    assert results[0] is None and results[1] is not None and results[1].attempts == 2
    async with svc.uow() as uow:
        stored = await uow.jobs.get(job.id)
    assert stored is not None and stored.attempts == 2 and len(stored.images) == 1


async def wait_for_job_status(svc, job_id):  # type: ignore[no-untyped-def]
    async with svc.uow() as uow:
        job = await uow.jobs.get(job_id)
    return job.status


async def test_spec_images_are_stored_once_by_content(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    image = ImageInput.from_bytes(PNG_1x1)
    spec = text_spec().__class__(
        model="gemini-2.5-flash-image", turns=(Turn(Role.USER, ("a", image)), Turn(Role.USER, ("b", image)))
    )
    job = await submit_job(svc, await _principal(svc), spec)
    async with svc.uow() as uow:
        doc = await uow.jobs.get_spec_doc(job.id)
    assert doc is not None
    digests = {p["image"] for t in doc["turns"] for p in t["parts"] if "image" in p}
    assert len(digests) == 1
    loaded = await load_spec(doc, svc.store)
    assert replace(loaded, seed=None, seed_drawn=False) == spec and loaded.seed_drawn


async def test_cancel_a_queued_job_and_it_never_runs(make_services) -> None:  # type: ignore[no-untyped-def]
    from imagegate.errors import Conflict
    from imagegate.services.tasks import cancel_job

    provider = FakeProvider()
    svc = make_services(provider)
    principal = await _principal(svc)
    job = await submit_job(svc, principal, text_spec())
    cancelled = await cancel_job(svc, principal, job.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert await execute_job(svc, job.id) is None and not provider.calls
    with pytest.raises(Conflict):
        await cancel_job(svc, principal, job.id)


async def test_cancel_a_running_job_discards_its_images(make_services) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from imagegate.services.tasks import cancel_job

    gate = asyncio.Event()

    class SlowProvider(FakeProvider):
        async def generate(self, spec, model, upstream_model):  # type: ignore[no-untyped-def]
            await gate.wait()
            return await super().generate(spec, model, upstream_model)

    svc = make_services(SlowProvider())
    principal = await _principal(svc)
    job = await submit_job(svc, principal, text_spec())
    running = asyncio.create_task(execute_job(svc, job.id))
    while (await wait_for_job_status(svc, job.id)) is not JobStatus.RUNNING:
        await asyncio.sleep(0)
    await cancel_job(svc, principal, job.id)
    gate.set()
    assert await running is None
    async with svc.uow() as uow:
        stored = await uow.jobs.get(job.id)
    assert stored is not None and stored.status is JobStatus.CANCELLED and not stored.images
