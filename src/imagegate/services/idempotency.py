"""The ``Idempotency-Key`` rules: a retry gets the first answer, never a second job or a second charge.

``begin`` decides what a request carrying a key may do: the first one claims the key (``New``) and later
``complete``s it with its answer, or ``abandon``s it when there is no answer worth keeping (a 5xx, a crash), so
that a retry runs again. While the claim is held, the same key is a conflict; once answered, the same request
is a ``Replay`` and any other request under that key is a mismatch. Entries are scoped (by the caller: a hash
of its API key), so two callers never see each other's keys, and forgotten ``ttl`` after they were answered.

A request that creates a job links the entry to it in the job's own transaction (``link_job``, fenced by the
claim's token; the holder is found through a context variable the middleware sets). A holder that died after
that point (a SIGKILL mid-job) leaves a linked claim that never completes: once the job is terminal (the
recovered job finished), or the claim is older than ``stale_after``, a retry takes the claim over and *adopts*
the job (``New.adopt_job_id``): it runs the same route again, ``submit_job`` hands back the linked job instead
of creating one, and the route renders that job's one answer. Nothing is created or charged twice. A claim
with no job is older than a request takes to reach its job only when its holder died before submitting
(``unlinked_stale_after``): it is taken over and the retry runs afresh.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import timedelta

from imagegate.core.ids import new_id
from imagegate.core.jobs import JobStatus
from imagegate.core.ports import IdempotencyRecord, UnitOfWork
from imagegate.errors import IdempotencyConflict, IdempotencyMismatch
from imagegate.services.context import Services

log = logging.getLogger(__name__)

#: A claim is never taken over while its request may still be legitimately waiting for a sync job.
_SYNC_GRACE = timedelta(minutes=1)
#: Answers that say "not now" rather than answer the request: nothing ran, and a later retry may well succeed
#: (a key or its credits fixed, a quota refilled, a conflict resolved), so they are not kept for replay.
_NOT_NOW = frozenset({401, 402, 403, 408, 409, 425, 429})
#: Rounds of read-then-write before giving up on a key that other requests keep changing under us.
_MAX_ROUNDS = 3


@dataclass(frozen=True)
class IdempotencyPolicy:
    ttl: timedelta = timedelta(hours=24)  # how long an answer is replayed
    stale_after: timedelta = timedelta(minutes=10)  # a claim with a job older than this lost its process
    # A claim with no job yet: parsing and fetching inputs take seconds, so older means its holder died.
    unlinked_stale_after: timedelta = timedelta(minutes=2)


@dataclass(frozen=True)
class New:
    """This request holds the key: run it, then ``complete`` or ``abandon`` with this claim."""

    claim: IdempotencyRecord
    adopt_job_id: str | None = None  # a dead holder's job: answer from it instead of creating another


@dataclass(frozen=True)
class Held:
    """The claim the current request runs under (see ``holding``)."""

    claim: IdempotencyRecord
    adopt_job_id: str | None = None


_HELD: ContextVar[Held | None] = ContextVar("imagegate_idempotency_claim", default=None)


@contextmanager
def holding(outcome: New) -> Iterator[None]:
    """Run the request under ``outcome``'s claim: ``submit_job`` links its job to it, or adopts the dead one's."""
    reset = _HELD.set(Held(outcome.claim, outcome.adopt_job_id))
    try:
        yield
    finally:
        _HELD.reset(reset)


def held_claim() -> Held | None:
    return _HELD.get()


async def link_job(uow: UnitOfWork, held: Held, job_id: str) -> None:
    """Link the claim to the job being created, in the job's transaction; a lost claim aborts the submission."""
    claim = held.claim
    if not await uow.idempotency.link_job(claim.scope, claim.key, job_id, expected_token=claim.token):
        raise _in_progress()  # a retry took the claim over: it runs the request, this one must not


@dataclass(frozen=True)
class Replay:
    """The key was answered before, for this same request: send ``record``'s answer again."""

    record: IdempotencyRecord


async def begin(
    svc: Services, scope: str, key: str, fingerprint: str, *, policy: IdempotencyPolicy | None = None
) -> New | Replay:
    """Claim ``key`` for this request, or say how it was answered; raises ``IdempotencyConflict`` (the first
    request is still running) or ``IdempotencyMismatch`` (the key came with another request)."""
    policy = policy or IdempotencyPolicy()
    now = svc.clock()
    stale_after = max(policy.stale_after, timedelta(seconds=svc.config.sync_timeout_s) + _SYNC_GRACE)
    claim = IdempotencyRecord(
        scope=scope,
        key=key,
        fingerprint=fingerprint,
        token=new_id("idem"),
        created_at=now,
        expires_at=now + policy.ttl,
    )
    for _ in range(_MAX_ROUNDS):
        async with svc.uow() as uow:
            existing = await uow.idempotency.get(scope, key)
            if existing is None:
                won = await uow.idempotency.add(claim)
            elif existing.expires_at <= now:
                won = await uow.idempotency.replace(claim, expected_token=existing.token)
            elif existing.fingerprint != fingerprint:
                # Checked before the state: another request under a used key is the caller's bug, running or not.
                raise IdempotencyMismatch(
                    "This Idempotency-Key was already used with a different request. Use a new key for a new request."
                )
            elif existing.completed:
                return Replay(existing)
            elif existing.job_id is not None:
                job = await uow.jobs.get(existing.job_id)
                if job is not None and not job.status.terminal and existing.created_at + stale_after > now:
                    raise _in_progress()
                log.warning("idempotency key %r: answering from job %s of a request that stopped", key, existing.job_id)
                adopted = replace(claim, job_id=existing.job_id)
                if await uow.idempotency.replace(adopted, expected_token=existing.token):
                    await uow.commit()
                    return New(adopted, adopt_job_id=existing.job_id if job is not None else None)
                won = False
            elif existing.created_at + policy.unlinked_stale_after <= now:
                log.warning("taking over idempotency key %r: its first request stopped before creating a job", key)
                won = await uow.idempotency.replace(claim, expected_token=existing.token)
            else:
                raise _in_progress()
            if won:
                await uow.commit()
                return New(claim)
        # Another request changed the entry between our read and our write: read it again.
    raise _in_progress()


async def complete(
    svc: Services,
    claim: IdempotencyRecord,
    status: int,
    headers: tuple[tuple[str, str], ...],
    body: bytes,
    *,
    policy: IdempotencyPolicy | None = None,
) -> bool:
    """Keep the answer for retries; True when kept. A 5xx (the failure may pass, and nothing was charged for it)
    or a "not now" (auth, credits, quota, conflict) is not kept: the claim is released, so a retry runs again."""
    if status >= 500 or status in _NOT_NOW:
        await abandon(svc, claim)
        return False
    now = svc.clock()
    answered = replace(
        claim,
        status=status,
        headers=headers,
        body=body,
        completed_at=now,
        expires_at=now + (policy or IdempotencyPolicy()).ttl,
    )
    async with svc.uow() as uow:
        kept = await uow.idempotency.replace(answered, expected_token=claim.token)
        await uow.commit()
    if not kept:
        log.warning("idempotency key %r was taken over before its first request answered", claim.key)
    return kept


async def abandon(svc: Services, claim: IdempotencyRecord) -> bool:
    """Release the key without an answer, so the next request with it runs; False when it was not ours anymore
    or when it is kept: a claim linked to a job that may still deliver (running, or succeeded) stays, so that a
    retry answers from that job instead of creating and charging a second one."""
    async with svc.uow() as uow:
        entry = await uow.idempotency.get(claim.scope, claim.key)
        if entry is not None and entry.token == claim.token and entry.job_id is not None:
            job = await uow.jobs.get(entry.job_id)
            if job is not None and job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
                return False
        released = await uow.idempotency.delete(claim.scope, claim.key, expected_token=claim.token)
        await uow.commit()
    return released


async def purge_expired(svc: Services) -> int:
    """Forget entries past their time (``begin`` already ignores them; this only frees the space)."""
    async with svc.uow(scan=True) as uow:
        removed = await uow.idempotency.delete_expired(svc.clock())
        await uow.commit()
    return removed


def _in_progress() -> IdempotencyConflict:
    return IdempotencyConflict(
        "A request with this Idempotency-Key is still being processed. Retry once it has finished."
    )
