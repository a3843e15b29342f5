"""Webhook delivery: signed per Standard Webhooks, only for ended jobs, retried on a schedule, given up cleanly."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from imagegate.core.jobs import JobStatus
from imagegate.errors import InvalidRequest
from imagegate.fetching import FetchPolicy
from imagegate.fetching.webhook_sender import WebhookSender
from imagegate.services import accounts
from imagegate.services.context import ServiceConfig
from imagegate.services.execute import execute_job
from imagegate.services.submit import submit_job
from imagegate.services.tasks import cancel_job
from imagegate.services.webhooks import deliver_due_webhooks, webhook_secret_text

from .conftest import text_spec


class FakeSender:
    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []

    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.calls.append((url, body, headers))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return answer


async def _job_with_webhook(svc, url: str = "https://hooks.example/imagegate"):  # type: ignore[no-untyped-def]
    principal = (await accounts.create_key(svc, name="hooks")).record
    return principal, await submit_job(svc, principal, text_spec(), webhook_url=url)


async def _webhook(svc, job_id):  # type: ignore[no-untyped-def]
    async with svc.uow() as uow:
        return await uow.webhooks.get(job_id)


async def test_delivered_once_the_job_ends_and_signed(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    sender = FakeSender()
    principal, job = await _job_with_webhook(svc)
    assert await deliver_due_webhooks(svc, sender) == 0 and not sender.calls  # still queued: nothing to say
    await execute_job(svc, job.id)
    assert await deliver_due_webhooks(svc, sender) == 1
    [(url, body, headers)] = sender.calls
    assert url == "https://hooks.example/imagegate" and headers["webhook-id"] == job.id
    payload = Webhook(webhook_secret_text(svc, principal.id)).verify(body, headers)
    assert payload["type"] == "image.task.succeeded" and payload["data"]["id"] == job.id
    assert (await _webhook(svc, job.id)).state == "delivered"
    assert await deliver_due_webhooks(svc, sender) == 0 and len(sender.calls) == 1  # never twice


async def test_each_key_signs_with_its_own_secret(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    sender = FakeSender()
    _, job = await _job_with_webhook(svc)
    other = (await accounts.create_key(svc, name="other")).record
    await execute_job(svc, job.id)
    await deliver_due_webhooks(svc, sender)
    [(_, body, headers)] = sender.calls
    with pytest.raises(Exception, match="signature"):
        Webhook(webhook_secret_text(svc, other.id)).verify(body, headers)


async def test_failures_are_retried_on_the_schedule_then_given_up(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services(config=ServiceConfig(webhook_retry_delays_s=(10.0, 60.0)))
    now = svc.clock()
    svc.clock = lambda: now
    sender = FakeSender(500, ConnectionError("refused"), 503)
    _, job = await _job_with_webhook(svc)
    await execute_job(svc, job.id)

    assert await deliver_due_webhooks(svc, sender) == 0
    first = await _webhook(svc, job.id)
    assert (first.attempts, first.next_attempt_at, first.last_error) == (
        1,
        now + timedelta(seconds=10),
        "the receiver answered HTTP 500",
    )
    assert await deliver_due_webhooks(svc, sender) == 0 and len(sender.calls) == 1  # not due yet

    now += timedelta(seconds=10)
    await deliver_due_webhooks(svc, sender)
    second = await _webhook(svc, job.id)
    assert second.attempts == 2 and "refused" in (second.last_error or "")
    assert second.next_attempt_at == now + timedelta(seconds=60)

    now += timedelta(seconds=60)
    await deliver_due_webhooks(svc, sender)
    third = await _webhook(svc, job.id)
    assert (third.state, third.attempts, third.next_attempt_at) == ("failed", 3, None)
    now += timedelta(days=1)
    await deliver_due_webhooks(svc, sender)
    assert len(sender.calls) == 3


async def test_gone_stops_at_once(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    sender = FakeSender(410)
    _, job = await _job_with_webhook(svc)
    await execute_job(svc, job.id)
    await deliver_due_webhooks(svc, sender)
    assert (await _webhook(svc, job.id)).state == "failed"


async def test_cancelled_jobs_are_announced(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    sender = FakeSender()
    principal, job = await _job_with_webhook(svc)
    await cancel_job(svc, principal, job.id)
    await deliver_due_webhooks(svc, sender)
    [(_, body, _)] = sender.calls
    assert json.loads(body)["type"] == f"image.task.{JobStatus.CANCELLED.value}"


async def test_a_webhook_claimed_elsewhere_is_left_alone(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    _, job = await _job_with_webhook(svc)
    await execute_job(svc, job.id)
    async with svc.uow() as uow:  # another process counted an attempt after we read the row
        record = await uow.webhooks.get(job.id)
        assert record is not None
        from dataclasses import replace

        await uow.webhooks.update(replace(record, attempts=1), expected_attempts=0)
        await uow.commit()
    stale = record
    sender = FakeSender()
    from imagegate.services.webhooks import _attempt, _clock_of

    assert await _attempt(svc, sender, lambda job: _payload(job), stale, _clock_of(svc)) == 0 and not sender.calls


async def _payload(job):  # type: ignore[no-untyped-def]
    return {"id": job.id}


@pytest.mark.parametrize("url", ["ftp://x/y", "not a url", "https://user:pw@hooks.example/", "http:///nohost"])
async def test_bad_webhook_urls_are_refused_at_submission(make_services, url: str) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    principal = (await accounts.create_key(svc, name="bad")).record
    with pytest.raises(InvalidRequest) as caught:
        await submit_job(svc, principal, text_spec(), webhook_url=url)
    assert caught.value.field == "webhook_url"


async def test_the_sender_refuses_private_addresses() -> None:
    sender = WebhookSender(FetchPolicy())
    try:
        with pytest.raises(Exception, match=r"(?i)loopback|not allowed|refused"):
            await sender.send("http://127.0.0.1:9/hook", b"{}", {})
    finally:
        await sender.aclose()
