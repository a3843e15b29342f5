"""Failures of a real fleet on loopback: two ``serve`` (accepting only) and two ``worker`` processes sharing the
machine's PostgreSQL (a fresh database), killed, stopped and cut off while they work.

After each: every job ended, at most one hold/capture/release per job, balances agree with the grants, and
every file row has its object (``fleet.books``). Timing is waited for by watching state, never by sleeping
a fixed time; the fleet's lease is short (6 s: long enough for a
worker starved of CPU on a busy machine to renew, short enough for recoveries to happen within a test).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from .fleet import Fleet, Proc, books, fleet_on_fresh_database

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

FAST = "gemini-2.5-flash-image"
SLOW = "slow-image"  # served by an emulator that takes 4 s per call: a job is surely in flight when we strike
STALL = "stall-image"  # 20 s per call: still in flight when a worker stopped past its lease resumes


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, postgres_admin_url: str) -> Iterator[Fleet]:
    with fleet_on_fresh_database(tmp_path_factory.mktemp("fleet"), postgres_admin_url, lease_s=6.0) as running:
        yield running


def auth(fleet: Fleet) -> dict[str, str]:
    return {"Authorization": f"Bearer {fleet.key}"}


def until(check: Callable[[], Any], what: str, *, within_s: float = 60, log: Proc | None = None) -> Any:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)  # watching the fleet's state change, not waiting for time to pass
    raise AssertionError(f"timed out waiting for {what}" + (f"; {log.name} said:\n{log.output()}" if log else ""))


def live_workers(fleet: Fleet, count: int = 2) -> list[Proc]:
    """The fleet's running workers, topped up to ``count`` (a test before may have killed one)."""
    alive = [p for p in fleet.procs if p.name.startswith("worker") and p.process.poll() is None]
    while len(alive) < count:
        alive.append(fleet.worker(f"worker-{len(fleet.procs) + 1}", "--slots", "8"))
    return alive


def running_job(fleet: Fleet, model: str, attempts: int = 1) -> tuple[str, int] | None:
    rows = fleet.sql(
        "SELECT id, worker FROM jobs WHERE model = $1 AND status = 'running' AND attempts = $2", model, attempts
    )
    return (rows[0][0], int(rows[0][1].rsplit(":", 1)[1])) if rows else None


def by_pid(procs: list[Proc], pid: int) -> Proc:
    return next(p for p in procs if p.pid == pid)


class SyncCall(threading.Thread):
    """A sync images request that blocks while the test strikes the fleet."""

    def __init__(self, url: str, headers: dict[str, str], model: str) -> None:
        super().__init__(daemon=True)
        self.args_ = (url, headers, model)
        self.response: httpx.Response | None = None

    def run(self) -> None:
        url, headers, model = self.args_
        body = {"model": model, "prompt": "a lighthouse in a storm", "response_format": "b64_json"}
        self.response = httpx.post(f"{url}/v1/images/generations", json=body, headers=headers, timeout=120)


def test_a_worker_killed_mid_job_leaves_it_to_another_at_attempt_2(fleet: Fleet) -> None:
    workers = live_workers(fleet)
    api = next(p for p in fleet.procs if p.name == "api-a")
    call = SyncCall(api.url, auth(fleet), SLOW)
    call.start()
    job_id, pid = until(lambda: running_job(fleet, SLOW), "the sync job to start")
    victim = by_pid(workers, pid)
    victim.signal(signal.SIGKILL)
    victim.process.wait(timeout=10)
    call.join(timeout=90)
    assert call.response is not None and call.response.status_code == 200, call.response
    assert len(call.response.json()["data"]) == 1  # the client of api-a got its image from the other worker
    status, attempts, worker = fleet.sql("SELECT status, attempts, worker FROM jobs WHERE id = $1", job_id)[0]
    assert (status, attempts) == ("succeeded", 2) and int(worker.rsplit(":", 1)[1]) != pid
    kinds = fleet.sql("SELECT kind FROM ledger WHERE job_id = $1 ORDER BY kind", job_id)
    assert [k for (k,) in kinds if k != "release"] == ["capture", "hold"]  # exactly one capture (books: no more)
    books(fleet)


def test_a_stopped_worker_past_its_lease_is_fenced_and_cancelled_when_it_resumes(fleet: Fleet) -> None:
    workers = live_workers(fleet)
    api = next(p for p in fleet.procs if p.name == "api-b")
    created = httpx.post(
        f"{api.url}/v1/async/images/generations", json={"model": STALL, "prompt": "a stall"}, headers=auth(fleet)
    )
    assert created.status_code == 200, created.text
    job_id = created.json()["id"]
    _, pid = until(lambda: running_job(fleet, STALL), "the job to start")
    stalled = by_pid(workers, pid)
    stalled.signal(signal.SIGSTOP)
    try:
        _, taker = until(lambda: running_job(fleet, STALL, attempts=2), "another worker to take the job over")
    finally:
        stalled.signal(signal.SIGCONT)
    assert taker != pid

    def stopped_or_fenced() -> bool:
        log = stalled.output()
        # Normally its call is still in flight: the first of its heartbeat (lease gone), the doorbell or the
        # waiter check (the row changed) to tell it stops the call. Had the machine been slow enough for the
        # call to end during the stall, the fenced final write refuses its result.
        cancelled = f"job {job_id} was cancelled while running" in log
        return cancelled or f"job {job_id} attempt 1 lost its lease or was cancelled; discarding its result" in log

    until(stopped_or_fenced, "the resumed worker to stop its call (or be fenced)", log=stalled)
    until(lambda: fleet.sql("SELECT status FROM jobs WHERE id = $1", job_id)[0][0] == "succeeded", "the end")
    status, attempts, worker = fleet.sql("SELECT status, attempts, worker FROM jobs WHERE id = $1", job_id)[0]
    assert (status, attempts, int(worker.rsplit(":", 1)[1])) == ("succeeded", 2, taker)
    assert fleet.sql("SELECT count(*) FROM files WHERE job_id = $1", job_id)[0][0] == 1  # the late one wrote none
    books(fleet)


def test_killing_the_listen_connections_loses_no_answer(fleet: Fleet) -> None:
    live_workers(fleet)
    api = next(p for p in fleet.procs if p.name == "api-a")
    call = SyncCall(api.url, auth(fleet), SLOW)
    call.start()
    until(lambda: running_job(fleet, SLOW), "the sync job to start")
    killed = fleet.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'imagegate-doorbell' AND datname = current_database()"
    )
    assert len(killed) >= 4 and all(ok for (ok,) in killed)  # every process's doorbell
    call.join(timeout=90)
    assert call.response is not None and call.response.status_code == 200, call.response
    until(lambda: "doorbell reconnected" in api.output(), "api-a to reconnect")
    after = SyncCall(api.url, auth(fleet), FAST)  # and the reconnected doorbell works
    after.start()
    after.join(timeout=60)
    assert after.response is not None and after.response.status_code == 200
    books(fleet)
