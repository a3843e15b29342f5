"""The full job path on S3 storage: a real server stores its images in an S3 server (moto) and serves them back,
and an S3 server that stops answering mid-upload loses no money and leaves no file row without its object."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from backend_servers import MotoS3Server

from .invariants import check_jobs_and_money
from .server import cli, start_server

pytestmark = pytest.mark.e2e


def _bucket(s3: MotoS3Server) -> str:
    name = f"imagegate-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(name)
    return name


def test_images_are_stored_in_s3_and_served_from_it(tmp_path: Path, s3_server: MotoS3Server) -> None:
    bucket = _bucket(s3_server)
    env = {"IMAGEGATE_STORAGE_URL": f"s3://{bucket}/gateway", **s3_server.env()}
    server = start_server(tmp_path / "home", env=env)
    try:
        answer = httpx.post(
            f"{server.url}/v1/images/generations",
            headers={"Authorization": f"Bearer {server.key}"},
            json={"model": "gemini-2.5-flash-image", "prompt": "a lighthouse", "n": 2, "response_format": "url"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        urls = [item["url"] for item in answer.json()["data"]]
        keys = s3_server.list_keys(bucket)
        assert len(keys) == 2 and all(key.startswith("gateway/outputs/") for key in keys)
        served = [httpx.get(url, timeout=30) for url in urls]
        assert all(r.status_code == 200 and r.content.startswith(b"\x89PNG") for r in served)
        assert not (tmp_path / "home" / "files").exists() or not any((tmp_path / "home" / "files").rglob("*.png"))
    finally:
        server.stop()


def _statuses(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT id, status FROM jobs"))


def _error_codes(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT error FROM jobs WHERE status = 'failed'").fetchall()
    return [json.loads(error)["code"] for (error,) in rows if error]


def test_an_s3_server_stopped_mid_upload_loses_no_money(tmp_path: Path) -> None:
    s3 = MotoS3Server(tmp_path / "moto")
    s3.start()
    bucket = _bucket(s3)
    home = tmp_path / "home"
    env = {
        "IMAGEGATE_STORAGE_URL": f"s3://{bucket}",
        **s3.env(),
        # a stopped server answers nothing: one request gives up after a second, without retries
        "IMAGEGATE_S3__TIMEOUT_S": "1",
        "IMAGEGATE_S3__CONNECT_TIMEOUT_S": "1",
        "IMAGEGATE_S3__MAX_RETRIES": "0",
        "IMAGEGATE_EMULATOR__LATENCY_MS": "20",
        "IMAGEGATE_WORKERS": "4",
    }
    server = start_server(home, env=env)
    db = home / "imagegate.db"
    customer = json.loads(cli(home, "keys", "create", "--name", "paying", "--credits", "5", "--json", env=env))
    stopped = False
    try:
        auth = {"Authorization": f"Bearer {customer['key']}"}

        def submit(i: int) -> tuple[int, str]:
            answer = httpx.post(
                f"{server.url}/v1/async/images/generations",
                headers=auth,
                json={"model": "gemini-2.5-flash-image", "prompt": f"picture {i}", "n": 2},
                timeout=60,
            )
            return answer.status_code, answer.json().get("id", "")

        with ThreadPoolExecutor(4) as pool:
            submitted = pool.map(submit, range(40))
            deadline = time.monotonic() + 60
            while len(s3.list_keys(bucket)) < 4:  # some images are stored: uploads are under way
                assert time.monotonic() < deadline, "no image was ever stored"
                time.sleep(0.02)  # polling the S3 server, not waiting for time
            assert s3.process is not None
            os.kill(s3.process.pid, signal.SIGSTOP)  # the store stops answering, mid-upload
            stopped = True
            accepted = list(submitted)
        assert [status for status, _ in accepted] == [200] * 40  # accepting a task needs no storage
        tasks = [
            httpx.get(f"{server.url}/v1/tasks/{task_id}", headers=auth, timeout=30).json() for _, task_id in accepted
        ]
        done = next(task for task in tasks if task["status"] == "succeeded")
        link = httpx.get(done["result"]["data"][0]["url"], timeout=30)
        assert link.status_code == 503, link.text  # the store is down: unavailable, not a server error

        deadline = time.monotonic() + 90
        while "storage_unavailable" not in _error_codes(db):
            assert time.monotonic() < deadline, f"no job met the stopped store: {_statuses(db)}"
            time.sleep(0.05)  # polling the server's database for a job to meet the outage
        os.kill(s3.process.pid, signal.SIGCONT)  # the store comes back
        stopped = False
        while any(status in ("queued", "running") for status in _statuses(db).values()):
            assert time.monotonic() < deadline, f"jobs stuck: {_statuses(db)}"
            time.sleep(0.05)
        after = httpx.post(
            f"{server.url}/v1/images/generations",
            headers={"Authorization": f"Bearer {customer['key']}"},
            json={"model": "gemini-2.5-flash-image", "prompt": "after the outage"},
            timeout=60,
        )
        assert after.status_code == 200, after.text  # storage works again without a restart
    finally:
        if stopped and s3.process is not None:
            os.kill(s3.process.pid, signal.SIGCONT)
        server.stop()
    counts = check_jobs_and_money(db, objects=s3.list_keys(bucket))
    s3.stop()
    assert counts.get("failed", 0) >= 1 and counts.get("succeeded", 0) >= 1, counts
