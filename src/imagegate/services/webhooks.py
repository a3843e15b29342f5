"""Webhooks: when a job that asked for one ends, POST its task to the caller, signed per Standard Webhooks.

Each key has its own signing secret (derived from the server's secret, so nothing extra is stored); the
``webhook-id`` is the job id on every attempt, so a receiver can drop repeats. Failed deliveries are retried
on a backoff schedule, from the database, so a restart loses none; a 410 Gone stops them at once.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

from imagegate.core.jobs import Job
from imagegate.core.ports import WebhookRecord, WebhookSender
from imagegate.errors import InvalidRequest
from imagegate.services.context import Services

log = logging.getLogger(__name__)

PayloadRenderer = Callable[[Job], Awaitable[dict[str, Any]]]
#: Where "now" comes from: the database's clock when several processes deliver (``JobClaims.database_now``).
Clock = Callable[[], Awaitable[datetime]]


def check_webhook_url(url: str) -> str:
    """``url`` when it is a URL a webhook can be delivered to; ``InvalidRequest`` naming ``webhook_url`` otherwise.

    Checked like a real URL, not only split: no spaces or control characters anywhere (a leading space made a
    URL no client would send to), ASCII only, http(s), a valid port, and a host that is a DNS name or an IP
    address in its one canonical spelling (``0177.0.0.1``, ``2130706433`` or ``0x7f.1`` are refused, not
    reinterpreted: resolvers disagree on what they mean).
    """

    def refuse(why: str) -> InvalidRequest:
        return InvalidRequest(f"webhook_url {why}; got {url[:200]!r}.", field="webhook_url")

    if len(url) > 2048:
        raise refuse("must be at most 2048 characters")
    if not url.isascii() or any(c.isspace() or not c.isprintable() for c in url):
        raise refuse("must be ASCII without spaces or control characters (percent-encode the rest)")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise refuse("must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise refuse("must not carry credentials")
    try:
        parts.port  # noqa: B018 - urllib validates the port only when it is read
    except ValueError:
        raise refuse("has an invalid port") from None
    host = parts.hostname or ""
    if not _valid_host(host, bracketed=parts.netloc.rpartition("@")[2].startswith("[")):
        raise refuse("must name a valid host name or IP address")
    return url


_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+")


def _valid_host(host: str, *, bracketed: bool) -> bool:
    if bracketed:
        try:
            return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
        except ValueError:
            return False
    labels = host.removesuffix(".").split(".")
    if _NUMERIC_HOST.fullmatch(host) and labels[-1].replace("x", "").isalnum() and not labels[-1].isalpha():
        # Looks like an IPv4 address: only the canonical dotted quad (no octal, hex or shortened forms).
        try:
            return str(ipaddress.IPv4Address(host)) == host
        except ValueError:
            return False
    return len(host) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def webhook_secret(svc: Services, key_id: str) -> bytes:
    return hmac.new(svc.signer.secret, b"webhook-secret:" + key_id.encode(), hashlib.sha256).digest()


def webhook_secret_text(svc: Services, key_id: str) -> str:
    """The key's secret as receivers configure it (``whsec_`` + base64, the Standard Webhooks form)."""
    return "whsec_" + base64.b64encode(webhook_secret(svc, key_id)).decode()


async def minimal_payload(job: Job) -> dict[str, Any]:
    return {"id": job.id, "status": job.status.value, "model": job.model}


async def deliver_due_webhooks(svc: Services, sender: WebhookSender, *, clock: Clock | None = None) -> int:
    """Attempt every webhook that is due; returns how many were delivered.

    A delivery is claimed by moving its ``next_attempt_at`` past the send (compare-and-set on the attempt
    count). With several processes ``clock`` must be the database's: a claim set by one machine's clock and
    read by another's that runs ahead would look expired, and the webhook would be sent twice.
    """
    now = clock or _clock_of(svc)
    render = svc.webhook_payload or minimal_payload
    async with svc.uow() as uow:
        due = await uow.webhooks.due(await now())
    delivered = 0
    for record in due:
        delivered += await _attempt(svc, sender, render, record, now)
    return delivered


def _clock_of(svc: Services) -> Clock:
    async def now() -> datetime:
        return svc.clock()

    return now


async def _attempt(
    svc: Services, sender: WebhookSender, render: PayloadRenderer, record: WebhookRecord, clock: Clock
) -> int:
    now = await clock()
    lease_s = svc.config.webhook_lease_s
    claimed = replace(record, attempts=record.attempts + 1, next_attempt_at=now + timedelta(seconds=lease_s))
    async with svc.uow() as uow:
        if not await uow.webhooks.update(claimed, expected_attempts=record.attempts):
            return 0  # another process took it
        job = await uow.jobs.get(record.job_id)
        await uow.commit()
    if job is None:
        return 0
    body = json.dumps(
        {"type": f"image.task.{job.status.value}", "timestamp": now.isoformat(), "data": await render(job)},
        separators=(",", ":"),
    )
    headers = {
        "webhook-id": job.id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(webhook_secret(svc, job.key_id)).sign(job.id, now, body),
    }
    status: int | None = None
    try:
        # Cut at half the lease, so another process never takes over a send that is still going.
        async with asyncio.timeout(lease_s / 2):
            status = await sender.send(record.url, body.encode(), headers)
        error = None if 200 <= status < 300 else f"the receiver answered HTTP {status}"
    except TimeoutError:
        error = f"the receiver did not answer within {lease_s / 2:g} s"
    except Exception as exc:  # any failure to get an answer is one failed attempt
        error = f"{type(exc).__name__}: {exc}"[:500]
    finished = await clock()
    delays = svc.config.webhook_retry_delays_s
    if error is None:
        outcome = replace(claimed, state="delivered", next_attempt_at=None, last_error=None, finished_at=finished)
    elif status == 410 or claimed.attempts > len(delays):
        outcome = replace(claimed, state="failed", next_attempt_at=None, last_error=error, finished_at=finished)
        log.warning("webhook of job %s given up after %d attempts: %s", job.id, claimed.attempts, error)
    else:
        retry_at = finished + timedelta(seconds=delays[claimed.attempts - 1])
        outcome = replace(claimed, next_attempt_at=retry_at, last_error=error)
    async with svc.uow() as uow:
        await uow.webhooks.update(outcome, expected_attempts=claimed.attempts)
        await uow.commit()
    return 1 if error is None else 0
