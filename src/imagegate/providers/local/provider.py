"""The ``diffusers`` provider: open-weight models (Qwen-Image, FLUX.2 [klein], SD-Turbo) on this machine.

The deployment maps each of our model ids to a checkpoint, a Hugging Face id or a local directory, as its
upstream model name (``models = {"qwen-image-edit" = "Qwen/Qwen-Image-Edit-2509"}``). Each checkpoint gets one
worker process per configured device, started by its first request and kept warm; this process only plans
requests, waits on pipes and relays progress, so no model work ever runs on the event loop and torch is
never imported here. See docs/local-models.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections.abc import Mapping
from typing import Any, Self

from imagegate.core.capabilities import ModelSpec
from imagegate.core.checks import DeploymentCaps
from imagegate.core.images import ImageOutput
from imagegate.core.jobs import FinishReason, Generation, JobSpec, Usage
from imagegate.core.progress import report_progress
from imagegate.errors import InvalidRequest, UpstreamRejected, UpstreamUnavailable
from imagegate.providers.base import ProviderOptionsError, parse_options
from imagegate.providers.local.capabilities import PIPELINE_CAPS, FamilyCapabilities, Task
from imagegate.providers.local.families import family_for_pipeline, family_named
from imagegate.providers.local.messages import Cancelled, Done, Failed, Ready, Request, Step, WorkerConfig
from imagegate.providers.local.options import DiffusersOptions
from imagegate.providers.local.planning import plan
from imagegate.providers.local.pool import PoolStats, WorkerPool, next_request_id


def _require_local_extra() -> None:
    """Say how to install what the workers import, instead of every request failing on ModuleNotFoundError."""
    missing = [name for name in ("torch", "diffusers") if importlib.util.find_spec(name) is None]
    if missing:
        raise UpstreamRejected(
            f"the diffusers provider needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            "not installed here: pip install 'imagegate[local]' (see docs/local-models.md)"
        )


class DiffusersProvider:
    """Runs local diffusers pipelines in worker processes; one instance per deployment."""

    def __init__(self, options: DiffusersOptions) -> None:
        self._options = options
        self._pools: dict[str, WorkerPool] = {}

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls(parse_options(DiffusersOptions, options, provider="diffusers"))

    @classmethod
    def capabilities(cls, options: Mapping[str, Any]) -> DeploymentCaps:
        """What any diffusion pipeline cannot do; ``model_capabilities`` adds each checkpoint's family limits."""
        return PIPELINE_CAPS

    @classmethod
    def model_capabilities(cls, options: Mapping[str, Any], upstream_model: str) -> DeploymentCaps | None:
        """What this deployment can serve on ``upstream_model``: its family's images in, tasks and longest side,
        read at start-up from the checkpoint's model_index.json when it is on disk (or the ``family`` option).
        None: not known until the checkpoint's first load, which then checks the same (``plan``).

        ``ProviderOptionsError`` for a checkpoint the provider cannot run, a ``family`` that does not serve it,
        or more ``steps`` than it allows: configuration mistakes, refused before any request.
        """
        parsed = parse_options(DiffusersOptions, options, provider="diffusers")
        family = _family_capabilities(parsed, upstream_model)
        if family is None:
            return None
        if parsed.steps is not None and parsed.steps > family.max_steps:
            raise ProviderOptionsError(
                f"steps = {parsed.steps}, but {upstream_model} allows at most {family.max_steps}"
            )
        return family.deployment_caps()

    async def generate(self, spec: JobSpec, model: ModelSpec, upstream_model: str) -> Generation:
        _require_local_extra()
        pool = self._pool(upstream_model)
        handle = pool.reserve(self._batch_slots(pool))
        try:
            ready = await handle.ready()
            caps = _capabilities(ready)
            job = plan(spec, model, caps, self._options, upstream_model)
        except BaseException:
            handle.release()
            raise
        if not job.prompt.strip() and job.task is Task.GENERATE:
            handle.release()
            return Generation(images=(), finish_reason=FinishReason.NO_IMAGE, model_version=upstream_model)
        request = Request(
            id=next_request_id(),
            task=job.task,
            prompt=job.prompt,
            images=tuple(image.data for image in job.images),
            width=job.width,
            height=job.height,
            steps=job.steps,
            guidance=job.guidance,
            seed=job.seed,
            mime_type=job.mime_type,
            quality=job.quality,
            negative_prompt=job.negative_prompt,
        )
        async with contextlib.aclosing(handle.run(request)) as replies:
            async for reply in replies:
                if isinstance(reply, Step):
                    report_progress(reply.done, reply.total)
                elif isinstance(reply, Done):
                    image = ImageOutput(reply.data, reply.mime_type, reply.width, reply.height)
                    return Generation(images=(image,), usage=Usage(), model_version=upstream_model)
                elif isinstance(reply, Failed):
                    if reply.kind == "invalid":
                        raise InvalidRequest(f"{upstream_model}: {reply.message}")
                    raise UpstreamUnavailable(f"{upstream_model}: {reply.message}")
                elif isinstance(reply, Cancelled):  # only this coroutine cancels, and it stops reading then
                    raise UpstreamUnavailable(f"the local model worker dropped the request for {upstream_model}")
        raise UpstreamUnavailable(f"the local model worker for {upstream_model} gave no answer")

    def stats(self, upstream_model: str) -> PoolStats:
        """What the workers of ``upstream_model`` did so far (zeros before its first request)."""
        pool = self._pools.get(upstream_model)
        return pool.stats if pool is not None else PoolStats()

    def in_flight(self, upstream_model: str) -> int:
        """Requests of ``upstream_model`` queued or running (cancelled ones until their worker lets go)."""
        pool = self._pools.get(upstream_model)
        return sum(w.load for w in pool.workers) if pool is not None else 0

    def worker_pids(self, upstream_model: str) -> list[int]:
        pool = self._pools.get(upstream_model)
        return [pid for w in pool.workers if (pid := w.pid) is not None] if pool is not None else []

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*(pool.aclose() for pool in pools))

    def _pool(self, upstream_model: str) -> WorkerPool:
        pool = self._pools.get(upstream_model)
        if pool is None:
            options = self._options.model_dump()
            configs = [
                WorkerConfig(source=upstream_model, device=device, options=options, label=_label(upstream_model))
                for device in self._options.devices
            ]
            pool = WorkerPool(
                configs,
                queue_size=self._options.queue_size,
                start_timeout_s=self._options.start_timeout_s,
                backoff_s=self._options.restart_backoff_s,
                fallback_seconds=self._options.seconds_per_image,
            )
            self._pools[upstream_model] = pool
        return pool

    def _batch_slots(self, pool: WorkerPool) -> int:
        """Requests a worker runs at once: its family's batch limit (1 until the model is known)."""
        for handle in pool.workers:
            if (ready := handle.ready_now) is not None:
                slots = _capabilities(ready).batch_limit(Task.GENERATE)
                return min(slots, self._options.max_batch or slots)
        return 1


def _family_capabilities(options: DiffusersOptions, upstream_model: str) -> FamilyCapabilities | None:
    from imagegate.providers.local.checkpoints import pipeline_class_on_disk

    pipeline_class = pipeline_class_on_disk(upstream_model, options)
    if options.family is not None:
        family = family_named(options.family)
        if pipeline_class is not None and pipeline_class not in family.pipeline_classes:
            raise ProviderOptionsError(
                f"{upstream_model} is a {pipeline_class}; the {family.name} family serves "
                f"{', '.join(sorted(family.pipeline_classes))}"
            )
        return family.capabilities_for(pipeline_class) if pipeline_class else family.capabilities
    if pipeline_class is None:
        return None
    detected = family_for_pipeline(pipeline_class)
    if detected is None:
        raise ProviderOptionsError(f"{upstream_model} is a {pipeline_class}, which the diffusers provider cannot run")
    return detected.capabilities_for(pipeline_class)


def _capabilities(ready: Ready) -> FamilyCapabilities:
    return family_named(ready.family).capabilities.restricted(ready.tasks)


def _label(upstream_model: str) -> str:
    """How image metadata names the model: a Hub id as is, a directory by its last part (no local paths leak)."""
    if upstream_model.startswith(("/", ".", "~")) or "\\" in upstream_model or upstream_model.count("/") > 1:
        return upstream_model.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return upstream_model
