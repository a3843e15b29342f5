"""SIGKILL at each step of a job's life that can be reached from outside, then a restart on the same home.

A real ``imagegate serve`` (SQLite, local files) in front of a fake Google AI Studio on loopback, with a
metered key. Each case kills the server with SIGKILL (no shutdown, no cleanup) at one moment:

- ``held``: the job is accepted and its credits held, but not yet claimed (the only worker is busy);
- ``claimed``: a worker has taken the job (it is running) and waits for the deployment's only slot, so no
  provider call has been made yet;
- ``in_flight``: the provider call is at the upstream;
- ``stored``: one image of a two-image task is stored, the other still at the upstream (async only: a sync
  Gemini request makes one image);
- ``webhook``: the job's final write is committed and its webhook is being sent;
- ``delivered``: the webhook was delivered (the receiver answered 204 and the row says so).

…for a sync ``generateContent`` with and without ``Idempotency-Key`` and for an async task (the webhook step
exists only for tasks). After the restart: every job ends, money moved once per job and balances match the ledger
(``invariants.check_jobs_and_money``), every stored output has its row and every row its object, a retry with the
same Idempotency-Key gets the one job's answer and no second charge, and a webhook interrupted mid-send is sent
again with the same ``webhook-id``. Not reachable from outside, so not here: the instant between the images being
stored and the final write (``test_restart_recovery`` and the services' recovery tests cover a job re-run after
it), and the instant between a request's arrival and its job's commit (nothing is held then, so nothing can be
stranded).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from .fake_gemini import FakeGemini
from .invariants import check_jobs_and_money
from .server import Server, cli, start_server

pytestmark = pytest.mark.e2e

MODEL = "gemini-2.5-flash-image"
GENERATE = f"/v1beta/models/{MODEL}:generateContent"


class SlowReceiver:
    """A webhook receiver that holds its first delivery until the test lets it go (or the sender dies)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                receiver.ids.append(self.headers["webhook-id"])
                receiver.release.wait(timeout=30)
                with contextlib.suppress(OSError):  # the sender may be dead by now
                    self.send_response(204)
                    self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def google() -> Iterator[FakeGemini]:
    fake = FakeGemini("google").start()
    yield fake
    fake.stop()


@pytest.fixture
def receiver() -> Iterator[SlowReceiver]:
    running = SlowReceiver()
    yield running
    running.release.set()
    running.httpd.shutdown()


def _config(tmp: Path, google: FakeGemini, extra: str = "") -> Path:
    path = tmp / "imagegate.toml"
    path.write_text(
        f"""
[[deployments]]
name = "google"
model = "{MODEL}"
provider = "gemini"
base_url = "{google.url}"
api_key = "upstream-key"
options = {{ max_retries = 0 }}
{extra}
"""
    )
    return path


ENV = {
    "IMAGEGATE_WORKERS": "1",  # one job at a time: a second one waits, held and queued
    "IMAGEGATE_FETCH_ALLOW_NETWORKS": '["127.0.0.1/32"]',
    "IMAGEGATE_WEBHOOK_POLL_S": "0.1",
    "IMAGEGATE_WEBHOOK_RETRY_DELAYS_S": "[0.2, 0.2, 0.2]",
    "IMAGEGATE_WEBHOOK_LEASE_S": "2",  # how long a crashed sender's attempt blocks the next one
}


def _jobs(home: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(home / "imagegate.db") as db:
        return list(db.execute("SELECT id, status FROM jobs ORDER BY created_at"))


def _webhook_state(home: Path) -> str | None:
    with sqlite3.connect(home / "imagegate.db") as db:
        row = db.execute("SELECT state FROM webhooks").fetchone()
    return None if row is None else str(row[0])


def _until(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)  # polling another process (its database, the fakes) for a state to be reached


def _send(server: Server, key: str, mode: str, prompt: str, webhook: str | None, n: int = 1) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}
    if mode in ("sync+key", "async"):
        headers["idempotency-key"] = f"retry-{prompt}"
    if mode == "async":
        body: dict[str, object] = {"model": MODEL, "prompt": prompt, "n": n}
        if webhook:
            body["webhook_url"] = webhook
        return httpx.post(f"{server.url}/v1/async/images/generations", json=body, headers=headers, timeout=60)
    return httpx.post(
        f"{server.url}{GENERATE}", json={"contents": [{"parts": [{"text": prompt}]}]}, headers=headers, timeout=60
    )


def _in_background(call: Callable[[], object]) -> threading.Thread:
    def run() -> None:
        with contextlib.suppress(httpx.TransportError):  # the server dies under it
            call()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


CASES = [
    ("held", "sync"),
    ("held", "sync+key"),
    ("held", "async"),
    ("claimed", "sync"),
    ("claimed", "sync+key"),
    ("claimed", "async"),
    ("in_flight", "sync"),
    ("in_flight", "sync+key"),
    ("in_flight", "async"),
    ("stored", "async"),
    ("webhook", "async"),
    ("delivered", "async"),
]


@pytest.mark.parametrize(("step", "mode"), CASES, ids=[f"{s}-{m}" for s, m in CASES])
def test_a_sigkill_at_each_step_strands_nothing(
    tmp_path: Path, google: FakeGemini, receiver: SlowReceiver, step: str, mode: str
) -> None:
    config = _config(tmp_path, google, "max_concurrency = 1" if step == "claimed" else "")
    home = tmp_path / "home"
    # "claimed" needs two workers: one runs the blocker, the other takes the job and waits for the slot.
    server = start_server(home, config=config, env={**ENV, "IMAGEGATE_WORKERS": "2"} if step == "claimed" else ENV)
    created = cli(home, "keys", "create", "--name", "payer", "--credits", "10", "--json", "--config", str(config))
    key = json.loads(created)["key"]
    prompt = f"{step}-{mode}"
    webhook = receiver.url if step in ("webhook", "delivered") else None
    n = 2 if step == "stored" else 1
    callers: list[threading.Thread] = []
    try:
        if step == "held":
            google.delay_s = 60  # a first job takes the only worker and stays at the upstream
            callers.append(_in_background(lambda: _send(server, key, "sync", "blocker", None)))
            _until(lambda: google.calls == 1, "the blocker reached the upstream")
            callers.append(_in_background(lambda: _send(server, key, mode, prompt, None)))
            _until(lambda: len(_jobs(home)) == 2 and _jobs(home)[1][1] == "queued", "the job was held and queued")
        elif step == "claimed":
            google.delay_s = 60  # the blocker holds the deployment's only slot at the upstream
            callers.append(_in_background(lambda: _send(server, key, "sync", "blocker", None)))
            _until(lambda: google.calls == 1, "the blocker reached the upstream")
            callers.append(_in_background(lambda: _send(server, key, mode, prompt, None)))
            _until(lambda: len(_jobs(home)) == 2 and _jobs(home)[1][1] == "running", "a worker took the job")
            assert google.calls == 1  # claimed, but not yet sent upstream
        elif step == "in_flight":
            google.delay_s = 60
            callers.append(_in_background(lambda: _send(server, key, mode, prompt, None)))
            _until(lambda: google.calls == 1, "the call reached the upstream")
        elif step == "stored":
            google.next_delays = [0, 60]  # the first image comes back at once, the second never before the kill
            callers.append(_in_background(lambda: _send(server, key, mode, prompt, None, n=n)))
            _until(lambda: any((home / "files" / "outputs").rglob("*.png")), "the first image was stored")
        elif step == "webhook":
            accepted = _send(server, key, mode, prompt, webhook)
            assert accepted.status_code in (200, 202), accepted.text
            _until(lambda: len(receiver.ids) == 1, "the webhook was being sent")
            assert _jobs(home)[0][1] == "succeeded"  # the final write is committed before any webhook is sent
        else:
            receiver.release.set()
            accepted = _send(server, key, mode, prompt, webhook)
            assert accepted.status_code in (200, 202), accepted.text
            _until(lambda: _webhook_state(home) == "delivered", "the webhook was delivered")
    finally:
        server.process.kill()  # SIGKILL: no shutdown, no cleanup (and never a server left behind)
        server.process.wait()

    google.delay_s, google.next_delays = 0, []
    receiver.release.set()
    restarted = start_server(home, config=config, env=ENV)
    try:
        _until(lambda: all(status in ("succeeded", "failed") for _, status in _jobs(home)), "every job ended")
        if step == "webhook":
            _until(lambda: len(receiver.ids) >= 2, "the webhook was sent again")
            assert len(set(receiver.ids)) == 1  # the same webhook-id: a receiver can drop the repeat
        if step == "delivered":
            time.sleep(1.0)  # ten of the restarted server's webhook polls: a delivered webhook is never sent again
            assert len(receiver.ids) == 1 and _webhook_state(home) == "delivered"
        if mode != "sync":
            again = _send(restarted, key, mode, prompt, webhook, n=n)  # the client retries with the same key
            assert again.status_code in (200, 202), again.text
            assert len(_jobs(home)) == len(_jobs(home)[:2]) and len({job for job, _ in _jobs(home)}) == len(_jobs(home))
            if mode == "async":
                assert again.json()["id"] == _jobs(home)[-1][0]  # the same task, not a new one
            else:
                assert again.json()["responseId"] == _jobs(home)[-1][0]  # the one job's own answer
    finally:
        restarted.stop()
    for caller in callers:
        caller.join(timeout=5)
    stored = [str(path.relative_to(home / "files")) for path in (home / "files").rglob("*") if path.is_file()]
    statuses = check_jobs_and_money(home / "imagegate.db", objects=stored)
    with sqlite3.connect(home / "imagegate.db") as db:
        rows = {key for (key,) in db.execute("SELECT storage_key FROM files")}
    outputs = {key for key in stored if key.startswith("outputs/")}
    assert outputs == rows, f"stored objects without a row: {outputs - rows}"  # the killed attempt left none
    expected_jobs = 2 if step in ("held", "claimed") else 1
    assert sum(statuses.values()) == expected_jobs, statuses  # no retry made a second job
    assert statuses.get("succeeded") == expected_jobs, statuses
