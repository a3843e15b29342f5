"""linkmodel task routes: ``POST /api/v1/image-generation`` (answers at once) and ``GET /api/v1/tasks/{task_id}``.

Thin glue: authenticate (``Authorization: Bearer``, or any header another dialect accepts), parse the seed's body,
fetch image URLs safely, submit one ordinary job and answer with its task; polling reads any job of the caller's
key, whichever dialect created it. Domain errors go to the one error channel (``http/errors.py``), which renders
them with ``errors.render_error`` once each route has bound its request id and operation.
"""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from imagegate.core.ids import new_uuid
from imagegate.core.images import ImageInput
from imagegate.core.jobs import Job
from imagegate.core.ports import ApiKey
from imagegate.dialects.linkmodel.errors import bind_error_context
from imagegate.dialects.linkmodel.translate import (
    DIALECT,
    FIELDS,
    check_input_limits,
    created_data,
    envelope,
    task_data,
    to_job_spec,
)
from imagegate.dialects.linkmodel.wire import ImageGenerationRequest, parse_request
from imagegate.errors import InvalidRequest, NotFound
from imagegate.http.auth import require_principal
from imagegate.http.deps import public_url, services_of
from imagegate.http.inputs import load_image_url
from imagegate.http.openapi_bodies import inline_schema, json_body
from imagegate.services.queries import get_job
from imagegate.services.submit import resolve_model, submit_job

CREATE_TASK = "create task"
QUERY_TASK = "query task"


def request_id_of(request: Request) -> str:
    """The id ``RequestIdMiddleware`` gave this request (a fresh UUID only if the middleware is missing)."""
    request_id = getattr(request.state, "request_id", None)
    return request_id if isinstance(request_id, str) and request_id else str(uuid.uuid4())


# Async on purpose: FastAPI runs sync dependencies in a worker thread, where a context variable set would be lost
# before the error handlers (which run in this request's own context) read it.
async def _enter_create(request: Request) -> None:
    request.state.dialect = DIALECT
    bind_error_context(request_id_of(request), CREATE_TASK)


async def _enter_query(request: Request) -> None:
    request.state.dialect = DIALECT
    bind_error_context(request_id_of(request), QUERY_TASK)


router = APIRouter(prefix="/api/v1", tags=["linkmodel"])


@router.post(
    "/image-generation",
    dependencies=[Depends(_enter_create)],
    openapi_extra=json_body(inline_schema(ImageGenerationRequest)),
)
async def create_task(request: Request, principal: ApiKey = Depends(require_principal)) -> JSONResponse:
    parsed = parse_request(await request.body())
    svc = services_of(request)
    model = resolve_model(svc, parsed.model)
    check_input_limits(parsed, model)  # before fetching anything
    images = await _fetch_all(request, principal, parsed.images)
    request_id = request_id_of(request)
    # The seed types task_id as a UUID: a job made here gets a UUID (v7, time-ordered) as its id.
    spec = to_job_spec(parsed, model, images)
    job = await submit_job(svc, principal, spec, request_id=request_id, job_id=new_uuid(), fields=FIELDS)
    return JSONResponse(envelope(created_data(job, model), request_id))


@router.get("/tasks/{task_id}", dependencies=[Depends(_enter_query)])
async def get_task(task_id: str, request: Request, principal: ApiKey = Depends(require_principal)) -> JSONResponse:
    svc = services_of(request)
    try:
        job = await get_job(svc, principal, _job_id(task_id))
    except NotFound as exc:  # the same answer for an unknown id and another key's: ids must not leak
        raise NotFound(f"task {task_id} not found", field="task_id") from exc
    model = svc.catalog.resolve(job.model)
    return JSONResponse(envelope(task_data(job, model, _image_urls(request, job)), request_id_of(request)))


@router.get("/tasks", dependencies=[Depends(_enter_query)], include_in_schema=False)
@router.get("/tasks/", dependencies=[Depends(_enter_query)], include_in_schema=False)
async def get_task_without_id(request: Request, principal: ApiKey = Depends(require_principal)) -> JSONResponse:
    # ``principal`` is unused, but asking for it keeps the order of every route here: 401 comes before 400.
    raise InvalidRequest("task_id is required", field="task_id")  # the seed's own 400 example


def _job_id(task_id: str) -> str:
    """Both forms are job ids: a UUID (jobs made here; any spelling of it) or an ``job_…`` id of another dialect."""
    try:
        return str(uuid.UUID(task_id))
    except ValueError:
        return task_id


def _image_urls(request: Request, job: Job) -> list[str]:
    """Absolute, signed, freshly dated links to the job's images, in order."""
    svc = services_of(request)
    now = svc.clock()
    return [public_url(request, svc.signer.path(image.file_id, now)) for image in job.images]


async def _fetch_all(request: Request, principal: ApiKey, urls: list[str]) -> list[ImageInput]:
    async def fetch(index: int, url: str) -> ImageInput:
        field = f"images[{index}]"
        try:
            return await load_image_url(request, principal, url, field=field)
        except InvalidRequest as exc:  # with up to ten URLs, the caller needs to know which one failed
            raise type(exc)(f"{field}: {exc.message}", field=field) from exc

    return list(await asyncio.gather(*(fetch(i, url) for i, url in enumerate(urls))))
