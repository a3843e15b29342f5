"""``GET /v1/files/{id}``: stored images behind signed, expiring URLs (no API key needed, the signature is it)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from imagegate.http.deps import mark_dialect
from imagegate.http.file_responses import signed_file_response

# File links are handed out by the OpenAI and task dialects, so errors here are worded as theirs.
router = APIRouter(tags=["files"], dependencies=[Depends(mark_dialect("openai"))])


# One decorator per method: a shared ``api_route`` gives GET and HEAD the same operationId in /openapi.json.
@router.get("/v1/files/{file_id}", operation_id="get_signed_file")
@router.head("/v1/files/{file_id}", operation_id="head_signed_file")
async def get_file(file_id: str, request: Request) -> Response:
    return await signed_file_response(request, file_id)
