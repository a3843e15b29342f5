"""Gemini Batch API: ``models/{model}:batchGenerateContent``, ``GET /{ver}/batches[/{id}]``,
``POST /{ver}/batches/{id}:cancel`` and ``DELETE /{ver}/batches/{id}``, as the google-genai SDK speaks them.

A batch comes inline (``inputConfig.requests.requests[]`` of ``{request, metadata}``) or as a JSONL file
uploaded through the Files API (``inputConfig.fileName``, lines ``{"key", "request"}``). Each request is parsed
and checked on its own: one that is wrong becomes that request's error in the output, never the batch's. The
answer is Google's long-running operation (``name``, ``metadata`` with ``@type`` ``GenerateContentBatch``,
``state`` ``BATCH_STATE_*``, ``batchStats`` as int64 strings; ``done`` and ``output``/``response`` once
finished): inline input gets ``inlinedResponses``, file input a ``responsesFile`` (a generated JSONL file,
downloadable through ``files.download``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from imagegate.core.capabilities import ModelSpec
from imagegate.core.ports import ApiKey
from imagegate.dialects.gemini.errors import render_error
from imagegate.dialects.gemini.requests import (
    file_references,
    parse_batch_request,
    parse_generate_request,
    to_job_spec,
)
from imagegate.dialects.gemini.responses import render_response
from imagegate.errors import ImagegateError, InvalidRequest, NotFound, error_from_code
from imagegate.http.auth import require_principal
from imagegate.http.deps import mark_dialect, services_of
from imagegate.http.openapi_bodies import EMPTY_BODY
from imagegate.services import batches, uploads
from imagegate.services.context import Services
from imagegate.services.queries import load_job_images, raise_if_failed

API_VERSIONS = ("v1", "v1beta")
_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main."
#: google.rpc.Code of each HTTP status a request's error can have (Status.code in a batch's output).
_GRPC_CODES = {400: 3, 401: 16, 402: 8, 403: 7, 404: 5, 409: 10, 429: 8, 499: 1, 500: 13, 503: 14, 504: 4}

router = APIRouter(dependencies=[Depends(mark_dialect("gemini"))], tags=["gemini-batches"])


async def create(request: Request, principal: ApiKey, model: ModelSpec, *, image_size: str | None) -> JSONResponse:
    """``POST /{ver}/models/{model}:batchGenerateContent`` (routed here by the model-action route).

    ``image_size`` is what the model id implied (a resolution-suffixed alias), as for ``generateContent``.
    """
    svc = services_of(request)
    batch, config = parse_batch_request(await _json(request))
    if config.file_name:
        items = await _file_items(svc, principal, config.file_name)
    else:
        listed = config.requests.requests if config.requests is not None else None
        items = [(None, {"request": item.request, "metadata": item.metadata}) for item in listed or ()]
    parsed = [
        await _request(svc, principal, model, key, item, index=i, image_size=image_size)
        for i, (key, item) in enumerate(items)
    ]
    view = await batches.create_batch(
        svc,
        principal,
        model=model.id,
        requests=parsed,
        display_name=batch.display_name or None,
        input_file=config.file_name or None,
        request_id=request.state.request_id,
    )
    return JSONResponse(await _operation(svc, principal, view))


@router.get("/{version}/batches")
async def list_batches(
    version: str,
    request: Request,
    pageSize: int | None = None,
    pageToken: str | None = None,
    principal: ApiKey = Depends(require_principal),
) -> JSONResponse:
    _check_version(version, request)
    svc = services_of(request)
    views, token = await batches.list_batches(svc, principal, page_size=pageSize, page_token=pageToken)
    body: dict[str, Any] = {"operations": [await _operation(svc, principal, view) for view in views]}
    if token:
        body["nextPageToken"] = token
    return JSONResponse(body)


@router.get("/{version}/batches/{name}")
async def get_batch(
    version: str, name: str, request: Request, principal: ApiKey = Depends(require_principal)
) -> JSONResponse:
    _check_version(version, request)
    svc = services_of(request)
    return JSONResponse(await _operation(svc, principal, await batches.get_batch(svc, principal, name)))


@router.post("/{version}/batches/{name_and_action}", openapi_extra=EMPTY_BODY)  # the SDK sends {} or nothing
async def cancel_batch(
    version: str, name_and_action: str, request: Request, principal: ApiKey = Depends(require_principal)
) -> JSONResponse:
    _check_version(version, request)
    name, sep, action = name_and_action.partition(":")
    if not sep or action != "cancel":
        raise NotFound(f"POST {request.url.path} is not a known endpoint; expected batches/NAME:cancel.")
    await batches.cancel_batch(services_of(request), principal, name)
    return JSONResponse({})


@router.delete("/{version}/batches/{name}")
async def delete_batch(
    version: str, name: str, request: Request, principal: ApiKey = Depends(require_principal)
) -> JSONResponse:
    _check_version(version, request)
    await batches.delete_batch(services_of(request), principal, name)
    return JSONResponse({})


async def _request(
    svc: Services,
    principal: ApiKey,
    model: ModelSpec,
    key: str | None,
    item: object,
    *,
    index: int,
    image_size: str | None,
) -> batches.BatchRequest:
    """One request, parsed and checked on its own; what is wrong with it becomes its error."""
    metadata: dict[str, Any] | None = None
    try:
        entry = _object(item, f"requests[{index}]")
        raw_metadata = entry.get("metadata")
        metadata = raw_metadata if isinstance(raw_metadata, dict) else None
        parsed = parse_generate_request(entry.get("request"))
        refs = file_references(parsed)
        images = await asyncio.gather(
            *(uploads.read_upload_image(svc, principal, name, field=field) for name, field in refs)
        )
        files = {field: image for (_, field), image in zip(refs, images, strict=True)}
        spec = to_job_spec(parsed, model, files, image_size=image_size)
    except ImagegateError as exc:
        return batches.BatchRequest(key, metadata, error=exc)
    return batches.BatchRequest(key, metadata, spec=spec)


async def _file_items(svc: Services, principal: ApiKey, file_name: str) -> list[tuple[str | None, object]]:
    file_id = file_name.rpartition("files/")[2] or file_name
    try:
        record, data = await uploads.read_upload(svc, principal, file_id)
    except NotFound:
        raise InvalidRequest(
            f"File {file_name} is not available: it does not exist, has expired, or belongs to another key.",
            field="batch.input_config.file_name",
        ) from None
    if record.mime_type not in uploads.JSONL_MIME_TYPES:
        raise InvalidRequest(
            f"File {file_name} is {record.mime_type}, not JSONL.", field="batch.input_config.file_name"
        )
    items: list[tuple[str | None, object]] = []
    for line in data.decode("utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            items.append((None, {"request": None}))  # this line's own error: not JSON
            continue
        key = row.get("key") if isinstance(row, dict) else None
        items.append((str(key) if key is not None else None, row))
    if not items:
        raise InvalidRequest(f"File {file_name} holds no requests.", field="batch.input_config.file_name")
    return items


async def _operation(svc: Services, principal: ApiKey, view: batches.BatchView) -> dict[str, Any]:
    record = view.record
    entries = record.doc["requests"]
    done = view.state in batches.ENDED
    outcomes = [_outcome(entry, view) for entry in entries]
    succeeded = sum(1 for kind in outcomes if kind == "ok")
    failed = sum(1 for kind in outcomes if kind == "error")
    metadata: dict[str, Any] = {
        "@type": _TYPE + "GenerateContentBatch",
        "model": f"models/{record.model}",
        "name": f"batches/{record.id}",
        "createTime": _time(record.created_at),
        "updateTime": _time(record.updated_at),
        "batchStats": {
            "requestCount": str(len(entries)),
            "pendingRequestCount": str(len(entries) - succeeded - failed),
            "successfulRequestCount": str(succeeded),
            "failedRequestCount": str(failed),
        },
        "state": f"BATCH_STATE_{view.state}",
    }
    if record.display_name:
        metadata["displayName"] = record.display_name
    body: dict[str, Any] = {"name": f"batches/{record.id}", "metadata": metadata}
    if done:
        finished = [job.finished_at for job in view.jobs.values() if job.finished_at is not None]
        metadata["endTime"] = _time(max(finished, default=record.updated_at))
        output = await _output(svc, principal, view)
        metadata["output"] = output
        body["done"] = True
        if view.state == batches.FAILED:  # an Operation holds an error or a response; the output stays readable
            first = (await _response(svc, entries[0], view)).get("error") or {"code": 2, "message": "unknown"}
            body["error"] = {
                "code": first["code"],
                "message": f"All {len(entries)} requests of the batch failed; each one's error is in the output. "
                f"The first: {first['message']}",
            }
        else:
            body["response"] = {"@type": _TYPE + "GenerateContentBatchOutput", **output}
    return body


def _outcome(entry: dict[str, Any], view: batches.BatchView) -> str:
    if entry.get("error"):
        return "error"
    job = view.jobs.get(entry.get("job_id", ""))
    if job is None or not job.status.terminal:
        return "pending"
    return "ok" if job.status.value == "succeeded" else "error"


async def _output(svc: Services, principal: ApiKey, view: batches.BatchView) -> dict[str, Any]:
    record = view.record
    if record.doc.get("input_file"):
        file_id = record.doc.get("output_file")
        if not file_id:
            lines = [
                orjson.dumps({"key": entry.get("key"), **await _response(svc, entry, view)})
                for entry in record.doc["requests"]
            ]
            made = await uploads.create_generated(
                svc,
                principal,
                b"\n".join(lines) + b"\n",
                mime_type="application/jsonl",
                display_name=f"batch-{record.id}-results",
            )
            file_id = (await batches.set_output_file(svc, view, made.id)).record.doc["output_file"]
        return {"responsesFile": f"files/{file_id}"}
    responses = []
    for entry in record.doc["requests"]:
        item = await _response(svc, entry, view)
        if entry.get("metadata") is not None:
            item["metadata"] = entry["metadata"]
        responses.append(item)
    return {"inlinedResponses": {"inlinedResponses": responses}}


async def _response(svc: Services, entry: dict[str, Any], view: batches.BatchView) -> dict[str, Any]:
    """``{"response": GenerateContentResponse}`` or ``{"error": google.rpc.Status}`` for one request."""
    stored = entry.get("error")
    if stored:
        return {"error": _status(error_from_code(stored["code"], stored["message"]))}
    job = view.jobs.get(entry.get("job_id", ""))
    if job is None:
        return {"error": {"code": 13, "message": "The request's job is gone."}}
    model = svc.catalog.resolve(job.model)
    try:
        if model is None:
            raise NotFound(f"model {job.model} is no longer served")
        if job.status.value != "succeeded":
            raise_if_failed(job)
        images = await load_job_images(svc, job)
        return {"response": render_response(job, images, model, response_id=job.id)}
    except ImagegateError as exc:
        return {"error": _status(exc)}


def _status(exc: ImagegateError) -> dict[str, Any]:
    http_status, body, _ = render_error(exc)
    return {"code": _GRPC_CODES.get(http_status, 2), "message": body["error"]["message"]}


def _check_version(version: str, request: Request) -> None:
    if version not in API_VERSIONS:
        raise NotFound(f"{request.method} {request.url.path} is not a known endpoint.")


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"Invalid JSON payload received. '{where}' must be an object.", field=where)
    return {str(k): v for k, v in value.items()}


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest("Invalid JSON payload received.") from exc


def _time(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))
