"""OpenAI Images routes: ``POST /v1/images/generations`` (JSON) and ``/v1/images/edits`` (multipart or JSON).

Thin glue: parse with the translate functions, fetch image URLs safely, submit one job, wait, render.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from starlette.datastructures import UploadFile

from imagegate.core.capabilities import ModelSpec
from imagegate.core.jobs import Job, JobPriority
from imagegate.core.ports import ApiKey
from imagegate.dialects.openai_common.errors import render_error
from imagegate.dialects.openai_images.translate import (
    ImagesRequest,
    OutputOptions,
    RenderedImage,
    check_input_limits,
    fields_for,
    hosted_images,
    inline_images,
    output_options,
    parse_edit_form,
    parse_edit_json,
    parse_generation_request,
    render_images_response,
    render_stream_events,
    to_job_spec,
)
from imagegate.errors import ImagegateError, InvalidRequest, ModelNotFound
from imagegate.http import sse
from imagegate.http.auth import require_principal
from imagegate.http.deps import mark_dialect, public_url, runtime_of, services_of
from imagegate.http.inputs import load_image_urls
from imagegate.http.json_pieces import PiecesResponse, dumps_pieces
from imagegate.http.jsonbody import load_json
from imagegate.http.openapi_bodies import openai_images_body
from imagegate.services.queries import NewJobWatch, load_job_images, wait_for_result, watch_new_job
from imagegate.services.submit import submit_job

router = APIRouter(prefix="/v1/images", dependencies=[Depends(mark_dialect("openai"))], tags=["openai"])


@router.post("/generations", openapi_extra=openai_images_body(edit=False))
async def generations(request: Request, principal: ApiKey = Depends(require_principal)) -> Response:
    parsed = await parse_generation(request)
    return await _submit_and_answer(request, principal, parsed, edit=False)


@router.post("/edits", openapi_extra=openai_images_body(edit=True))
async def edits(request: Request, principal: ApiKey = Depends(require_principal)) -> Response:
    parsed = await parse_edit(request)
    return await _submit_and_answer(request, principal, parsed, edit=True)


async def parse_generation(request: Request) -> ImagesRequest:
    return parse_generation_request(await _json_body(request))


async def parse_edit(request: Request) -> ImagesRequest:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _form_request(request)
    if content_type.startswith("application/json"):
        return parse_edit_json(await _json_body(request))
    raise InvalidRequest("Send the edit as multipart/form-data (image files) or as JSON with image URLs.")


async def submit_images_request(
    request: Request,
    principal: ApiKey,
    parsed: ImagesRequest,
    *,
    webhook_url: str | None = None,
    priority: JobPriority = JobPriority.INTERACTIVE,
    job_id: str | None = None,
) -> tuple[Job, ModelSpec]:
    """Check, fetch the image URLs, and submit: the part the sync and async endpoints share."""
    svc = services_of(request)
    model = resolve_model(request, parsed.model)
    check_input_limits(parsed, model)  # before fetching anything
    fetched = await load_image_urls(request, principal, parsed.image_urls, ["image"] * len(parsed.image_urls))
    spec = to_job_spec(parsed, model, fetched, image_size=svc.catalog.resolution_of(parsed.model))
    job = await submit_job(
        svc,
        principal,
        spec,
        request_id=request.state.request_id,
        webhook_url=webhook_url,
        priority=priority,
        fields=fields_for(parsed),
        job_id=job_id,
    )
    return job, model


async def rendered_images(
    request: Request,
    job: Job,
    response_format: str,
    stored: Mapping[str, bytes] | None = None,
    *,
    pieces: bool = False,
) -> list[RenderedImage]:
    """The job's images as hosted URLs (signed, fresh) or inline base64 (from ``stored`` when given; as
    ``Base64Piece``s with ``pieces``)."""
    svc = services_of(request)
    if response_format == "url":
        now = svc.clock()
        return hosted_images(job, lambda img: public_url(request, svc.signer.path(img.file_id, now)))
    return inline_images(job, stored if stored is not None else await load_job_images(svc, job), pieces=pieces)


async def _submit_and_answer(request: Request, principal: ApiKey, parsed: ImagesRequest, *, edit: bool) -> Response:
    _check_stream(parsed)
    with watch_new_job(services_of(request)) as watch:
        job, model = await submit_images_request(request, principal, parsed, job_id=watch.job_id)
        if not parsed.stream:
            return await _answer(request, watch, job, model, _output(request, parsed))
    return _stream(request, job, model, _output(request, parsed), edit=edit)


async def _answer(request: Request, watch: NewJobWatch, job: Job, model: ModelSpec, output: OutputOptions) -> Response:
    finished, stored = await watch.result(job)
    images = await rendered_images(request, finished, output.response_format, stored, pieces=True)
    # the images' base64 beside the JSON, not through orjson (http/json_pieces.py)
    return PiecesResponse(dumps_pieces(render_images_response(finished, images, model, output=output)))


def _check_stream(parsed: ImagesRequest) -> None:
    if parsed.stream and parsed.response_format == "url":
        raise InvalidRequest(
            "Streamed images arrive as b64_json in the events; omit response_format or set it to b64_json.",
            field="response_format",
        )


def _stream(request: Request, job: Job, model: ModelSpec, output: OutputOptions, *, edit: bool) -> StreamingResponse:
    """OpenAI's image event stream: keep-alive comments while the job runs, then a ``completed`` event per image.

    The job is already accepted, so a failure from here on is an ``error`` event, which the SDK raises.
    """
    svc = services_of(request)

    async def events() -> AsyncIterator[bytes]:
        waiting = sse.start(wait_for_result(svc, job.id))
        async for comment in sse.keepalive_until(waiting):
            yield comment
        try:
            finished, stored = waiting.result()
            images = inline_images(finished, stored, pieces=True)
            bodies = render_stream_events(finished, images, model, output=output, edit=edit)
        except ImagegateError as exc:
            _, body, _ = render_error(exc)
            yield sse.event({"type": "error", **body}, name="error")
            return
        for body in bodies:
            for piece in sse.event_pieces(body, name=str(body["type"])):
                yield piece

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _output(request: Request, parsed: ImagesRequest) -> OutputOptions:
    config = runtime_of(request).settings.openai_images
    return output_options(
        parsed, default_response_format=config.default_response_format, revised_prompt=config.revised_prompt
    )


def resolve_model(request: Request, name: str) -> ModelSpec:
    model = services_of(request).catalog.resolve(name)
    if model is None:
        raise ModelNotFound(f"The model `{name}` does not exist or you do not have access to it.", field="model")
    return model


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return load_json(raw)
    except ValueError as exc:
        raise InvalidRequest(
            f"We could not parse the JSON body of your request ({exc}). "
            "Send valid JSON with Content-Type: application/json."
        ) from exc


async def _form_request(request: Request) -> ImagesRequest:
    form = await request.form()
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, bytes]] = []
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                files.append((name, await value.read()))
            else:
                fields.append((name, value))
    finally:
        await form.close()
    return parse_edit_form(fields, files)
