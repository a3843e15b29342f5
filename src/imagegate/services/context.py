"""What every use case is handed: the ports, the model catalog, the router and the tunables."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from imagegate.core.capabilities import ModelCatalog
from imagegate.core.jobs import Job
from imagegate.core.ports import JobEvents, JobQueue, ObjectStore, RequestQuota, Transcoder, UnitOfWorkFactory
from imagegate.metrics import Metrics
from imagegate.routing.router import Router
from imagegate.services.handoff import ResultHandoff
from imagegate.services.key_cache import KeyCache
from imagegate.services.signing import FileUrlSigner


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ServiceConfig:
    job_lease_s: float = 300.0
    max_attempts: int = 3
    sync_timeout_s: float = 600.0
    poll_interval_s: float = 1.0  # waiters re-read the database this often, in case an event was missed
    max_n: int = 10
    max_input_image_bytes: int = 20 * 1024 * 1024  # one input image, as sent
    max_input_pixels: int = 40_000_000  # one input image, as its header declares (decompression bombs)
    file_retention_s: float | None = 7 * 24 * 3600.0  # None: keep output images forever
    upload_max_bytes: int = 100 * 1024 * 1024  # one file uploaded through the Gemini Files API
    upload_ttl_s: float = 48 * 3600.0  # uploaded files expire after this, as Google's do
    batch_price_percent: int = 50  # what a batch job costs, in percent of the usual price (Google's: half)
    batch_ttl_s: float = 48 * 3600.0  # a batch unfinished this long after creation expires, as Google's do
    # Waits between webhook attempts; after the last one fails, delivery is given up.
    webhook_retry_delays_s: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0)
    webhook_lease_s: float = 60.0  # one process's attempt at a webhook; others leave it alone meanwhile


@dataclass
class Services:
    uow: UnitOfWorkFactory
    store: ObjectStore
    queue: JobQueue
    events: JobEvents
    router: Router
    catalog: ModelCatalog
    config: ServiceConfig = field(default_factory=ServiceConfig)
    clock: Callable[[], datetime] = utc_now
    limiter: RequestQuota | None = None  # None: no per-key quota
    signer: FileUrlSigner = field(default_factory=FileUrlSigner)
    transcode: Transcoder | None = None  # needed only when a job asks for another format than the provider's
    metrics: Metrics | None = None  # None: nothing counted (tests, one-off CLI runs)
    # How a webhook shows its job (set by the web app, which knows the dialects); None: id and status only.
    webhook_payload: Callable[[Job], Awaitable[dict[str, Any]]] | None = None
    handoff: ResultHandoff = field(default_factory=ResultHandoff)  # finished jobs to waiters in this process
    key_cache: KeyCache = field(default_factory=lambda: KeyCache(ttl_s=0))  # off unless the server sets a TTL
    # Refuses a submission of a model whose queue is full (RateLimited with Retry-After); None: no limit.
    backlog: Callable[[str], None] | None = None
