"""The playground's history as use cases: save, read, list and delete a key's runs and threads, remove a job
from the key's gallery, and search the key's jobs. A key only ever sees and changes its own entries."""

from __future__ import annotations

from typing import Any

from imagegate.core.history import EntryKind, HistoryEntry, JobFilter
from imagegate.core.ids import new_id
from imagegate.core.ports import ApiKey
from imagegate.errors import NotFound
from imagegate.services.context import Services
from imagegate.services.spec_codec import input_object_key

_PREFIX = {EntryKind.RUN: "run", EntryKind.THREAD: "thr", EntryKind.PRESET: "pre"}


async def save(
    svc: Services, principal: ApiKey, kind: EntryKind, title: str, doc: dict[str, Any], entry_id: str | None = None
) -> HistoryEntry:
    """A new entry (``entry_id`` None) or a new version of the key's entry ``entry_id``."""
    now = svc.clock()
    async with svc.uow() as uow:
        if entry_id is None:
            entry = HistoryEntry(new_id(_PREFIX[kind]), principal.id, kind, title, doc, now, now)
            await uow.history.add(entry)
        else:
            existing = await uow.history.get(principal.id, entry_id)
            if existing is None or existing.kind is not kind:
                raise NotFound(f"no {kind.value} {entry_id} in this key's history")
            entry = HistoryEntry(entry_id, principal.id, kind, title, doc, existing.created_at, now)
            await uow.history.update(entry)
        await uow.commit()
    return entry


async def get(svc: Services, principal: ApiKey, kind: EntryKind, entry_id: str) -> HistoryEntry:
    async with svc.uow() as uow:
        entry = await uow.history.get(principal.id, entry_id)
    if entry is None or entry.kind is not kind:
        raise NotFound(f"no {kind.value} {entry_id} in this key's history")
    return entry


async def list_entries(svc: Services, principal: ApiKey, kind: EntryKind, *, limit: int) -> list[HistoryEntry]:
    async with svc.uow(scan=True) as uow:
        return await uow.history.list(principal.id, kind, limit=limit)


async def delete(svc: Services, principal: ApiKey, kind: EntryKind, entry_id: str) -> None:
    async with svc.uow() as uow:
        entry = await uow.history.get(principal.id, entry_id)
        if entry is None or entry.kind is not kind:
            raise NotFound(f"no {kind.value} {entry_id} in this key's history")
        await uow.history.delete(principal.id, entry_id)
        await uow.commit()


async def hide_job(svc: Services, principal: ApiKey, job_id: str) -> None:
    """Take a job out of the key's gallery and searches; its record and ledger entries stay (money moved)."""
    async with svc.uow() as uow:
        job = await uow.jobs.get(job_id)
        if job is None or job.key_id != principal.id:
            raise NotFound(f"no job {job_id} for this key")
        await uow.history.hide_job(principal.id, job_id, svc.clock())
        await uow.commit()


async def find_jobs(svc: Services, principal: ApiKey, where: JobFilter) -> list[tuple[str, dict[str, Any]]]:
    async with svc.uow(scan=True) as uow:
        return await uow.history.find_jobs(principal.id, where)


async def job_request(svc: Services, principal: ApiKey, job_id: str) -> dict[str, Any]:
    """The stored request (spec document) of one of the key's jobs."""
    async with svc.uow() as uow:
        job = await uow.jobs.get(job_id)
        doc = await uow.jobs.get_spec_doc(job_id) if job is not None and job.key_id == principal.id else None
    if doc is None:
        raise NotFound(f"no job {job_id} for this key")
    return doc


async def job_input(svc: Services, principal: ApiKey, job_id: str, digest: str) -> tuple[bytes, str]:
    """An input image of one of the key's jobs (by its content hash), for a thread reopened elsewhere."""
    async with svc.uow() as uow:
        job = await uow.jobs.get(job_id)
        doc = await uow.jobs.get_spec_doc(job_id) if job is not None and job.key_id == principal.id else None
    for turn in (doc or {}).get("turns") or ():
        for part in turn.get("parts") or ():
            if part.get("image") == digest:
                return await svc.store.get(input_object_key(digest)), str(part.get("mime_type") or "image/png")
    raise NotFound(f"job {job_id} has no input image {digest}")


def describe_job(job_id: str, spec_doc: dict[str, Any]) -> dict[str, Any]:
    """What a stored job was asked: its last user turn's text and input images (by content hash), the settings
    a page needs to reopen or rerun it, and the length of its conversation."""
    turns = [t for t in spec_doc.get("turns") or () if isinstance(t, dict)]
    asked: dict[str, Any] = next((t for t in reversed(turns) if t.get("role") == "user"), {"parts": []})
    parts = [p for p in asked.get("parts") or () if isinstance(p, dict)]
    inputs = [{"job_id": job_id, "sha256": p["image"], "mime_type": p.get("mime_type")} for p in parts if "image" in p]
    return {
        "id": job_id,
        "prompt": "\n".join(str(p["text"]) for p in parts if "text" in p),
        "input_images": len(inputs),
        "inputs": inputs,
        "aspect_ratio": spec_doc.get("aspect_ratio"),
        "image_size": spec_doc.get("image_size"),
        # a seed the server drew is not the caller's: reopening such a job asks for a new image, as it did
        "seed": None if spec_doc.get("seed_drawn") else spec_doc.get("seed"),
        "negative_prompt": spec_doc.get("negative_prompt"),
        "steps": spec_doc.get("steps"),
        "guidance": spec_doc.get("guidance"),
        "output_mime_type": spec_doc.get("output_mime_type"),
        "output_quality": spec_doc.get("output_quality"),
        "n": spec_doc.get("n", 1),
        "turns": len(turns),
        "context_images": sum(1 for t in turns for p in t.get("parts") or () if isinstance(p, dict) and "image" in p),
        "dialect": spec_doc.get("dialect"),
    }
