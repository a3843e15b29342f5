"""A stored output image as the HTTP answer to its signed, expiring link (no API key: the signature is it).

Shared by ``GET /v1/files/{id}`` and the Gemini Files routes, whose ``GET /v1/files/{name}`` has the same path.
"""

from __future__ import annotations

import math

from fastapi import Request
from fastapi.responses import Response

from imagegate.http.deps import services_of
from imagegate.services.files import read_file

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def is_signed_file_link(request: Request) -> bool:
    return "signature" in request.query_params or "expires" in request.query_params


async def signed_file_response(request: Request, file_id: str) -> Response:
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
