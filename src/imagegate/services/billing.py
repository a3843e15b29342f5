"""Billing: quote a request, hold that much at submission, and settle when the job ends.

Settling captures what was delivered (images at the model's price, plus the input tokens of the calls that
delivered) and releases the rest of the hold; a refusal, an upstream failure or a cancellation costs nothing.
Every movement is a ledger row written in the same transaction as the job change it belongs to, and a job
has at most one hold, one capture and one release, so nothing is charged or refunded twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from imagegate.core.capabilities import ModelSpec, Prices, estimate_usage
from imagegate.core.ids import new_id
from imagegate.core.jobs import Job, JobPriority, JobSpec, JobStatus, Modality
from imagegate.core.money import format_amount
from imagegate.core.ports import ApiKey, LedgerEntry, UnitOfWork
from imagegate.errors import InsufficientCredits
from imagegate.routing.router import Router


def token_cost(tokens: int, per_million: int) -> int:
    """Micro-units for ``tokens`` at ``per_million`` micro-units per million, rounded up (never free by rounding)."""
    return -(-tokens * per_million // 1_000_000)


def prices_of(model: ModelSpec, router: Router | None, deployment: str | None) -> Prices:
    """The prices of work ``deployment`` did: its own for this model when it has some, else the model's."""
    for candidate in router.deployments if router is not None and deployment is not None else ():
        if candidate.name == deployment and model.id in candidate.prices:
            return candidate.prices[model.id]
    return model.prices


def dearest_prices(model: ModelSpec, router: Router | None, only: str | None = None) -> Prices:
    """Each price at its highest over the deployments that may serve ``model`` (just ``only``, for a job that
    names its deployment): what a hold must cover."""
    candidates = router.candidates(model.id, only) if router else []
    options = [prices_of(model, router, c.deployment.name) for c in candidates]
    options = options or [model.prices]
    return Prices(
        max(p.per_image for p in options),
        max(p.per_million_input_tokens for p in options),
        max(p.per_million_output_tokens for p in options),
        tuple((name, max(p.image_price(name) for p in options)) for name in model.resolution_names),
    )


def quote(spec: JobSpec, model: ModelSpec, router: Router | None = None) -> int:
    """The most ``spec`` can cost: every slot delivering one image, with the whole conversation as input,
    on the dearest deployment that may serve it."""
    prices = dearest_prices(model, router, spec.deployment)
    usage = estimate_usage(spec, model)
    # responseModalities ["TEXT"] asks for no image, so none is held for (or, at settlement, charged).
    per_image = (
        prices.image_price(spec.image_size or model.default_resolution) if Modality.IMAGE in spec.modalities else 0
    )
    return spec.n * (per_image + token_cost(usage.input_tokens, prices.per_million_input_tokens))


@dataclass(frozen=True)
class Settlement:
    cost: int
    images: int
    input_tokens: int
    output_tokens: int


def batch_price(amount: int, job_priority: JobPriority, percent: int) -> int:
    """``amount`` at the batch price when the job is batch work (rounded up: never free by rounding)."""
    return -(-amount * percent // 100) if job_priority is JobPriority.BATCH else amount


def settlement(
    job: Job, model: ModelSpec | None, router: Router | None = None, *, batch_percent: int = 100
) -> Settlement:
    """What a finished job costs: only the slots that delivered images count, each at the prices of the
    deployment that made it and of the resolution delivered (batch jobs at ``batch_percent`` of them); never
    more than was held."""
    if model is None or job.status is not JobStatus.SUCCEEDED:
        return Settlement(0, 0, 0, 0)
    cost = images = input_tokens = output_tokens = 0
    for slot in job.results:
        if not slot.images:
            continue
        prices = prices_of(model, router, slot.deployment)
        images += len(slot.images)
        input_tokens += slot.usage.input_tokens
        output_tokens += slot.usage.output_tokens
        # Each image at the price of the resolution it was delivered at (read from its size).
        cost += sum(prices.image_price(model.delivered_resolution(img.width, img.height)) for img in slot.images)
        cost += token_cost(slot.usage.input_tokens, prices.per_million_input_tokens)
        cost += token_cost(slot.usage.output_text_tokens, prices.per_million_output_tokens)
    cost = batch_price(cost, job.priority, batch_percent)
    if job.held:  # a metered key pays at most what it agreed to at submission
        cost = min(cost, job.held)
    return Settlement(cost, images, input_tokens, output_tokens)


def hold_for(principal: ApiKey, spec: JobSpec, model: ModelSpec, router: Router | None = None) -> int:
    """What to hold for ``spec``: its quote for a metered key, nothing for an unmetered one."""
    return quote(spec, model, router) if principal.metered else 0


async def place_hold(uow: UnitOfWork, job: Job, now: datetime) -> None:
    """Take ``job.held`` from its key's balance (the job row is in this transaction); refuse if it is short."""
    if job.held == 0:
        return
    balance = await uow.keys.debit(job.key_id, job.held)
    if balance is None:
        raise InsufficientCredits(
            f"insufficient balance: this request can cost up to {format_amount(job.held)}; "
            "add credits to this key or ask for fewer images."
        )
    await uow.ledger.add(LedgerEntry(new_id("led"), job.key_id, "hold", job.held, balance, now, job_id=job.id))


def with_charge(
    job: Job, model: ModelSpec | None, router: Router | None = None, *, batch_percent: int = 100
) -> tuple[Job, Settlement]:
    """The terminal ``job`` with its final price set, and the settlement to record once it is written."""
    settled = settlement(job, model, router, batch_percent=batch_percent)
    return replace(job, charged=settled.cost), settled


async def record_settlement(uow: UnitOfWork, job: Job, settled: Settlement, now: datetime) -> None:
    """Capture and release in the transaction that wrote the job's end (call only after that write succeeded)."""
    await uow.ledger.add(
        LedgerEntry(
            new_id("led"),
            job.key_id,
            "capture",
            settled.cost,
            None,
            now,
            job_id=job.id,
            images=settled.images,
            input_tokens=settled.input_tokens,
            output_tokens=settled.output_tokens,
            model=job.model,
        )
    )
    refund = job.held - settled.cost
    if refund > 0:
        balance = await uow.keys.credit(job.key_id, refund)
        await uow.ledger.add(LedgerEntry(new_id("led"), job.key_id, "release", refund, balance, now, job_id=job.id))


async def grant_credits(uow: UnitOfWork, key_id: str, amount: int, now: datetime) -> int | None:
    """Add credits to a key (and meter it from now on); the new balance, None for an unknown key."""
    balance = await uow.keys.credit(key_id, amount, meter=True)
    if balance is not None:
        await uow.ledger.add(LedgerEntry(new_id("led"), key_id, "grant", amount, balance, now))
    return balance


def displayed_price(job: Job, model: ModelSpec | None) -> int:
    """The price a task shows: the final charge once settled, else what is held, else the per-image quote."""
    if job.charged is not None:
        return job.charged
    if job.held:
        return job.held
    return job.n * model.prices.per_image if model is not None else 0
