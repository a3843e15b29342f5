"""A server killed mid-job: on restart the job runs again and finishes; it never stays "running"."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from .server import start_server

pytestmark = pytest.mark.e2e


def job_statuses(home: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(home / "imagegate.db") as db:
        return list(db.execute("SELECT id, status, attempts FROM jobs ORDER BY created_at"))


def test_a_job_killed_mid_run_is_finished_after_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    slow = start_server(home, env={"IMAGEGATE_EMULATOR__LATENCY_MS": "600000"})

    def doomed_request() -> None:
        with contextlib.suppress(httpx.TransportError):  # the server is killed under it
            httpx.post(
                f"{slow.url}/v1beta/models/gemini-2.5-flash-image:generateContent",
                json={"contents": [{"parts": [{"text": "a slow picture"}]}]},
                headers={"x-goog-api-key": slow.key},
                timeout=60,
            )

    caller = threading.Thread(target=doomed_request, daemon=True)
    caller.start()
    deadline = time.monotonic() + 30
    while not any(status == "running" for _, status, _ in job_statuses(home)):
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)  # polling another process's database for the job to start
    slow.process.kill()  # no shutdown, no cleanup: like a crash
    slow.process.wait()
    [(job_id, status, attempts)] = job_statuses(home)
    assert (status, attempts) == ("running", 1)

    fast = start_server(home)
    try:
        deadline = time.monotonic() + 30
        while job_statuses(home)[0][1] == "running" or job_statuses(home)[0][1] == "queued":
            assert time.monotonic() < deadline, f"job stuck: {job_statuses(home)}"
            time.sleep(0.05)
        [(same_id, status, attempts)] = job_statuses(home)
        assert (same_id, status, attempts) == (job_id, "succeeded", 2)
    finally:
        fast.stop()
    caller.join(timeout=5)
