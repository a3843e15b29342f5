"""The playground's history kept on the server: a key's Create runs and Threads (turns, branches, inputs).

An entry is the page's own record of what it did: a run names its jobs and what was asked; a thread lists its
turns (user text, input images as references to stored job inputs, model turns as job ids) and, for a branch,
the thread and turn it came from. Jobs stay the truth for images, cost and status; an entry only groups them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class EntryKind(StrEnum):
    RUN = "run"
    THREAD = "thread"
    PRESET = "preset"  # Create form settings saved under a name (the entry's title)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: str
    key_id: str
    kind: EntryKind
    title: str
    doc: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What the gallery asks for: words of the prompt, a model, a status and a date range, newest first."""

    prompt: str | None = None
    model: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: str | None = None  # the last job of the previous page
    limit: int = 24
