"""A fleet of real processes on loopback: ``imagegate serve`` and ``imagegate worker`` on one PostgreSQL database.

Every process has a home of its own (as on separate machines) and shares the database, the storage directory,
the URL-signing key and one ``imagegate.toml``. ``books`` reads what the failure tests check after each run.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import make_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with _suppress():
            self.signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


@dataclass
class Fleet:
    root: Path
    database_url: str
    config: Path
    procs: list[Proc] = field(default_factory=list)
    key: str = ""
    key_id: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)  # for every process (a Redis URL, say)

    def env(self, name: str, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "IMAGEGATE_HOME": str(self.root / name),
            "IMAGEGATE_CONFIG": str(self.config),
            "GEMINI_API_KEY": "",
            "IMAGEGATE_GEMINI_API_KEY": "",
            **self.extra_env,
            **extra,
        }

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "imagegate.cli", *args],
            env=self.env("cli"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"imagegate {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def _spawn(self, name: str, args: list[str], port: int | None = None) -> Proc:
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True)
        log = home / "process.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "imagegate.cli", *args],
                env=self.env(name),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        proc = Proc(name, process, log, port)
        self.procs.append(proc)
        return proc

    def serve(self, name: str) -> Proc:
        port = free_port()
        proc = self._spawn(name, ["serve", "--port", str(port)], port)
        _until(lambda: _healthy(proc), proc, "serve did not come up")
        return proc

    def worker(self, name: str, *args: str) -> Proc:
        proc = self._spawn(name, ["worker", *args])
        _until(lambda: "claims" in proc.output(), proc, "worker did not start")
        return proc

    def sql(self, statement: str, *args: Any) -> list[Any]:
        """Rows of one statement (``$1``-style parameters), on a connection of its own."""

        async def run() -> list[Any]:
            import asyncpg

            conn = await asyncpg.connect(
                make_url(self.database_url).set(drivername="postgresql").render_as_string(False)
            )
            try:
                return [tuple(row) for row in await conn.fetch(statement, *args)]
            finally:
                await conn.close()

        return asyncio.run(run())

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()


def _healthy(proc: Proc) -> bool:
    try:
        return httpx.get(f"{proc.url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _until(check: Any, proc: Proc, message: str, *, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.process.returncode}:\n{proc.output()}")
        if check():
            return
        time.sleep(0.1)  # waiting for a process to start, not for time to pass
    raise RuntimeError(f"{proc.name}: {message}:\n{proc.output()}")


def write_config(path: Path, database_url: str, storage: Path, *, slow_ms: int, lease_s: float) -> Path:
    """The fleet's one ``imagegate.toml``: serve only accepts (workers = 0), leases of ``lease_s``, and models
    on emulators: the usual one fast, ``slow-image`` taking ``slow_ms`` per call, ``stall-image`` five times that."""
    path.write_text(
        f"""
database_url = "{database_url}"
queue_url = "database"
storage_shared = true
storage_url = "{storage.as_uri()}"
url_signing_key = "one-secret-shared-by-the-fleet"
access_log = false
workers = 0
job_lease_s = {lease_s}
heartbeat_s = {min(5.0, lease_s / 12)}
sweep_interval_s = 0.3
waiter_check_s = 0.3

[[models]]
id = "gemini-2.5-flash-image"
display_name = "Nano Banana"
aliases = ["nano-banana"]

[[models]]
id = "slow-image"
display_name = "A slow model"

[[models]]
id = "stall-image"
display_name = "A model slower than any stall the tests cause"

[[deployments]]
name = "stall"
provider = "emulator"
model = "stall-image"
options = {{ latency_ms = {slow_ms * 5} }}

[[deployments]]
name = "fast"
provider = "emulator"
model = "gemini-2.5-flash-image"

[[deployments]]
name = "slow"
provider = "emulator"
model = "slow-image"
options = {{ latency_ms = {slow_ms} }}
"""
    )
    return path


@contextmanager
def open_fleet(
    root: Path, database_url: str, *, slow_ms: int = 4000, lease_s: float = 6.0, env: dict[str, str] | None = None
) -> Iterator[Fleet]:
    config = write_config(
        root / "imagegate.toml", database_url, root / "shared-files", slow_ms=slow_ms, lease_s=lease_s
    )
    fleet = Fleet(root, database_url, config, extra_env=dict(env or {}))
    try:
        created = json.loads(fleet.cli("keys", "create", "--name", "fleet", "--credits", "1000", "--json"))
        fleet.key, fleet.key_id = created["key"], created["id"]
        yield fleet
    finally:
        fleet.stop()


@contextmanager
def fleet_on_fresh_database(
    root: Path, admin_url: str, *, lease_s: float, slots: int = 8, env: dict[str, str] | None = None
) -> Iterator[Fleet]:
    """Two ``serve`` (accepting only) and two ``worker --slots N`` on a database made for them, dropped after."""
    import uuid

    name = f"imagegate_fleet_{uuid.uuid4().hex[:12]}"
    admin_dsn = make_url(admin_url).set(drivername="postgresql").render_as_string(False)

    async def admin(statement: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(False)
    try:
        with open_fleet(root, url, lease_s=lease_s, env=env) as running:
            running.serve("api-a")
            running.serve("api-b")
            running.worker("worker-1", "--slots", str(slots))
            running.worker("worker-2", "--slots", str(slots))
            yield running
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def books(fleet: Fleet) -> None:
    """What must hold after any failure: every job ended; at most one hold, capture and release per job, the
    hold fully split between capture and release; every key's balance is its grants less what was taken."""
    open_jobs = fleet.sql("SELECT id, status FROM jobs WHERE status IN ('queued', 'running')")
    assert open_jobs == [], open_jobs
    repeated = fleet.sql(
        "SELECT job_id, kind, count(*) FROM ledger WHERE job_id IS NOT NULL GROUP BY job_id, kind HAVING count(*) > 1"
    )
    assert repeated == [], repeated
    unsplit = fleet.sql(
        "SELECT j.id FROM jobs j LEFT JOIN ledger h ON h.job_id = j.id AND h.kind = 'hold'"
        " LEFT JOIN ledger c ON c.job_id = j.id AND c.kind = 'capture'"
        " LEFT JOIN ledger r ON r.job_id = j.id AND r.kind = 'release'"
        " WHERE coalesce(h.amount, 0) <> coalesce(c.amount, 0) + coalesce(r.amount, 0)"
    )
    assert unsplit == [], unsplit
    off = fleet.sql(
        "SELECT k.id, k.credits, sum(CASE l.kind WHEN 'grant' THEN l.amount WHEN 'hold' THEN -l.amount"
        " WHEN 'release' THEN l.amount ELSE 0 END) AS expected FROM api_keys k JOIN ledger l ON l.key_id = k.id"
        " WHERE k.metered GROUP BY k.id, k.credits HAVING k.credits <> sum(CASE l.kind WHEN 'grant' THEN l.amount"
        " WHEN 'hold' THEN -l.amount WHEN 'release' THEN l.amount ELSE 0 END)"
    )
    assert off == [], off
    files = fleet.sql("SELECT storage_key FROM files")
    root = fleet.root / "shared-files"
    stored = {p.relative_to(root).as_posix() for p in (root / "outputs").rglob("*.*")} if root.exists() else set()
    assert {row[0] for row in files} == stored  # no file row without its object, no object without its row
