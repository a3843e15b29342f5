"""``GET /v1/files/{id}``: stored images behind signed, expiring URLs (no API key needed, the signature is it)."""

from __future__ import annotations

import math

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from imagegate.http.deps import mark_dialect, services_of
from imagegate.services.files import read_file

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


# File links are handed out by the OpenAI and task dialects, so errors here are worded as theirs.
router = APIRouter(tags=["files"], dependencies=[Depends(mark_dialect("openai"))])


@router.api_route("/v1/files/{file_id}", methods=["GET", "HEAD"])
async def get_file(file_id: str, request: Request) -> Response:
    svc = services_of(request)
    now = svc.clock()
    expires = svc.signer.verify(
        file_id, request.query_params.get("expires"), request.query_params.get("signature"), now
    )
    record, data = await read_file(svc, file_id)
    max_age = max(0, math.floor(expires - now.timestamp()))
    headers = {
        "X-Content-Type-Options": "nosniff",
        # The bytes behind an id never change; caches may keep them as long as the link is valid.
        "Cache-Control": f"private, max-age={max_age}, immutable",
        "ETag": f'"{file_id}"',
        "Content-Disposition": f'inline; filename="{file_id}.{_EXTENSIONS.get(record.mime_type, "bin")}"',
    }
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else data
    return Response(body, media_type=record.mime_type, headers={**headers, "Content-Length": str(len(data))})
