"""The ports: what the services need from the outside world, as Protocols the adapters implement.

Persistence (keys, jobs, files behind one unit of work), object storage, job delivery, job-change
notifications and image providers. The services see only these; tests substitute in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from imagegate.core.capabilities import ModelSpec
from imagegate.core.jobs import Generation, Job, JobSpec, JobStatus


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as stored: only its hash, never the key itself."""

    id: str
    name: str
    prefix: str  # the first characters, for people to recognise a key in lists
    key_hash: str
    credits: int  # micro-units; recorded here, enforced by billing
    is_admin: bool
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A stored output image, served by id."""

    id: str
    job_id: str
    key_id: str
    storage_key: str
    mime_type: str
    size_bytes: int
    width: int
    height: int
    created_at: datetime
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """A job's callback: where to announce its end, and how delivery is going."""

    job_id: str
    key_id: str
    url: str
    created_at: datetime
    state: str = "pending"  # pending | delivered | failed (gave up)
    attempts: int = 0
    next_attempt_at: datetime | None = None  # None: as soon as the job has ended
    last_error: str | None = None
    finished_at: datetime | None = None


class KeyRepository(Protocol):
    async def add(self, key: ApiKey) -> None: ...
    async def get(self, key_id: str) -> ApiKey | None: ...
    async def find_by_hash(self, key_hash: str) -> ApiKey | None: ...
    async def list(self) -> list[ApiKey]: ...
    async def revoke(self, key_id: str, at: datetime) -> bool: ...
    async def count(self) -> int: ...


class JobRepository(Protocol):
    async def add(self, job: Job, spec_doc: Mapping[str, Any]) -> None: ...
    async def get(self, job_id: str) -> Job | None: ...
    async def get_spec_doc(self, job_id: str) -> dict[str, Any] | None: ...

    async def claim(self, job_id: str, *, now: datetime, lease_until: datetime) -> Job | None:
        """Atomically move a QUEUED job to RUNNING, counting the attempt; None when it was not QUEUED."""
        ...

    async def update(self, job: Job, *, expected_status: JobStatus, expected_attempts: int) -> bool:
        """Write ``job`` only if the row is still in ``expected_status`` at ``expected_attempts`` (fencing)."""
        ...

    async def ids_with_status(self, status: JobStatus, *, limit: int = 1000) -> list[str]:
        """Ids of jobs in ``status``, oldest first (so recovery re-delivers in arrival order)."""
        ...

    async def list_for_key(self, key_id: str, *, limit: int, before: str | None = None) -> list[Job]:
        """A key's jobs, newest first; ``before`` (a job id) continues a previous page after that job."""
        ...

    async def expired_leases(self, now: datetime, *, limit: int = 1000) -> list[Job]:
        """RUNNING jobs whose lease ran out: their worker died or lost contact."""
        ...


class FileRepository(Protocol):
    async def add(self, record: FileRecord) -> None: ...
    async def get(self, file_id: str) -> FileRecord | None: ...

    async def expired(self, now: datetime, *, limit: int = 500) -> list[FileRecord]:
        """Files whose retention ended before ``now``, oldest first."""
        ...

    async def delete(self, file_id: str) -> bool: ...


class WebhookRepository(Protocol):
    async def add(self, record: WebhookRecord) -> None: ...
    async def get(self, job_id: str) -> WebhookRecord | None: ...

    async def due(self, now: datetime, *, limit: int = 100) -> list[WebhookRecord]:
        """Pending webhooks of ended jobs whose next attempt is due, oldest first."""
        ...

    async def update(self, record: WebhookRecord, *, expected_attempts: int) -> bool:
        """Write ``record`` only if nobody counted another attempt meanwhile (fencing between processes)."""
        ...


class UnitOfWork(Protocol):
    """One transaction over every repository: commit or nothing."""

    keys: KeyRepository
    jobs: JobRepository
    files: FileRepository
    webhooks: WebhookRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]

#: Re-encodes image bytes as a MIME type at a quality (None: the encoder's default); CPU work, run off-loop.
Transcoder = Callable[[bytes, str, int | None], bytes]


class ObjectStore(Protocol):
    async def put(self, key: str, data: bytes, *, content_type: str | None = None) -> None: ...

    async def get(self, key: str) -> bytes:
        """The object's bytes; raises ``imagegate.errors.NotFound`` when there is none."""
        ...

    async def delete(self, key: str) -> None: ...
    async def exists(self, key: str) -> bool: ...


class WebhookSender(Protocol):
    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST ``body`` to ``url``; the HTTP status, or raises when nothing was answered."""
        ...


class JobQueue(Protocol):
    """Delivers job ids to workers. The database stays the truth; a lost delivery is swept up later."""

    async def enqueue(self, job_id: str) -> None: ...
    async def dequeue(self) -> str: ...
    async def aclose(self) -> None: ...


class Subscription(Protocol):
    """Changes of one job, from the moment of subscribing (so none is missed between a check and a wait)."""

    async def wait(self, within_s: float) -> bool:
        """True when the job changed since the last wait (or since subscribing) within ``within_s`` seconds."""
        ...

    def close(self) -> None: ...


class JobEvents(Protocol):
    """Wakes whoever waits on a job when it changes (sync requests, streams)."""

    def publish(self, job_id: str) -> None: ...
    def subscribe(self, job_id: str) -> Subscription: ...


@runtime_checkable
class ImageProvider(Protocol):
    """One upstream (or local engine) that turns a ``JobSpec`` into one ``Generation``.

    ``model`` is what we offer (sizes, token accounting); ``upstream_model`` is the provider's own name for it.
    Refusals come back as a ``Generation`` without images; failures are raised as
    ``imagegate.errors.UpstreamError`` subclasses (``InvalidRequest`` when the upstream says the request is bad).
    Built from a deployment's options by ``from_options`` (the class is what the entry point names).
    """

    async def generate(self, spec: JobSpec, model: ModelSpec, upstream_model: str) -> Generation: ...
    async def aclose(self) -> None: ...


class ProviderClass(Protocol):
    """What an ``imagegate.providers`` entry point names: a class built from its deployment's options."""

    def from_options(self, options: Mapping[str, Any]) -> ImageProvider: ...
