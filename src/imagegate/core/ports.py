"""The ports: what the services need from the outside world, as Protocols the adapters implement.

Persistence (keys, jobs, files behind one unit of work), object storage, job delivery, job-change
notifications and image providers. The services see only these; tests substitute in-memory fakes.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from imagegate.core.capabilities import ModelSpec
from imagegate.core.history import EntryKind, HistoryEntry, JobFilter
from imagegate.core.jobs import Generation, Job, JobPriority, JobSpec, JobStatus, Progress


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as stored: only its hash, never the key itself."""

    id: str
    name: str
    prefix: str  # the first characters, for people to recognise a key in lists
    key_hash: str
    credits: int  # micro-units available to spend (metered keys)
    is_admin: bool
    created_at: datetime
    revoked_at: datetime | None = None
    metered: bool = False  # False: no balance is enforced (usage is still recorded)

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

    async def debit(self, key_id: str, amount: int) -> int | None:
        """Take ``amount`` if the balance covers it, atomically; the new balance, or None when it does not."""
        ...

    async def credit(self, key_id: str, amount: int, *, meter: bool = False) -> int | None:
        """Add ``amount`` (``meter``: and start enforcing a balance); the new balance, None for an unknown key."""
        ...


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One movement of a key's money: a grant, a hold at submission, a capture of delivered work, a release."""

    id: str
    key_id: str
    kind: str  # grant | hold | capture | release
    amount: int  # micro-units, never negative; the kind says which way it moves
    balance_after: int | None  # the key's balance after it (None for unmetered keys)
    created_at: datetime
    job_id: str | None = None
    images: int = 0  # captures: images delivered
    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None


class LedgerRepository(Protocol):
    async def add(self, entry: LedgerEntry) -> None: ...
    async def for_job(self, job_id: str) -> list[LedgerEntry]: ...

    async def held(self, key_id: str) -> int:
        """Money held for the key's jobs that have not settled yet."""
        ...

    async def captures(self, key_id: str | None, since: datetime | None = None) -> list[LedgerEntry]:
        """Capture entries (what delivered work cost), of one key or (None) of all, oldest first."""
        ...

    async def entries(
        self, key_id: str | None, since: datetime | None = None, *, kind: str | None = None
    ) -> list[LedgerEntry]:
        """Every movement (or those of one ``kind``), of one key or (None) of all, oldest first."""
        ...


class JobRepository(Protocol):
    async def add(self, job: Job, spec_doc: Mapping[str, Any]) -> None: ...
    async def get(self, job_id: str) -> Job | None: ...
    async def get_spec_doc(self, job_id: str) -> dict[str, Any] | None: ...

    async def claim_with_spec(
        self, job_id: str, *, now: datetime, lease_until: datetime
    ) -> tuple[Job, dict[str, Any]] | None:
        """Atomically move a QUEUED job to RUNNING, counting the attempt, and return it with its spec document
        (in the same statement): what a worker needs to run it. None when it was not QUEUED."""
        ...

    async def update(self, job: Job, *, expected_status: JobStatus, expected_attempts: int) -> bool:
        """Write ``job`` only if the row is still in ``expected_status`` at ``expected_attempts`` (fencing)."""
        ...

    async def set_progress(self, job_id: str, progress: Progress, *, expected_attempts: int) -> bool:
        """Record a RUNNING job's progress at ``expected_attempts``; False when the job moved on."""
        ...

    async def ids_with_status(self, status: JobStatus, *, limit: int = 1000) -> list[tuple[str, int]]:
        """``(id, priority)`` of jobs in ``status``, oldest first (recovery re-delivers in arrival order)."""
        ...

    async def list_for_key(self, key_id: str, *, limit: int, before: str | None = None) -> list[Job]:
        """A key's jobs, newest first; ``before`` (a job id) continues a previous page after that job."""
        ...

    async def expired_leases(self, now: datetime, *, limit: int = 1000) -> list[Job]:
        """RUNNING jobs whose lease ran out: their worker died or lost contact."""
        ...

    async def unfinished_before(self, priority: JobPriority, created_before: datetime, *, limit: int) -> list[Job]:
        """QUEUED or RUNNING jobs of ``priority`` created before ``created_before``, oldest first."""
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


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """One ``Idempotency-Key``: the request it first came with and, once that was answered, the answer."""

    scope: str  # SHA-256 of the API key that sent it, so keys never share entries
    key: str  # the Idempotency-Key header
    fingerprint: str  # SHA-256 of the request (method, path, query, body): the same key must mean the same request
    token: str  # the id of the attempt that holds the entry: only it may complete or abandon it
    created_at: datetime  # when that attempt began
    expires_at: datetime
    status: int | None = None  # the answer's HTTP status; None while the first request is still running
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    completed_at: datetime | None = None
    job_id: str | None = None  # the job the request created, linked in the job's own transaction

    @property
    def completed(self) -> bool:
        return self.status is not None


class IdempotencyRepository(Protocol):
    async def get(self, scope: str, key: str) -> IdempotencyRecord | None: ...

    async def add(self, record: IdempotencyRecord) -> bool:
        """Insert unless ``(scope, key)`` has an entry already; False when it has (another request was first)."""
        ...

    async def replace(self, record: IdempotencyRecord, *, expected_token: str) -> bool:
        """Overwrite the entry only while it still holds ``expected_token`` (fencing between attempts)."""
        ...

    async def delete(self, scope: str, key: str, *, expected_token: str) -> bool:
        """Remove the entry only while it still holds ``expected_token``."""
        ...

    async def link_job(self, scope: str, key: str, job_id: str, *, expected_token: str) -> bool:
        """Record the job the holder created, only while it still holds ``expected_token``."""
        ...

    async def delete_expired(self, now: datetime) -> int:
        """Remove the entries that expired before ``now``; how many went."""
        ...


class HistoryRepository(Protocol):
    """The playground's runs and threads per key, and the jobs a key removed from its history."""

    async def add(self, entry: HistoryEntry) -> None: ...
    async def update(self, entry: HistoryEntry) -> bool: ...
    async def get(self, key_id: str, entry_id: str) -> HistoryEntry | None: ...
    async def list(
        self, key_id: str, kind: EntryKind, *, limit: int, before: datetime | None = None
    ) -> builtins.list[HistoryEntry]: ...
    async def delete(self, key_id: str, entry_id: str) -> bool: ...
    async def hide_job(self, key_id: str, job_id: str, at: datetime) -> None: ...
    async def find_jobs(self, key_id: str, where: JobFilter) -> builtins.list[tuple[str, dict[str, Any]]]: ...


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file a caller uploaded through the Gemini Files API (or a batch's results file): owned by one key.

    ``state`` is Google's: ``PROCESSING`` while the resumable upload is open, ``ACTIVE`` once finalized.
    ``upload_token`` authorizes the chunk requests, which carry no API key.
    """

    id: str
    key_id: str
    mime_type: str
    size_bytes: int  # declared at the start of the upload; the final size once active
    received_bytes: int
    storage_key: str
    state: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    display_name: str | None = None
    sha256: str | None = None  # base64 of the SHA-256 digest, once active
    upload_token: str | None = None
    source: str = "UPLOADED"  # or GENERATED (a batch's results)


class UploadedFileRepository(Protocol):
    async def add(self, record: UploadedFile) -> None: ...
    async def get(self, file_id: str) -> UploadedFile | None: ...
    async def by_upload_token(self, token: str) -> UploadedFile | None: ...
    async def update(self, record: UploadedFile) -> None: ...
    async def delete(self, file_id: str) -> None: ...

    async def page(self, key_id: str, now: datetime, *, after: str | None, limit: int) -> list[UploadedFile]:
        """A key's unexpired files, newest first, starting after the id ``after``."""
        ...

    async def expired(self, now: datetime, *, limit: int) -> list[UploadedFile]: ...


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """A batch of requests (the Gemini Batch API): its jobs and per-request errors, in order, in ``doc``."""

    id: str
    key_id: str
    model: str
    cancelled: bool
    created_at: datetime
    updated_at: datetime
    doc: dict[str, Any]
    display_name: str | None = None


class BatchRepository(Protocol):
    async def add(self, record: BatchRecord) -> None: ...
    async def get(self, batch_id: str) -> BatchRecord | None: ...
    async def update(self, record: BatchRecord) -> None: ...
    async def delete(self, batch_id: str) -> None: ...

    async def page(self, key_id: str, *, after: str | None, limit: int) -> list[BatchRecord]:
        """A key's batches, newest first, starting after the id ``after``."""
        ...


class UnitOfWork(Protocol):
    """One transaction over every repository: commit or nothing."""

    keys: KeyRepository
    jobs: JobRepository
    files: FileRepository
    webhooks: WebhookRepository
    idempotency: IdempotencyRepository
    ledger: LedgerRepository
    history: HistoryRepository
    uploads: UploadedFileRepository
    batches: BatchRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Opens a fresh unit of work. ``scan=True`` marks a transaction that may read (or delete) many rows, so
    that a database run on the event loop's thread (SQLite, see ``persistence.inline_sqlite``) runs it on a
    worker thread instead; elsewhere it changes nothing."""

    def __call__(self, *, scan: bool = False) -> UnitOfWork: ...


#: Re-encodes image bytes as a MIME type at a quality (None: the encoder's default); CPU work, run off-loop.
Transcoder = Callable[[bytes, str, int | None], bytes]


class ObjectStore(Protocol):
    async def put(self, key: str, data: bytes, *, content_type: str | None = None) -> None: ...

    async def get(self, key: str) -> bytes:
        """The object's bytes; raises ``imagegate.errors.NotFound`` when there is none."""
        ...

    async def delete(self, key: str) -> None: ...
    async def exists(self, key: str) -> bool: ...

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (a folder such as ``outputs/job_x/``); empty when there is none."""
        ...


class RequestQuota(Protocol):
    async def check(self, key_id: str) -> None:
        """Take one request from ``key_id``'s quota, or raise ``imagegate.errors.RateLimited`` saying when to retry."""
        ...


class WebhookSender(Protocol):
    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST ``body`` to ``url``; the HTTP status, or raises when nothing was answered."""
        ...


class JobQueue(Protocol):
    """Announces committed jobs to workers. The database stays the truth; a lost delivery is swept up later.

    ``priority`` is the job's ``JobPriority`` (lower is taken first), for a queue that does not read it from the row."""

    async def enqueue(self, job_id: str, priority: int = 1) -> None: ...
    async def aclose(self) -> None: ...


class LocalQueue(JobQueue, Protocol):
    """The in-process queue: workers of this process take job ids from it."""

    async def dequeue(self, *, batch: bool = True) -> str:
        """The most urgent queued id; with ``batch=False`` never a batch job's."""
        ...


class JobClaims(Protocol):
    """The database queue as workers see it: claims and leases in the database's time, and its chore lock.

    A claim moves up to ``limit`` of the oldest, most urgent queued jobs of ``model`` to RUNNING for ``worker``
    (counting an attempt) and returns them with their specs; ``renew`` extends the leases of the jobs a worker
    still holds (id -> attempt) in one statement and returns the ids it still holds.
    """

    async def claim(
        self, model: str, limit: int, *, worker: str, lease_s: float, batch: bool = True
    ) -> list[tuple[Job, dict[str, Any]]]:
        """With ``batch=False`` no batch job is claimed."""
        ...

    async def renew(self, held: Mapping[str, int], *, lease_s: float) -> set[str]: ...
    async def database_now(self) -> datetime: ...
    def on_work(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when work may be waiting (a job was queued, or the doorbell reconnected)."""
        ...

    def chore_lock(self, *, stall_s: float = 30.0) -> AbstractAsyncContextManager[bool]:
        """Yields True in the one process (at a time) that should run the shared chores now; a holder stalled
        for ``stall_s`` loses it."""
        ...


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
