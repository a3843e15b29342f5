"""Gemini API routes under ``/v1`` and ``/v1beta``: thin glue from HTTP to the translate functions and services.

``models/{model}:{action}`` is parsed here because a router's path parameter would swallow the colon.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from imagegate.core.capabilities import ModelSpec, estimate_usage
from imagegate.core.images import ImageInput
from imagegate.core.jobs import Job, JobPriority
from imagegate.core.ports import ApiKey
from imagegate.dialects.gemini import batch_routes
from imagegate.dialects.gemini.errors import model_not_found_message, render_error
from imagegate.dialects.gemini.requests import FIELDS
from imagegate.dialects.gemini.translate import (
    file_references,
    parse_count_tokens_request,
    parse_generate_request,
    render_count_tokens,
    render_model,
    render_model_list,
    render_response,
    render_stream_chunks,
    to_job_spec,
)
from imagegate.dialects.gemini.wire import GenerateContentRequest
from imagegate.errors import ImagegateError, InvalidRequest, NotFound
from imagegate.http.auth import require_principal
from imagegate.http.deps import mark_dialect, services_of
from imagegate.http.json_pieces import PiecesResponse, dumps_pieces, framed
from imagegate.http.jsonbody import load_json
from imagegate.http.openapi_bodies import inline_schema, json_body
from imagegate.services.context import Services
from imagegate.services.queries import wait_for_result, watch_new_job
from imagegate.services.submit import submit_job
from imagegate.services.uploads import read_upload_image

API_VERSIONS = ("v1", "v1beta")


router = APIRouter(dependencies=[Depends(mark_dialect("gemini"))], tags=["gemini"])


def _check_version(version: str, request: Request) -> None:
    if version not in API_VERSIONS:
        raise NotFound(f"{request.method} {request.url.path} is not a known endpoint.")


def _resolve(svc: Services, name: str, version: str, method: str = "generateContent") -> ModelSpec:
    model = svc.catalog.resolve(name)
    if model is None:
        raise NotFound(model_not_found_message(name, version, method=method))
    return model


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return load_json(raw)
    except ValueError as exc:
        raise InvalidRequest(f"Invalid JSON payload received. {exc}.") from exc


@router.get("/{version}/models")
async def list_models(
    version: str, request: Request, pageSize: int | None = None, pageToken: str | None = None
) -> JSONResponse:
    _check_version(version, request)
    await require_principal(request)
    svc = services_of(request)
    body = render_model_list(svc.catalog.models, page_size=pageSize, page_token=pageToken)
    # One path serves Gemini's and OpenAI's model list alike: the OpenAI shape rides along.
    body["object"] = "list"
    body["data"] = [{"id": m.id, "object": "model", "created": 0, "owned_by": "imagegate"} for m in svc.catalog.models]
    return JSONResponse(body)


@router.get("/{version}/models/{name}")
async def get_model(version: str, name: str, request: Request) -> JSONResponse:
    _check_version(version, request)
    await require_principal(request)
    model = _resolve(services_of(request), name, version, "get")
    return JSONResponse(render_model(model))


@router.post("/{version}/models/{name_and_action}", openapi_extra=json_body(inline_schema(GenerateContentRequest)))
async def model_action(
    version: str, name_and_action: str, request: Request, principal: ApiKey = Depends(require_principal)
) -> Response:
    _check_version(version, request)
    name, sep, action = name_and_action.rpartition(":")
    if not sep:
        raise NotFound(f"POST {request.url.path} is not a known endpoint; expected models/MODEL:ACTION.")
    svc = services_of(request)
    if action not in ("generateContent", "streamGenerateContent", "countTokens", "batchGenerateContent"):
        raise NotFound(
            f"Method {action} is not supported; use generateContent, streamGenerateContent, countTokens or "
            "batchGenerateContent."
        )
    model = _resolve(svc, name, version, action)
    implied = svc.catalog.resolution_of(name)
    if action == "batchGenerateContent":
        return await batch_routes.create(request, principal, model, image_size=implied)
    if action == "countTokens":
        counted = parse_count_tokens_request(await _json_body(request))
        spec = to_job_spec(counted, model, await load_files(request, principal, counted), image_size=implied)
        return JSONResponse(render_count_tokens(estimate_usage(spec, model)))
    parsed = parse_generate_request(await _json_body(request))
    spec = to_job_spec(parsed, model, await load_files(request, principal, parsed), image_size=implied)
    # Both actions hold the connection open until the images come: an interactive job.
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
        if action == "generateContent":
            finished, images = await watch.result(job)
            # the image's base64 beside the JSON, not through orjson (http/json_pieces.py)
            return PiecesResponse(
                dumps_pieces(render_response(finished, images, model, response_id=finished.id, pieces=True))
            )
    return _stream(svc, job, model, sse=request.query_params.get("alt") == "sse")


async def load_files(request: Request, principal: ApiKey, parsed: GenerateContentRequest) -> dict[str, ImageInput]:
    """The uploaded images the request's ``fileData`` parts name, by field, read from the store for this key."""
    svc = services_of(request)
    refs = file_references(parsed)
    images = await asyncio.gather(*(read_upload_image(svc, principal, name, field=field) for name, field in refs))
    return {field: image for (_, field), image in zip(refs, images, strict=True)}


def _stream(svc: Services, job: Job, model: ModelSpec, *, sse: bool) -> StreamingResponse:
    """Stream the job's chunks: SSE (``data: {...}`` events, nothing else) or one JSON array.

    The job is already accepted, so a failure from here on is sent as a chunk whose first key is ``error``,
    which is how Google reports mid-stream errors and what the SDK raises on.
    """

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        try:
            finished, images = await wait_for_result(svc, job.id)
            rendered = render_stream_chunks(finished, images, model, response_id=finished.id, pieces=True)
        except ImagegateError as exc:
            _, body, _ = render_error(exc)
            yield body
            return
        for chunk in rendered:
            yield chunk

    async def sse_events() -> AsyncIterator[bytes]:
        async for chunk in chunks():
            # as for generateContent: a chunk's image goes out beside its JSON, not copied into it
            for piece in framed(dumps_pieces(chunk), b"data: ", b"\r\n\r\n"):
                yield piece

    async def json_array() -> AsyncIterator[bytes]:
        first = True
        async for chunk in chunks():
            for piece in framed(dumps_pieces(chunk), b"[" if first else b",\r\n", b""):
                yield piece
            first = False
        yield b"]" if not first else b"[]"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if sse:
        return StreamingResponse(sse_events(), media_type="text/event-stream", headers=headers)
    return StreamingResponse(json_array(), media_type="application/json", headers=headers)
