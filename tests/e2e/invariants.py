"""What must hold after any failure: every job terminal, money moved at most once per job, balances = grants.

Read straight from a server's SQLite database (the process under test is stopped first), so nothing in the
server's own code vouches for itself.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

TERMINAL = {"succeeded", "failed", "cancelled"}


def check_jobs_and_money(db_path: Path, *, objects: Iterable[str] | None = None) -> dict[str, int]:
    """Assert the invariants; ``objects`` (storage keys that exist) also checks every file row has its bytes.

    Returns counts by job status, for the test to judge whether the failure it caused was actually met.
    """
    with sqlite3.connect(db_path) as db:
        jobs = list(db.execute("SELECT id, status, held, charged FROM jobs"))
        entries = list(db.execute("SELECT key_id, job_id, kind, amount, images FROM ledger"))
        files = list(db.execute("SELECT job_id, storage_key FROM files"))
        keys = dict(db.execute("SELECT id, credits FROM api_keys WHERE metered"))

    not_done = [(job_id, status) for job_id, status, _, _ in jobs if status not in TERMINAL]
    assert not not_done, f"jobs left unfinished: {not_done}"

    moves = Counter((job_id, kind) for _, job_id, kind, _, _ in entries if job_id is not None)
    repeated = {move: times for move, times in moves.items() if times > 1}
    assert not repeated, f"money moved more than once for a job: {repeated}"

    files_per_job = Counter(job_id for job_id, _ in files)
    for _, job_id, kind, amount, images in entries:
        if kind == "capture":
            stored = files_per_job[job_id]
            assert images == stored, f"job {job_id}: captured {images} images, stored {stored}"
            assert amount == 0 or images > 0, f"job {job_id}: charged {amount} for no image"
    for job_id, count in files_per_job.items():
        assert moves[(job_id, "capture")] == 1 or count == 0, f"job {job_id} has files but no capture"

    if objects is not None:
        present = set(objects)
        missing = [key for _, key in files if not any(found.endswith(key) for found in present)]
        assert not missing, f"file rows without a stored object: {missing}"

    held = {job_id: held for job_id, _, held, _ in jobs}
    for job_id, status, job_held, charged in jobs:
        if job_held:
            assert moves[(job_id, "hold")] == 1, f"job {job_id} holds {job_held} without a hold entry"
            assert status in TERMINAL and charged is not None, f"job {job_id} never settled"
    for key_id, credits in keys.items():
        mine = [(job_id, kind, amount) for k, job_id, kind, amount, _ in entries if k == key_id]
        granted = sum(a for _, kind, a in mine if kind == "grant")
        holds = sum(a for _, kind, a in mine if kind == "hold")
        released = sum(a for _, kind, a in mine if kind == "release")
        captured = sum(a for _, kind, a in mine if kind == "capture")
        assert credits == granted - holds + released, f"key {key_id}: balance {credits} != ledger"
        assert holds == captured + released, f"key {key_id}: held {holds} != captured {captured} + released {released}"
        for job_id, kind, amount in mine:
            if kind == "release":
                assert amount <= held[job_id], f"job {job_id} released more than it held"
    return dict(Counter(status for _, status, _, _ in jobs))
