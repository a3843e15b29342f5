"""Gemini Files API routes, as the google-genai SDK speaks them.

- ``POST /upload/{v1,v1beta}/files`` with ``X-Goog-Upload-Protocol: resumable`` and ``X-Goog-Upload-Command:
  start``: a session; the answer's ``x-goog-upload-url`` (absolute) is where the chunks go.
- ``POST`` to that URL (``?upload_id=…``, no API key) with ``X-Goog-Upload-Command: upload``, ``upload,
  finalize``, ``finalize`` or ``query`` and ``X-Goog-Upload-Offset``; ``x-goog-upload-status`` says ``active``
  or ``final``, and the final answer is ``{"file": File}``.
- ``GET /{ver}/files/{id}``, ``GET /{ver}/files`` (``pageSize``, ``pageToken``), ``DELETE /{ver}/files/{id}``.

Every status is 200, the only one the SDK takes as success. ``GET /v1/files/{id}`` is also the path of this
server's signed output links; a request with a signature (or an output ``file_…`` id) is answered as one.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from imagegate.core.ports import ApiKey, UploadedFile
from imagegate.errors import InvalidRequest, NotFound
from imagegate.http.auth import require_principal
from imagegate.http.deps import mark_dialect, public_url, services_of
from imagegate.http.file_responses import is_signed_file_link, signed_file_response
from imagegate.http.openapi_bodies import BINARY_BODY
from imagegate.services import uploads

API_VERSIONS = ("v1", "v1beta")

router = APIRouter(dependencies=[Depends(mark_dialect("gemini"))], tags=["gemini-files"])


def render_file(request: Request, record: UploadedFile, version: str) -> dict[str, Any]:
    """Google's ``File`` resource (int64 as a string, RFC 3339 times, ``uri`` absolute)."""
    body: dict[str, Any] = {
        "name": f"files/{record.id}",
        "mimeType": record.mime_type,
        "sizeBytes": str(record.size_bytes),
        "createTime": _time(record.created_at),
        "updateTime": _time(record.updated_at),
        "expirationTime": _time(record.expires_at),
        "uri": public_url(request, f"/{version}/files/{record.id}"),
        "state": record.state,
        "source": record.source,
    }
    if record.display_name:
        body["displayName"] = record.display_name
    if record.sha256:
        body["sha256Hash"] = record.sha256
    if record.source == "GENERATED":
        body["downloadUri"] = public_url(request, f"/download/{version}/files/{record.id}:download?alt=media")
    return body


def _time(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def _check_version(version: str, request: Request) -> None:
    if version not in API_VERSIONS:
        raise NotFound(f"{request.method} {request.url.path} is not a known endpoint.")


@router.post("/upload/{version}/files", openapi_extra=BINARY_BODY)
async def upload(version: str, request: Request) -> Response:
    _check_version(version, request)
    token = request.query_params.get("upload_id")
    if token:
        return await _chunk(request, token)
    principal = await require_principal(request)
    protocol = request.headers.get("x-goog-upload-protocol", "").lower()
    command = request.headers.get("x-goog-upload-command", "").lower()
    if protocol != "resumable" or command != "start":
        raise InvalidRequest(
            "Only resumable uploads are supported: send X-Goog-Upload-Protocol: resumable and "
            "X-Goog-Upload-Command: start, then the bytes to the returned upload URL."
        )
    meta = _file_metadata(await request.body())
    mime_type = request.headers.get("x-goog-upload-header-content-type") or _field(meta, "mimeType", "mime_type")
    size_text = request.headers.get("x-goog-upload-header-content-length") or _field(meta, "sizeBytes", "size_bytes")
    if not mime_type:
        raise InvalidRequest("The upload has no MIME type: send X-Goog-Upload-Header-Content-Type.")
    if not str(size_text or "").strip().isdigit():
        raise InvalidRequest("The upload has no size: send X-Goog-Upload-Header-Content-Length.")
    display = _field(meta, "displayName", "display_name")
    record = await uploads.start_upload(
        services_of(request),
        principal,
        mime_type=str(mime_type),
        size_bytes=int(str(size_text).strip()),
        display_name=str(display) if display else None,
    )
    url = public_url(request, f"/upload/{version}/files?upload_id={record.upload_token}&upload_protocol=resumable")
    return Response(
        status_code=200, headers={"x-goog-upload-url": url, "x-goog-upload-status": "active", "Content-Length": "0"}
    )


async def _chunk(request: Request, token: str) -> Response:
    svc = services_of(request)
    command = {c.strip() for c in request.headers.get("x-goog-upload-command", "").lower().split(",")}
    if command == {"query"}:
        record = await uploads.upload_status(svc, token)
        return Response(
            headers={"x-goog-upload-status": "active", "x-goog-upload-size-received": str(record.received_bytes)}
        )
    if not command or not command <= {"upload", "finalize"}:
        raise InvalidRequest("X-Goog-Upload-Command must be upload, finalize, 'upload, finalize' or query.")
    offset_text = request.headers.get("x-goog-upload-offset", "0").strip()
    if not offset_text.isdigit():
        raise InvalidRequest("X-Goog-Upload-Offset must be a byte offset.")
    data = await request.body() if "upload" in command else b""
    record = await uploads.upload_chunk(svc, token, offset=int(offset_text), data=data, finalize="finalize" in command)
    if record.state != uploads.ACTIVE:
        return Response(headers={"x-goog-upload-status": "active", "Content-Length": "0"})
    version = request.url.path.split("/")[2]
    return JSONResponse({"file": render_file(request, record, version)}, headers={"x-goog-upload-status": "final"})


@router.get("/{version}/files")
async def list_files(
    version: str,
    request: Request,
    pageSize: int | None = None,
    pageToken: str | None = None,
    principal: ApiKey = Depends(require_principal),
) -> JSONResponse:
    _check_version(version, request)
    if pageSize is not None and pageSize < 0:
        raise InvalidRequest(f"Invalid page_size {pageSize}: it must not be negative.", field="page_size")
    page, next_token = await uploads.list_uploads(
        services_of(request), principal, page_size=pageSize, page_token=pageToken
    )
    body: dict[str, Any] = {"files": [render_file(request, record, version) for record in page]}
    if next_token:
        body["nextPageToken"] = next_token
    return JSONResponse(body)


@router.get("/{version}/files/{name}")
async def get_file(version: str, name: str, request: Request) -> Response:
    if version == "v1" and (is_signed_file_link(request) or name.startswith("file_")):
        request.state.dialect = "openai"  # one of this server's own output links, worded as the others
        return await signed_file_response(request, name)
    _check_version(version, request)
    if name.endswith(":download"):  # files.download asks {ver}/files/{id}:download?alt=media
        return await download_file(version, name, request)
    principal = await require_principal(request)
    record = await uploads.get_upload(services_of(request), principal, name)
    return JSONResponse(render_file(request, record, version))


@router.delete("/{version}/files/{name}")
async def delete_file(version: str, name: str, request: Request) -> JSONResponse:
    _check_version(version, request)
    principal = await require_principal(request)
    await uploads.delete_upload(services_of(request), principal, name)
    return JSONResponse({})


@router.get("/download/{version}/files/{name_and_action}")
async def download_file(version: str, name_and_action: str, request: Request) -> Response:
    """``files.download``: the bytes of a file of the caller's key (batch results files, mostly)."""
    _check_version(version, request)
    principal = await require_principal(request)
    name = name_and_action.removesuffix(":download")
    record, data = await uploads.read_upload(services_of(request), principal, name)
    return Response(data, media_type="application/jsonl" if record.mime_type == "jsonl" else record.mime_type)


def _file_metadata(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest("Invalid JSON payload received in the upload's metadata.") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("Invalid JSON payload received. Root element must be a message.")
    inner = body.get("file", body)
    return inner if isinstance(inner, dict) else {}


def _field(meta: dict[str, Any], camel: str, snake: str) -> Any:
    return meta.get(camel, meta.get(snake))
