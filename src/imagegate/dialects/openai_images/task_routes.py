"""The async images API: ``POST /v1/async/images/{generations,edits}`` answer at once with a task; tasks are
read, listed and cancelled under ``/v1/tasks``. A task is a job, so jobs from every dialect show up here."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from imagegate.core.jobs import Job, JobPriority
from imagegate.core.ports import ApiKey
from imagegate.dialects.openai_images.routes import (
    parse_edit,
    parse_generation,
    rendered_images,
    submit_images_request,
)
from imagegate.dialects.openai_images.tasks import render_task, render_task_list
from imagegate.dialects.openai_images.translate import ImagesRequest, hosted_images
from imagegate.errors import InvalidRequest
from imagegate.http.auth import require_principal
from imagegate.http.deps import mark_dialect, services_of
from imagegate.http.jsonbody import load_json
from imagegate.http.openapi_bodies import EMPTY_BODY, openai_images_body
from imagegate.services.context import Services
from imagegate.services.queries import get_job
from imagegate.services.tasks import MAX_PAGE, cancel_job, list_jobs
from imagegate.services.webhooks import PayloadRenderer, webhook_secret_text

router = APIRouter(dependencies=[Depends(mark_dialect("openai"))], tags=["tasks"])
ResponseFormat = Literal["url", "b64_json"]


def _not_streamed(parsed: ImagesRequest) -> ImagesRequest:
    if parsed.stream:
        raise InvalidRequest(
            "A task is polled or sent to a webhook, not streamed; use POST /v1/images/... with stream, "
            "or leave stream out here.",
            field="stream",
        )
    return parsed


@router.post("/v1/async/images/generations", openapi_extra=openai_images_body(edit=False, webhook=True))
async def async_generations(request: Request, principal: ApiKey = Depends(require_principal)) -> JSONResponse:
    parsed = _not_streamed(await parse_generation(request))
    job, _ = await submit_images_request(
        request, principal, parsed, webhook_url=await _webhook_url(request), priority=JobPriority.ASYNC
    )
    return JSONResponse(await _task(request, job))


@router.post("/v1/async/images/edits", openapi_extra=openai_images_body(edit=True, webhook=True))
async def async_edits(request: Request, principal: ApiKey = Depends(require_principal)) -> JSONResponse:
    parsed = _not_streamed(await parse_edit(request))
    job, _ = await submit_images_request(
        request, principal, parsed, webhook_url=await _webhook_url(request), priority=JobPriority.ASYNC
    )
    return JSONResponse(await _task(request, job))


@router.get("/v1/webhooks/secret")
async def get_webhook_secret(request: Request, principal: ApiKey = Depends(require_principal)) -> JSONResponse:
    """The key's Standard Webhooks secret, to verify the ``webhook-signature`` of its tasks' callbacks."""
    return JSONResponse({"object": "webhook.secret", "secret": webhook_secret_text(services_of(request), principal.id)})


@router.get("/v1/tasks/{task_id}")
async def get_task(
    task_id: str,
    request: Request,
    response_format: ResponseFormat = "url",
    principal: ApiKey = Depends(require_principal),
) -> JSONResponse:
    job = await get_job(services_of(request), principal, task_id)
    return JSONResponse(await _task(request, job, response_format))


@router.post("/v1/tasks/{task_id}/cancel", openapi_extra=EMPTY_BODY)
async def cancel_task(task_id: str, request: Request, principal: ApiKey = Depends(require_principal)) -> JSONResponse:
    job = await cancel_job(services_of(request), principal, task_id)
    return JSONResponse(await _task(request, job))


@router.get("/v1/tasks")
async def list_tasks(
    request: Request,
    limit: int = Query(20, ge=1, le=MAX_PAGE),
    after: str | None = Query(None, description="the last id of the previous page"),
    principal: ApiKey = Depends(require_principal),
) -> JSONResponse:
    jobs = await list_jobs(services_of(request), principal, limit=limit + 1, before=after)
    page = [await _task(request, job) for job in jobs[:limit]]
    return JSONResponse(render_task_list(page, has_more=len(jobs) > limit))


async def _webhook_url(request: Request) -> str | None:
    """``webhook_url`` from the JSON body or the form (the images parser ignores fields it does not know)."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        value: object = (await request.form()).get("webhook_url")
    else:
        try:
            body = load_json(await request.body())
        except ValueError:
            return None  # the images parser has already refused a body that is not JSON
        value = body.get("webhook_url") if isinstance(body, dict) else None
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequest("webhook_url must be a string URL.", field="webhook_url")
    return value


def webhook_renderer(svc: Services, base_url: str) -> PayloadRenderer:
    """How webhooks show a job: the task object, with image links signed at sending time."""

    async def render(job: Job) -> dict[str, Any]:
        now = svc.clock()
        images = hosted_images(job, lambda img: base_url.rstrip("/") + svc.signer.path(img.file_id, now))
        return render_task(job, svc.catalog.resolve(job.model), images)

    return render


async def _task(request: Request, job: Job, response_format: str = "url") -> dict[str, object]:
    model = services_of(request).catalog.resolve(job.model)
    images = await rendered_images(request, job, response_format) if job.images else []
    return render_task(job, model, images, response_format=response_format)
