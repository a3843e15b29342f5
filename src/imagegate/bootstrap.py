"""The composition root: settings in, a running set of services out (database, storage, queue, providers).

Nothing else builds adapters; the HTTP app and the CLI both start from ``open_runtime``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate import imaging
from imagegate.core.capabilities import ModelCatalog
from imagegate.fetching import FetchPolicy, ImageFetcher
from imagegate.fetching.webhook_sender import WebhookSender
from imagegate.metrics import Metrics
from imagegate.persistence.db import create_engine, upgrade_database
from imagegate.persistence.uow import unit_of_work_factory
from imagegate.providers.registry import build_provider
from imagegate.queue import open_queue
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


def build_router(settings: Settings, metrics: Metrics | None = None) -> Router:
    """Deployments with their providers built; a configuration mistake raises ``ValueError`` naming it."""
    models = settings.model_specs()
    deployments = []
    for dep in settings.effective_deployments:
        prices = {model.id: found for model in models if (found := dep.prices_for(model)) is not None}
        provider = build_provider(dep.provider, dep.provider_options())
        # what the upstream itself cannot do (the emulator cannot search) unless the deployment narrows it further
        features = dep.features if dep.features is not None else getattr(provider, "features", None)
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
                timeout_s=dep.timeout_s,
                retries=dep.retries,
                max_input_images=dep.max_input_images,
                resolutions=frozenset(dep.resolutions) if dep.resolutions is not None else None,
                features=frozenset(features) if features is not None else None,
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
    settings: Settings, *, start_workers: bool = True, recover: bool = True
) -> AsyncIterator[Runtime]:
    """Migrate the database, wire every adapter, run the workers; close everything on the way out.

    ``recover=False`` is for one-off runs beside a server: run only our own jobs, adopt no orphans.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.effective_database_url)
    metrics = Metrics()
    router = build_router(settings, metrics)
    queue, events = open_queue(settings.queue_url)
    metrics.watch_queue_depth(queue.qsize)
    policy = FetchPolicy(
        max_bytes=settings.fetch_max_bytes,
        timeout_s=settings.fetch_timeout_s,
        allow_networks=tuple(settings.fetch_allow_networks),
    )
    fetcher = ImageFetcher(policy)
    webhook_sender = WebhookSender(policy)
    shared: SharedState | None = None
    try:
        await upgrade_database(engine)
        shared = await open_shared_state(
            settings.rate_limit_url, router, per_minute=settings.rate_limit_per_minute, metrics=metrics
        )
        services = Services(
            uow=unit_of_work_factory(engine),
            store=open_object_store(settings.effective_storage_url, s3=s3_options(settings)),
            queue=queue,
            events=events,
            router=router,
            catalog=ModelCatalog.of(settings.model_specs()),
            config=ServiceConfig(
                job_lease_s=settings.job_lease_s,
                max_attempts=settings.max_attempts,
                sync_timeout_s=settings.sync_timeout_s,
                file_retention_s=settings.file_retention_days * 86400 if settings.file_retention_days else None,
                webhook_retry_delays_s=tuple(settings.webhook_retry_delays_s),
                max_input_image_bytes=settings.max_input_image_bytes,
                upload_max_bytes=settings.gemini_file_max_bytes,
                batch_price_percent=settings.batch_price_percent,
                max_input_pixels=settings.max_input_pixels,
            ),
            signer=FileUrlSigner(url_signing_secret(settings), ttl_s=settings.file_url_ttl_s),
            transcode=imaging.transcode,
            limiter=shared.quota,
            key_cache=KeyCache(settings.key_cache_s),
            metrics=metrics,
        )
        runtime = Runtime(settings, services, engine, fetcher, webhook_sender, shared=shared)
        if start_workers:
            runtime.workers = WorkerPool(
                services,
                concurrency=settings.workers,
                sweep_interval_s=settings.sweep_interval_s,
                webhook_sender=webhook_sender,
                webhook_poll_s=settings.webhook_poll_s,
            )
            await runtime.workers.start(recover=recover, recover_all_running=settings.queue_url.startswith("inprocess"))
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
        await queue.aclose()
        await router.aclose()
        await engine.dispose()
