"""The playground's history rows (runs and threads per key) and the gallery's search over a key's jobs."""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import Row, String, and_, cast, delete, exists, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from imagegate.core.history import EntryKind, HistoryEntry, JobFilter
from imagegate.persistence.tables import jobs, playground_hidden_jobs, playground_history
from imagegate.persistence.transaction import Transaction

#: The most job rows one gallery page reads while it looks for prompts that match.
SCAN_LIMIT = 2000


class SqlHistoryRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, entry: HistoryEntry) -> None:
        await self._tx.execute(insert(playground_history).values(**_values(entry)))

    async def update(self, entry: HistoryEntry) -> bool:
        statement = (
            update(playground_history)
            .where(playground_history.c.id == entry.id, playground_history.c.key_id == entry.key_id)
            .values(title=entry.title, doc=entry.doc, updated_at=entry.updated_at)
        )
        return bool(getattr(await self._tx.execute(statement), "rowcount", 0))

    async def get(self, key_id: str, entry_id: str) -> HistoryEntry | None:
        query = select(playground_history).where(
            playground_history.c.id == entry_id, playground_history.c.key_id == key_id
        )
        row = (await self._tx.execute(query)).first()
        return None if row is None else _entry(row)

    async def list(
        self, key_id: str, kind: EntryKind, *, limit: int, before: Any = None
    ) -> builtins.list[HistoryEntry]:
        query = select(playground_history).where(
            playground_history.c.key_id == key_id, playground_history.c.kind == kind.value
        )
        if before is not None:
            query = query.where(playground_history.c.updated_at < before)
        query = query.order_by(playground_history.c.updated_at.desc(), playground_history.c.id.desc()).limit(limit)
        return [_entry(row) for row in (await self._tx.execute(query)).all()]

    async def delete(self, key_id: str, entry_id: str) -> bool:
        statement = delete(playground_history).where(
            playground_history.c.id == entry_id, playground_history.c.key_id == key_id
        )
        return bool(getattr(await self._tx.execute(statement), "rowcount", 0))

    async def hide_job(self, key_id: str, job_id: str, at: Any) -> None:
        maker = pg_insert if self._tx.dialect_name == "postgresql" else sqlite_insert
        statement = maker(playground_hidden_jobs).values(key_id=key_id, job_id=job_id, hidden_at=at)
        await self._tx.execute(statement.on_conflict_do_nothing())

    async def find_jobs(self, key_id: str, where: JobFilter) -> builtins.list[tuple[str, dict[str, Any]]]:
        """Ids and spec documents of the key's jobs that match, newest first, hidden ones left out.

        Model, status and dates are matched in SQL; the prompt in Python on the last user turn (the words the
        caller wrote, not the JSON around them), after a coarse SQL pre-filter when the words are ASCII.
        """
        hidden = exists().where(playground_hidden_jobs.c.key_id == key_id, playground_hidden_jobs.c.job_id == jobs.c.id)
        query = select(jobs.c.id, jobs.c.created_at, jobs.c.spec, jobs.c.results).where(
            jobs.c.key_id == key_id, ~hidden
        )
        if where.model:
            query = query.where(jobs.c.model == where.model)
        if where.status:
            # A job that ended with no image at all was refused, whatever its row says (tasks show it so too).
            stored = "succeeded" if where.status == "refused" else where.status
            query = query.where(jobs.c.status == stored)
        if where.since is not None:
            query = query.where(jobs.c.created_at >= where.since)
        if where.until is not None:
            query = query.where(jobs.c.created_at < where.until)
        if where.before_id:
            anchor = select(jobs.c.created_at).where(jobs.c.id == where.before_id).scalar_subquery()
            query = query.where(
                or_(jobs.c.created_at < anchor, and_(jobs.c.created_at == anchor, jobs.c.id < where.before_id))
            )
        words = (where.prompt or "").strip().casefold()
        by_outcome = where.status in ("succeeded", "refused")
        if words and words.isascii():
            query = query.where(cast(jobs.c.spec, String).ilike(f"%{_like_escape(words)}%", escape="\\"))
        query = query.order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
        found: builtins.list[tuple[str, dict[str, Any]]] = []
        if not words and not by_outcome:
            rows = (await self._tx.execute(query.limit(where.limit))).all()
            return [(row.id, row.spec) for row in rows]
        for row in (await self._tx.execute(query.limit(SCAN_LIMIT))).all():
            if by_outcome and (where.status == "refused") == _made_an_image(row.results):
                continue
            if words in prompt_of(row.spec).casefold():
                found.append((row.id, row.spec))
                if len(found) >= where.limit:
                    break
        return found


def prompt_of(spec_doc: dict[str, Any]) -> str:
    """The text of a stored spec's last user turn: what the caller asked for."""
    for turn in reversed(spec_doc.get("turns") or ()):
        if isinstance(turn, dict) and turn.get("role") == "user":
            return "\n".join(str(p["text"]) for p in turn.get("parts") or () if isinstance(p, dict) and "text" in p)
    return ""


def _made_an_image(results: Any) -> bool:
    return any(isinstance(slot, dict) and slot.get("images") for slot in results or ())


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _values(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "key_id": entry.key_id,
        "kind": entry.kind.value,
        "title": entry.title,
        "doc": entry.doc,
        "created_at": entry.created_at,
        "updated_at": entry.updated_at,
    }


def _entry(row: Row[Any]) -> HistoryEntry:
    return HistoryEntry(
        id=row.id,
        key_id=row.key_id,
        kind=EntryKind(row.kind),
        title=row.title,
        doc=row.doc,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
