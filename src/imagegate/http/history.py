"""The playground's history over HTTP, per key: ``/v1/playground/runs``, ``/v1/playground/threads`` and
``/v1/playground/presets`` (list, create, read, replace, delete), ``GET /v1/playground/search`` (the gallery:
the key's jobs by prompt, model, status and date), ``DELETE /v1/playground/jobs/{id}`` (out of the gallery) and
``GET /v1/playground/jobs/{id}/inputs/{sha256}`` (an input image of a job, for a thread opened elsewhere).

Documents are checked here (shape and size); their meaning is the page's. Job ids in them are references:
whatever a page reads through them is checked against the key again when it is read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from imagegate.core.history import EntryKind, HistoryEntry, JobFilter
from imagegate.core.ports import ApiKey
from imagegate.errors import InvalidRequest
from imagegate.http.auth import require_principal
from imagegate.http.deps import mark_dialect, services_of
from imagegate.services import history

router = APIRouter(dependencies=[Depends(mark_dialect("openai"))], tags=["playground"], include_in_schema=False)

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
Text = Annotated[str, Field(max_length=32_000)]
STATUSES = ("queued", "running", "succeeded", "refused", "failed", "cancelled")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputRef(Strict):
    job_id: Id
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    mime_type: Annotated[str, Field(max_length=40)] = "image/png"


class ThreadTurn(Strict):
    role: Literal["user", "model"]
    text: Text = ""
    inputs: Annotated[list[InputRef], Field(max_length=16)] = []
    job_id: Id | None = None  # a model turn's job (its images, cost and status live there)
    error: Annotated[str | None, Field(max_length=2000)] = None


class ThreadDoc(Strict):
    turns: Annotated[list[ThreadTurn], Field(max_length=400)] = []
    parent_id: Id | None = None  # the thread this one branched from
    branch_turn: Annotated[int | None, Field(ge=0)] = None
    model: Annotated[str | None, Field(max_length=200)] = None


class RunDoc(Strict):
    prompt: Text = ""
    model: Annotated[str, Field(max_length=200)]
    params: Annotated[dict[str, str | int | float | bool | None], Field(max_length=32)] = {}
    job_ids: Annotated[list[Id], Field(min_length=1, max_length=16)]
    targets: Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=16)] = []  # compare
    inputs: Annotated[list[InputRef], Field(max_length=16)] = []


class PresetDoc(Strict):
    """Create form settings; ``model`` None: keep the one chosen."""

    model: Annotated[str | None, Field(max_length=200)] = None
    params: Annotated[dict[str, str | int | float | bool | None], Field(max_length=32)] = {}


class PresetBody(Strict):
    title: Annotated[str, Field(min_length=1, max_length=80)]  # the preset's name
    doc: PresetDoc


class ThreadBody(Strict):
    title: Annotated[str, Field(min_length=1, max_length=200)]
    doc: ThreadDoc


class RunBody(Strict):
    title: Annotated[str, Field(min_length=1, max_length=200)]
    doc: RunDoc


def _render(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "object": f"playground.{entry.kind.value}",
        "title": entry.title,
        "created_at": int(entry.created_at.timestamp()),
        "updated_at": int(entry.updated_at.timestamp()),
        **entry.doc,
    }


_KINDS = {"runs": EntryKind.RUN, "threads": EntryKind.THREAD, "presets": EntryKind.PRESET}
Kind = Literal["runs", "threads", "presets"]


def _kind(name: str) -> EntryKind:
    return _KINDS[name]


async def _list(request: Request, principal: ApiKey, kind: EntryKind, limit: int) -> JSONResponse:
    entries = await history.list_entries(services_of(request), principal, kind, limit=limit)
    return JSONResponse({"object": "list", "data": [_render(e) for e in entries]})


@router.get("/v1/playground/threads")
async def list_threads(
    request: Request, limit: int = Query(50, ge=1, le=200), principal: ApiKey = Depends(require_principal)
) -> JSONResponse:
    return await _list(request, principal, EntryKind.THREAD, limit)


@router.get("/v1/playground/runs")
async def list_runs(
    request: Request, limit: int = Query(20, ge=1, le=200), principal: ApiKey = Depends(require_principal)
) -> JSONResponse:
    return await _list(request, principal, EntryKind.RUN, limit)


@router.post("/v1/playground/threads")
async def create_thread(body: ThreadBody, request: Request, p: ApiKey = Depends(require_principal)) -> JSONResponse:
    entry = await history.save(services_of(request), p, EntryKind.THREAD, body.title, body.doc.model_dump())
    return JSONResponse(_render(entry), status_code=201)


@router.put("/v1/playground/threads/{entry_id}")
async def replace_thread(
    entry_id: str, body: ThreadBody, request: Request, p: ApiKey = Depends(require_principal)
) -> JSONResponse:
    doc = body.doc.model_dump()
    entry = await history.save(services_of(request), p, EntryKind.THREAD, body.title, doc, entry_id)
    return JSONResponse(_render(entry))


@router.post("/v1/playground/runs")
async def create_run(body: RunBody, request: Request, p: ApiKey = Depends(require_principal)) -> JSONResponse:
    entry = await history.save(services_of(request), p, EntryKind.RUN, body.title, body.doc.model_dump())
    return JSONResponse(_render(entry), status_code=201)


@router.get("/v1/playground/presets")
async def list_presets(
    request: Request, limit: int = Query(100, ge=1, le=200), principal: ApiKey = Depends(require_principal)
) -> JSONResponse:
    return await _list(request, principal, EntryKind.PRESET, limit)


@router.post("/v1/playground/presets")
async def create_preset(body: PresetBody, request: Request, p: ApiKey = Depends(require_principal)) -> JSONResponse:
    entry = await history.save(services_of(request), p, EntryKind.PRESET, body.title, body.doc.model_dump())
    return JSONResponse(_render(entry), status_code=201)


@router.put("/v1/playground/presets/{entry_id}")
async def replace_preset(
    entry_id: str, body: PresetBody, request: Request, p: ApiKey = Depends(require_principal)
) -> JSONResponse:
    doc = body.doc.model_dump()
    entry = await history.save(services_of(request), p, EntryKind.PRESET, body.title, doc, entry_id)
    return JSONResponse(_render(entry))


@router.delete("/v1/playground/jobs/{job_id}")
async def hide_job(job_id: str, request: Request, p: ApiKey = Depends(require_principal)) -> JSONResponse:
    await history.hide_job(services_of(request), p, job_id)
    return JSONResponse({"id": job_id, "deleted": True})


@router.get("/v1/playground/jobs/{job_id}")
async def describe_job(job_id: str, request: Request, p: ApiKey = Depends(require_principal)) -> JSONResponse:
    doc = await history.job_request(services_of(request), p, job_id)
    return JSONResponse(history.describe_job(job_id, doc))


@router.get("/v1/playground/jobs/{job_id}/inputs/{digest}")
async def job_input(job_id: str, digest: str, request: Request, p: ApiKey = Depends(require_principal)) -> Response:
    data, mime = await history.job_input(services_of(request), p, job_id, digest)
    return Response(data, media_type=mime, headers={"Cache-Control": "private, max-age=86400"})


def _day(text: str | None, field: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidRequest(f"{field} must be a date like 2026-12-02, got {text!r}", field=field) from exc


@router.get("/v1/playground/search")
async def search_jobs(
    request: Request,
    q: str | None = Query(None, max_length=500, description="words of the prompt"),
    model: str | None = Query(None, max_length=200),
    status: str | None = Query(None),
    since: str | None = Query(None, description="from this day (UTC), inclusive"),
    until: str | None = Query(None, description="up to this day (UTC), inclusive"),
    before: str | None = Query(None, max_length=64, description="the last job id of the previous page"),
    limit: int = Query(24, ge=1, le=100),
    principal: ApiKey = Depends(require_principal),
) -> JSONResponse:
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}", field="status")
    last = _day(until, "until")
    if last is not None and until is not None and len(until) == 10:
        last = last.replace(hour=23, minute=59, second=59, microsecond=999_999)
    where = JobFilter(q, model, status, _day(since, "since"), last, before, limit + 1)
    found = await history.find_jobs(services_of(request), principal, where)
    page = found[:limit]
    return JSONResponse(
        {
            "object": "list",
            "data": [history.describe_job(job_id, doc) for job_id, doc in page],
            "has_more": len(found) > limit,
            "last_id": page[-1][0] if page else None,
        }
    )


# Last: the fixed paths above (jobs/…) must match before these.
@router.get("/v1/playground/{kind}/{entry_id}")
async def get_entry(
    kind: Kind, entry_id: str, request: Request, p: ApiKey = Depends(require_principal)
) -> JSONResponse:
    return JSONResponse(_render(await history.get(services_of(request), p, _kind(kind), entry_id)))


@router.delete("/v1/playground/{kind}/{entry_id}")
async def delete_entry(
    kind: Kind, entry_id: str, request: Request, p: ApiKey = Depends(require_principal)
) -> JSONResponse:
    await history.delete(services_of(request), p, _kind(kind), entry_id)
    return JSONResponse({"id": entry_id, "deleted": True})
