"""The composition root: settings in, a running set of services out (database, storage, queue, providers).

Nothing else builds adapters; the HTTP app and the CLI both start from ``open_runtime``.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate import imaging
from imagegate.core.capabilities import ModelCatalog
from imagegate.core.checks import ALL
from imagegate.core.ports import JobEvents, JobQueue
from imagegate.fetching import FetchPolicy, ImageFetcher
from imagegate.fetching.webhook_sender import WebhookSender
from imagegate.metrics import Metrics
from imagegate.persistence.db import create_engine, upgrade_database
from imagegate.persistence.uow import unit_of_work_factory
from imagegate.providers.registry import build_provider, load_provider_class
from imagegate.queue import InProcessQueue, open_queue
from imagegate.queue.database import DatabaseQueueParts, open_database_queue
from imagegate.routing.router import Deployment, Router, RoutingPolicy
from imagegate.services.context import ServiceConfig, Services
from imagegate.services.key_cache import KeyCache
from imagegate.services.signing import FileUrlSigner
from imagegate.services.workers import WorkerPool
from imagegate.settings import Settings
from imagegate.sharedstate import FleetHealth, SharedState, open_shared_state
from imagegate.storage import S3Options, open_object_store


@dataclass
class Runtime:
    settings: Settings
    services: Services
    engine: AsyncEngine
    fetcher: ImageFetcher
    webhook_sender: WebhookSender
    workers: WorkerPool | None = None
    shared: SharedState | None = None

    @property
    def fleet(self) -> FleetHealth | None:
        """Every process's breakers and provider figures, when they are shared (``rate_limit_url``)."""
        return self.shared.fleet if self.shared is not None else None


def url_signing_secret(settings: Settings) -> bytes:
    """The configured key, or one made once and kept (owner-only) under the home, so links survive restarts."""
    if settings.url_signing_key is not None:
        return settings.url_signing_key.get_secret_value().encode()
    path = settings.home / "url-signing.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as sink:
            sink.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def s3_options(settings: Settings) -> S3Options:
    s3 = settings.s3
    return S3Options(
        endpoint=s3.endpoint,
        region=s3.region,
        access_key_id=s3.access_key_id,
        secret_access_key=s3.secret_access_key.get_secret_value() if s3.secret_access_key else None,
        session_token=s3.session_token.get_secret_value() if s3.session_token else None,
        virtual_hosted_style=s3.virtual_hosted_style,
        timeout_s=s3.timeout_s,
        connect_timeout_s=s3.connect_timeout_s,
        max_retries=s3.max_retries,
        retry_timeout_s=s3.retry_timeout_s,
    )


def deployments_to_run(settings: Settings, *, requested: Collection[str] | None, runs_jobs: bool) -> set[str]:
    """Which deployments this process builds providers for; the rest it only knows (prices, capabilities).

    One process (in-process queue) runs them all. With the database queue, a process that runs no jobs
    builds none, a worker named ``--deployments`` builds exactly those, and any other job runner builds every
    deployment not marked ``worker_only`` (so API processes never start a GPU host's local models).
    """
    known = [dep.name for dep in settings.effective_deployments]
    if requested is not None:
        unknown = sorted(set(requested) - set(known))
        if unknown:
            raise ValueError(f"unknown deployment(s) {', '.join(unknown)}; configured: {', '.join(known)}")
        return set(requested)
    if not settings.distributed:
        return set(known)
    if not runs_jobs:
        return set()
    return {dep.name for dep in settings.effective_deployments if not dep.worker_only}


def build_router(settings: Settings, metrics: Metrics | None = None, *, run: Collection[str] | None = None) -> Router:
    """Deployments, with providers built for those in ``run`` (None: all); a configuration mistake raises
    ``ValueError`` naming it."""
    models = settings.model_specs()
    deployments = []
    for dep in settings.effective_deployments:
        prices = {model.id: found for model in models if (found := dep.prices_for(model)) is not None}
        runs_here = run is None or dep.name in run
        provider = build_provider(dep.provider, dep.provider_options()) if runs_here else None
        # what the upstream's protocol can carry (the emulator cannot search, fal returns no thoughts), from the
        # provider's class, so a process that does not build it still routes and refuses alike
        provider_class = load_provider_class(dep.provider)
        declare = getattr(provider_class, "capabilities", None)
        declared = declare(dep.provider_options()) if declare is not None else ALL
        served = dep.served_models or {model.id: model.id for model in models}
        per_model = getattr(provider_class, "model_capabilities", None)  # a local checkpoint's family limits
        model_caps = {}
        if per_model is not None:
            for model_id, upstream in served.items():
                try:
                    found = per_model(dep.provider_options(), upstream)
                except ValueError as exc:
                    raise ValueError(f"deployment {dep.name}, model {model_id}: {exc}") from exc
                if found is not None:
                    model_caps[model_id] = found
        deployments.append(
            Deployment(
                name=dep.name,
                provider_name=dep.provider,
                provider=provider,
                models=dep.served_models,
                prices=prices,
                priority=dep.priority,
                weight=dep.weight,
                max_concurrency=dep.max_concurrency,
                batch_share=dep.batch_share if dep.batch_share is not None else settings.batch_share,
                timeout_s=dep.timeout_s,
                retries=dep.retries,
                max_input_images=dep.max_input_images,
                resolutions=frozenset(dep.resolutions) if dep.resolutions is not None else None,
                features=frozenset(dep.features) if dep.features is not None else None,
                declared=declared,
                model_caps=model_caps,
            )
        )
    r = settings.routing
    policy = RoutingPolicy(
        breaker_failures=r.breaker_failures,
        breaker_cooldown_s=r.breaker_cooldown_s,
        breaker_max_cooldown_s=max(r.breaker_max_cooldown_s, r.breaker_cooldown_s),
        retry_base_delay_s=r.retry_base_delay_s,
        retry_max_wait_s=r.retry_max_wait_s,
        retry_budget=r.retry_budget,
    )
    return Router(deployments, policy, metrics=metrics)


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    start_workers: bool = True,
    recover: bool = True,
    run_deployments: Collection[str] | None = None,
    run_models: Collection[str] | None = None,
    accepts_requests: bool = True,
) -> AsyncIterator[Runtime]:
    """Migrate the database, wire every adapter, run the workers; close everything on the way out.

    ``recover=False`` is for one-off runs beside a server: run only our own jobs, adopt no orphans (with the
    database queue such a run claims nothing; the fleet runs its jobs). ``run_deployments`` / ``run_models``
    restrict what this process runs and claims (``imagegate worker --deployments/--models``);
    ``accepts_requests=False`` for a process that serves no API (a worker), so it takes no share of the quotas.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.effective_database_url)
    uow_factory = unit_of_work_factory(engine)
    metrics = Metrics()
    runs_jobs = start_workers and recover and settings.workers > 0
    router = build_router(
        settings, metrics, run=deployments_to_run(settings, requested=run_deployments, runs_jobs=runs_jobs)
    )
    catalog = ModelCatalog.of(settings.model_specs())
    claim_models = models_to_claim(router, catalog, run_models)
    policy = FetchPolicy(
        max_bytes=settings.fetch_max_bytes,
        timeout_s=settings.fetch_timeout_s,
        allow_networks=tuple(settings.fetch_allow_networks),
    )
    fetcher = ImageFetcher(policy)
    webhook_sender = WebhookSender(policy)
    shared: SharedState | None = None
    distributed: DatabaseQueueParts | None = None
    local_queue: InProcessQueue | None = None
    try:
        await upgrade_database(engine)
        roles = frozenset({*(["accepts"] if accepts_requests else []), *(["runs"] if runs_jobs else [])})
        shared = await open_shared_state(
            settings.rate_limit_url,
            router,
            per_minute=settings.rate_limit_per_minute,
            metrics=metrics,
            roles=roles or frozenset({"accepts"}),  # a one-off run still counts as one process
        )
        queue: JobQueue
        events: JobEvents
        if settings.distributed:
            distributed = await open_database_queue(
                engine,
                doorbell_dsn(settings.events_url or settings.effective_database_url),
                poll_s=settings.waiter_check_s,
                backlog_limit=settings.max_queued_per_model,
            )
            queue, events = distributed.queue, distributed.events
            backlog = distributed.backlog
            metrics.watch_queue_depth(lambda: sum(backlog.queued.values()) if backlog is not None else 0)
        else:
            local_queue, events = open_queue(settings.queue_url)
            queue = local_queue
            metrics.watch_queue_depth(local_queue.qsize)
        services = Services(
            uow=uow_factory,
            store=open_object_store(settings.effective_storage_url, s3=s3_options(settings)),
            queue=queue,
            events=events,
            router=router,
            catalog=catalog,
            config=ServiceConfig(
                job_lease_s=settings.job_lease_s,
                max_attempts=settings.max_attempts,
                sync_timeout_s=settings.sync_timeout_s,
                # With the database queue one batched check per process re-reads waiters' jobs; a waiter's own
                # read is only the last resort.
                poll_interval_s=30.0 if settings.distributed else 1.0,
                file_retention_s=settings.file_retention_days * 86400 if settings.file_retention_days else None,
                webhook_retry_delays_s=tuple(settings.webhook_retry_delays_s),
                webhook_lease_s=settings.webhook_lease_s,
                max_input_image_bytes=settings.max_input_image_bytes,
                upload_max_bytes=settings.gemini_file_max_bytes,
                batch_price_percent=settings.batch_price_percent,
                batch_ttl_s=settings.batch_expiry_hours * 3600,
                max_input_pixels=settings.max_input_pixels,
            ),
            signer=FileUrlSigner(url_signing_secret(settings), ttl_s=settings.file_url_ttl_s),
            transcode=imaging.transcode,
            limiter=shared.quota,
            key_cache=KeyCache(settings.key_cache_s),
            metrics=metrics,
            backlog=distributed.backlog.check if distributed is not None and distributed.backlog else None,
        )
        runtime = Runtime(settings, services, engine, fetcher, webhook_sender, shared=shared)
        if start_workers:
            runtime.workers = WorkerPool(
                services,
                concurrency=settings.workers,
                sweep_interval_s=settings.sweep_interval_s,
                webhook_sender=webhook_sender,
                webhook_poll_s=settings.webhook_poll_s,
                local_queue=local_queue,
                claims=distributed.claims if distributed is not None else None,
                claim_models=claim_models,
                worker_id=f"{socket.gethostname()}:{os.getpid()}",
                heartbeat_s=settings.heartbeat_s,
                batch_share=settings.batch_share,
            )
            await runtime.workers.start(recover=recover, recover_all_running=not settings.distributed)
        try:
            yield runtime
        finally:
            if runtime.workers is not None:
                await runtime.workers.stop(grace_s=settings.shutdown_grace_s)
    finally:
        if shared is not None:
            await shared.aclose()
        await fetcher.aclose()
        await webhook_sender.aclose()
        await queue_close(local_queue, distributed)
        await router.aclose()
        uow_factory.dispose()
        await engine.dispose()


def models_to_claim(router: Router, catalog: ModelCatalog, requested: Collection[str] | None) -> list[str]:
    """The models this process can run (some deployment of it runs here), restricted to ``requested``."""
    runnable = [
        model.id
        for model in catalog.models
        if any(c.deployment.provider is not None for c in router.candidates(model.id))
    ]
    if requested is None:
        return runnable
    unknown = sorted(name for name in requested if catalog.resolve(name) is None)
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}")
    wanted = {resolved.id for name in requested if (resolved := catalog.resolve(name)) is not None}
    return [model for model in runnable if model in wanted]


def doorbell_dsn(url: str) -> str:
    """A libpq-style URL for asyncpg's own connection (SQLAlchemy's driver suffix removed)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def queue_close(local: InProcessQueue | None, distributed: DatabaseQueueParts | None) -> None:
    if local is not None:
        await local.aclose()
    if distributed is not None:
        await distributed.aclose()
