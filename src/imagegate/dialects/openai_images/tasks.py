"""Task objects of the async images API: any job, from any dialect, as ``GET /v1/tasks/{id}`` shows it.

A task that finished with images carries the same ``ImagesResponse`` the sync endpoint returns; one that
ended without an image (failed, cancelled or refused) carries the error the sync endpoint would have raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from imagegate.core.capabilities import ModelSpec
from imagegate.core.ids import order_id_of
from imagegate.core.jobs import Job, JobStatus
from imagegate.core.money import format_amount
from imagegate.dialects.openai_common.errors import render_error
from imagegate.dialects.openai_images.requests import OutputOptions
from imagegate.dialects.openai_images.responses import RenderedImage, nothing_delivered, render_images_response
from imagegate.errors import InternalError
from imagegate.services.billing import displayed_price
from imagegate.services.queries import failure_of


def render_task(
    job: Job, model: ModelSpec | None, images: Sequence[RenderedImage], *, response_format: str = "url"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": job.id,
        "object": "image.task",
        "status": job.status.value,
        "model": job.model,
        "dialect": job.dialect,
        "n": job.n,
        "created_at": _unix(job.created_at),
        "started_at": _unix(job.started_at),
        "finished_at": _unix(job.finished_at),
        "attempts": job.attempts,
        "order_id": order_id_of(job.id),
        # The final charge once settled (refusals and failures cost nothing), before that the hold or quote.
        "cost": format_amount(displayed_price(job, model)),
        "deployment": job.deployment,  # which upstream served it, once one did
        # Every deployment tried, per image: outcome, latency and why the router moved on.
        "attempt_trail": [
            {
                "image": slot.index,
                "deployment": a.deployment,
                "outcome": a.outcome,
                "latency_ms": a.latency_ms,
                "reason": a.reason,
            }
            for slot in job.results
            for a in slot.attempts
        ],
    }
    if any(slot.seed is not None for slot in job.results):
        # the seed each image was made with (the caller's plus its index, or drawn): send it to make it again
        body["seeds"] = [slot.seed for slot in sorted(job.results, key=lambda slot: slot.index)]
    if model is not None and job.images:  # the resolution delivered, read from the images' size
        first = job.images[0]
        body["resolution"] = model.delivered_resolution(first.width, first.height)
    if not job.status.terminal:
        if job.progress is not None:  # providers that know their steps (local models) report them
            done, total = job.progress.done, job.progress.total
            body["progress"] = {"done": done, "total": total, "percent": round(100 * job.progress.fraction, 1)}
        return body
    failure = failure_of(job)
    if failure is None:
        if model is None:
            failure = InternalError(f"model {job.model} is no longer served here")
        elif images:
            mime = job.images[0].mime_type if job.images else "image/png"
            output = OutputOptions(response_format=response_format, mime_type=mime, quality=None)
            body["result"] = render_images_response(job, images, model, output=output)
            return body
        else:
            failure = nothing_delivered(job, model)  # refused, or every image failed
    body["status"] = "cancelled" if job.status is JobStatus.CANCELLED else "failed"
    body["error"] = render_error(failure)[1]["error"]
    return body


def render_task_list(tasks: list[dict[str, Any]], *, has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": tasks,
        "first_id": tasks[0]["id"] if tasks else None,
        "last_id": tasks[-1]["id"] if tasks else None,
        "has_more": has_more,
    }


def _unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None
