"""Accept a request: check it against the model, store its images, record the job, hand it to the queue."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import replace

from imagegate.core.capabilities import Feature, ModelSpec
from imagegate.core.checks import check_job
from imagegate.core.ids import new_id
from imagegate.core.jobs import Job, JobPriority, JobSpec, JobStatus
from imagegate.core.ports import ApiKey, WebhookRecord
from imagegate.errors import ModelNotFound, Unsupported
from imagegate.routing.router import Router
from imagegate.services.billing import batch_price, hold_for, place_hold
from imagegate.services.context import Services
from imagegate.services.idempotency import held_claim, link_job
from imagegate.services.inputs import check_spec_inputs, check_text
from imagegate.services.spec_codec import save_spec
from imagegate.services.webhooks import check_webhook_url


def resolve_model(svc: Services, name: str) -> ModelSpec:
    model = svc.catalog.resolve(name)
    if model is None:
        raise ModelNotFound(f"model {name} is not offered by this server", field="model")
    return model


def check_spec(
    spec: JobSpec,
    model: ModelSpec,
    max_n: int,
    router: Router | None = None,
    fields: Mapping[str, str] | None = None,
) -> None:
    """The one capability check (``core.checks``), against the model and then against the deployments that
    could serve it; the first violation is raised naming the caller's field (``fields`` maps JobSpec fields to
    the dialect's own names)."""
    violations = check_job(spec, model, max_n=max_n)
    if not violations and router is not None:
        violations = router.violations(spec, model)
    if violations:
        first = violations[0]
        raise Unsupported(first.explained, field=(fields or {}).get(first.field, first.field))


#: Seeds stay below 2**31 (Google's int32) even after adding a slot index.
_SEED_LIMIT = 2**31


def with_base_seed(spec: JobSpec, model: ModelSpec, max_n: int) -> JobSpec:
    """An unseeded job draws one random base seed, stored with it (slot i uses base + i), so identical unseeded
    requests and the n images of one request differ, and a retried job keeps its seeds."""
    if spec.seed is not None or not model.supports(Feature.SEED):
        return spec
    return replace(spec, seed=secrets.randbelow(_SEED_LIMIT - max_n), seed_drawn=True)


async def submit_job(
    svc: Services,
    principal: ApiKey,
    spec: JobSpec,
    *,
    request_id: str | None = None,
    webhook_url: str | None = None,
    priority: JobPriority = JobPriority.ASYNC,
    job_id: str | None = None,
    fields: Mapping[str, str] | None = None,
) -> Job:
    """Accept one job; ``priority`` says who waits for it (sync callers pass ``INTERACTIVE``)."""
    held = held_claim()
    if held is not None and held.adopt_job_id is not None:
        # A retry of an Idempotency-Key request whose first attempt died after creating its job: that job is the
        # answer (it was recovered and run, or is running); nothing new is held, created or charged.
        async with svc.uow() as uow:
            adopted = await uow.jobs.get(held.adopt_job_id)
        if adopted is not None and adopted.key_id == principal.id:
            return adopted
    model = resolve_model(svc, spec.model)
    check_spec(spec, model, svc.config.max_n, svc.router, fields)
    check_spec_inputs(spec, svc.config)  # before any hold: text that cannot be stored, hostile images
    spec = with_base_seed(spec, model, svc.config.max_n)
    if webhook_url is not None:
        check_text(webhook_url, "webhook_url")
        check_webhook_url(webhook_url)
    if svc.limiter is not None:  # after validation: a malformed request does not use up the quota
        await svc.limiter.check(principal.id)
    if svc.backlog is not None:  # a full queue answers 429 now rather than a timeout later
        svc.backlog(model.id)
    job = Job(
        id=job_id or new_id("job"),  # a dialect whose ids have a schema of their own may choose one
        key_id=principal.id,
        model=model.id,
        status=JobStatus.QUEUED,
        created_at=svc.clock(),
        n=spec.n,
        dialect=spec.dialect,
        request_id=request_id,
        held=batch_price(hold_for(principal, spec, model, svc.router), priority, svc.config.batch_price_percent),
        priority=priority,
    )
    spec_doc = await save_spec(spec, svc.store)
    async with svc.uow() as uow:
        await uow.jobs.add(job, spec_doc)
        await place_hold(uow, job, job.created_at)  # refused for money: the block rolls back, nothing is queued
        if held is not None:
            await link_job(uow, held, job.id)  # a retry after a crash answers from this job, never makes another
        if webhook_url is not None:
            await uow.webhooks.add(WebhookRecord(job.id, principal.id, webhook_url, created_at=job.created_at))
        await uow.commit()
    await svc.queue.enqueue(job.id, int(job.priority))
    return job
