"""Chat Completions routes: ``POST /v1/chat/completions`` and OpenRouter's ``/api/v1/chat/completions``.

Thin glue: parse, check the model makes images, load the image parts (own links from the store, the rest
through the safe fetcher), submit one job, then answer whole or as server-sent events. Everything that can be
refused is refused before the stream starts, so those errors are ordinary HTTP errors; once the stream is open
a failure is sent as a ``data: {"error": …}`` event, which the openai SDK raises as ``APIError``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from imagegate.core.capabilities import ModelSpec
from imagegate.core.jobs import Job, JobPriority
from imagegate.core.ports import ApiKey
from imagegate.dialects.openai_chat.translate import (
    FIELDS,
    check_input_limits,
    render_completion,
    render_model_list,
    stream_rest,
    stream_start,
    to_job_spec,
)
from imagegate.dialects.openai_chat.wire import parse_chat_request
from imagegate.dialects.openai_common.errors import render_error
from imagegate.errors import ImagegateError, InvalidRequest
from imagegate.http import sse
from imagegate.http.auth import require_principal
from imagegate.http.deps import mark_dialect, services_of
from imagegate.http.inputs import load_image_urls
from imagegate.http.json_pieces import PiecesResponse, dumps_pieces
from imagegate.http.jsonbody import load_json
from imagegate.http.openapi_bodies import CHAT_BODY
from imagegate.services.context import Services
from imagegate.services.queries import wait_for_result, watch_new_job
from imagegate.services.submit import submit_job

router = APIRouter(dependencies=[Depends(mark_dialect("openai"))], tags=["openai-chat"])


@router.post("/v1/chat/completions", openapi_extra=CHAT_BODY)
@router.post("/api/v1/chat/completions", openapi_extra=CHAT_BODY)
@router.post("/openai/v1/chat/completions", include_in_schema=False)
async def chat_completions(request: Request, principal: ApiKey = Depends(require_principal)) -> Response:
    parsed = parse_chat_request(await _json_body(request))
    svc = services_of(request)
    model = _image_model(svc, parsed.model)
    check_input_limits(parsed, model)  # before fetching anything
    urls = parsed.image_urls
    loaded = await load_image_urls(request, principal, [u.url for u in urls], [u.field for u in urls])
    spec = to_job_spec(parsed, model, {u.field: image for u, image in zip(urls, loaded, strict=True)})
    with watch_new_job(svc) as watch:
        job = await submit_job(
            svc,
            principal,
            spec,
            request_id=request.state.request_id,
            priority=JobPriority.INTERACTIVE,
            fields=FIELDS,
            job_id=watch.job_id,
        )
        if not parsed.stream:
            finished, stored = await watch.result(job)
            # the images' base64 beside the JSON, not through orjson (http/json_pieces.py)
            return PiecesResponse(dumps_pieces(render_completion(finished, model, stored, pieces=True)))
    return _stream(svc, job, model, include_usage=parsed.include_usage)


@router.get("/api/v1/models")
@router.get("/openai/v1/models", include_in_schema=False)
async def list_models(request: Request, principal: ApiKey = Depends(require_principal)) -> Response:
    """The models as OpenAI lists them, with OpenRouter's ``architecture`` so clients can filter for image output."""
    models = services_of(request).catalog.models
    return Response(orjson.dumps(render_model_list(models)), media_type="application/json")


def _image_model(svc: Services, name: str) -> ModelSpec:
    """The model, which must be one this server makes images with: chat models for text only are not served."""
    model = svc.catalog.resolve(name)
    if model is None:
        served = ", ".join(m.id for m in svc.catalog.models)
        raise InvalidRequest(
            f"The model `{name}` is not served here. This endpoint answers with images and serves image-output "
            f'models only: {served}. Send modalities ["image", "text"] with one of them.',
            field="model",
        )
    return model


def _stream(svc: Services, job: Job, model: ModelSpec, *, include_usage: bool) -> StreamingResponse:
    async def events() -> AsyncIterator[bytes]:
        for chunk in stream_start(job, model):
            yield sse.event(chunk)
        waiting = sse.start(wait_for_result(svc, job.id))
        async for comment in sse.keepalive_until(waiting):
            yield comment
        try:
            finished, stored = waiting.result()
            rest = stream_rest(finished, model, stored, include_usage=include_usage, pieces=True)
        except ImagegateError as exc:
            _, body, _ = render_error(exc)
            yield sse.event(body)
            return
        for chunk in rest:
            for piece in sse.event_pieces(chunk):
                yield piece
        yield sse.DONE

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return load_json(raw)
    except ValueError as exc:
        raise InvalidRequest(
            f"We could not parse the JSON body of your request ({exc}). "
            "Send valid JSON with Content-Type: application/json."
        ) from exc
