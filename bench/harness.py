"""Processes and load for the benchmarks: start the fake upstream, imagegate and LiteLLM; send timed requests.

Everything runs as separate processes on loopback; the load generator is this process (``loadgen.py``: raw
HTTP/1.1 keep-alive sockets, one connection per request in flight), and it sends the same request body to each
target. Every run works in a scratch directory (``workdir()``) that is removed afterwards, images included.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from loadgen import Answer, build_request, hammer

BENCH = Path(__file__).resolve().parent
MODEL = "gemini-2.5-flash-image"
BODY = {"contents": [{"role": "user", "parts": [{"text": "a lighthouse at dusk, photorealistic"}]}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mib(pid: int) -> float | None:
    """The process's peak resident memory (VmHWM), children not included."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int, *, main_thread: bool = False) -> float | None:
    """User plus system CPU time the process has used so far (from /proc; None elsewhere); with
    ``main_thread`` only its first thread's, which in imagegate runs the event loop (the rest is threads:
    storage writes, SQLite checkpoints, ``to_thread`` work)."""
    stat = f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat"
    try:
        fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class MemoryCgroup:
    """A memory cgroup with a limit, made under this process's own, that services can be started in: a gateway
    in a container with a memory limit (``docker run --memory``), whose page cache is reclaimed and reused
    at the limit instead of growing into never-touched memory.

    Why the benchmarks offer it: on this kind of VM the first touch of a guest page the host has taken back (free
    page reporting) costs far more than the copy itself; writing a new 1.55 MB file costs 2-4 ms of kernel time
    once the recently freed pages run out, and 0.36 ms inside a cgroup that has reached its limit
    (docs/benchmarks.md, seventh round). Works on cgroup v1 and v2 where this process may create cgroups.
    """

    def __init__(self, name: str, limit_mib: int) -> None:
        self.path = _own_memory_cgroup() / name
        try:
            self.path.mkdir()
            limit = str(limit_mib * 1024 * 1024)
            if (self.path / "memory.max").exists():  # v2
                (self.path / "memory.max").write_text(limit)
            else:  # v1
                (self.path / "memory.limit_in_bytes").write_text(limit)
        except OSError as exc:
            raise RuntimeError(f"--memory-limit-mib needs a writable memory cgroup ({self.path}): {exc}") from exc

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def usage_mib(self) -> float:
        usage = self.path / "memory.current"  # v2
        if not usage.exists():
            usage = self.path / "memory.usage_in_bytes"  # v1
        return int(usage.read_text()) / (1024 * 1024)

    def fill(self, directory: Path, limit_mib: int, headroom_mib: int = 64) -> None:
        """Bring the cgroup to its limit now, as a long-running gateway's would be: a helper process inside it
        writes a ballast file of clean page cache (synced, so reclaiming it needs no writeback), which stays
        charged here after the helper exits. The gateway's first writes then reuse those pages, as they would in
        steady state, instead of first filling the limit with new ones."""
        mib = int(limit_mib - self.usage_mib() - headroom_mib)
        if mib <= 0:
            return
        helper = (
            "import os, sys\n"
            "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
            "block = bytes(1 << 20)\n"
            "with open(sys.argv[2], 'wb') as f:\n"
            "    for _ in range(int(sys.argv[3])):\n"
            "        f.write(block)\n"
            "    f.flush()\n"
            "    os.fsync(f.fileno())\n"
        )
        ballast = directory / "page-cache-ballast"
        subprocess.run(
            [sys.executable, "-c", helper, str(self.path / "cgroup.procs"), str(ballast), str(mib)], check=True
        )

    def remove(self) -> None:
        with contextlib.suppress(OSError):  # still busy (a process left): the parent's cleanup takes it
            self.path.rmdir()


def _own_memory_cgroup() -> Path:
    """Where this process's memory cgroup is mounted: a v1 ``memory`` hierarchy or the v2 unified one."""
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory") / path.lstrip("/")
    for line in lines:
        if line.startswith("0::"):
            return Path("/sys/fs/cgroup") / line[3:].lstrip("/")
    raise RuntimeError("no memory cgroup found in /proc/self/cgroup")


@dataclass
class Service:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    headers: dict[str, str] = field(default_factory=dict)
    log: Path | None = None
    cgroup: MemoryCgroup | None = None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.cgroup is not None:
            self.cgroup.remove()

    def wait_until_up(self, path: str, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.tail()}")
            try:
                if httpx.get(self.url + path, timeout=2, headers=self.headers).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not come up: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log and self.log.exists() else ""


def start_upstream(
    work: Path,
    *,
    image: int,
    delay_ms: float,
    p50_ms: float | None = None,
    p95_ms: float | None = None,
    fail_rate: float = 0.0,
) -> Service:
    port = free_port()
    args = [sys.executable, str(BENCH / "fake_upstream.py"), "--port", str(port), "--image", str(image)]
    args += ["--delay-ms", str(delay_ms), "--fail-rate", str(fail_rate)]
    if p50_ms is not None:
        args += ["--p50-ms", str(p50_ms), "--p95-ms", str(p95_ms or p50_ms)]
    log = work / "upstream.log"
    process = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    service = Service("fake upstream", f"http://127.0.0.1:{port}", process, log=log)
    service.wait_until_up("/")
    return service


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one run (its SQLAlchemy URL), dropped afterwards."""
    name = f"imagegate_bench_{os.getpid()}_{int(time.time())}"
    subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
    finally:
        subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)


def start_imagegate(
    work: Path,
    upstream: Service,
    *,
    workers: int,
    extra_env: dict[str, str] | None = None,
    name: str = "imagegate",
    provider_retries: int = 0,
    memory_limit_mib: int | None = None,
) -> Service:
    home = work / "imagegate"
    home.mkdir(parents=True, exist_ok=True)
    (home / "imagegate.toml").write_text(
        f"""workers = {workers}
sync_timeout_s = 3600
job_lease_s = 3600
file_retention_days = 1

[[deployments]]
name = "fake-google"
model = "{MODEL}"
provider = "gemini"
base_url = "{upstream.url}"
api_key = "bench-upstream-key"
options = {{ max_connections = {max(workers, 100)}, max_retries = {provider_retries}, timeout_s = 600 }}
"""
    )
    env = {**os.environ, "IMAGEGATE_HOME": str(home), "GEMINI_API_KEY": "", **(extra_env or {})}
    cli = [sys.executable, "-m", "imagegate.cli"]
    created = subprocess.run(
        [*cli, "keys", "create", "--name", "bench", "--json"], env=env, capture_output=True, check=True
    )
    key = json.loads(created.stdout)["key"]
    port = free_port()
    log = home / "imagegate.log"
    process = subprocess.Popen(
        [*cli, "serve", "--port", str(port)], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    service = Service(name, f"http://127.0.0.1:{port}", process, {"x-goog-api-key": key}, log)
    _limit(service, memory_limit_mib, home, "/healthz")
    service.wait_until_up("/healthz")
    return service


def _limit(service: Service, memory_limit_mib: int | None, work: Path, up_path: str) -> None:
    """Move a just-started service into a cgroup of its own (its start-up memory stays charged where it began)
    and, once it is up, bring the cgroup to its limit (``MemoryCgroup.fill``)."""
    if memory_limit_mib is None:
        return
    try:
        service.cgroup = MemoryCgroup(f"bench-{service.name}-{service.process.pid}", memory_limit_mib)
        service.cgroup.add(service.process.pid)
        service.wait_until_up(up_path, timeout_s=180)
        service.cgroup.fill(work, memory_limit_mib)
    except (OSError, RuntimeError, subprocess.CalledProcessError):
        service.stop()
        raise


def start_litellm(work: Path, upstream: Service, litellm: Path, memory_limit_mib: int | None = None) -> Service:
    config = work / "litellm.yaml"
    config.write_text(
        f"""model_list:
  - model_name: {MODEL}
    litellm_params:
      model: gemini/{MODEL}
      api_base: {upstream.url}
      api_key: bench-upstream-key
litellm_settings:
  set_verbose: false
  json_logs: false
general_settings:
  master_key: sk-bench-1234
"""
    )
    port = free_port()
    log = work / "litellm.log"
    env = {**os.environ, "LITELLM_LOG": "ERROR", "DISABLE_SCHEMA_UPDATE": "true", "LITELLM_TELEMETRY": "False"}
    process = subprocess.Popen(
        [str(litellm), "--config", str(config), "--port", str(port), "--num_workers", "1"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    service = Service("litellm", f"http://127.0.0.1:{port}", process, {"x-goog-api-key": "sk-bench-1234"}, log)
    _limit(service, memory_limit_mib, work, "/health/liveliness")
    service.wait_until_up("/health/liveliness", timeout_s=180)
    return service


@dataclass
class Run:
    target: str
    concurrency: int
    requests: int
    latencies_ms: list[float]
    errors: int
    wall_s: float
    first_error: str | None = None
    ttfb_ms: list[float] = field(default_factory=list)
    client_cpu_ms: float | None = None

    def percentile(self, q: float, values: list[float] | None = None) -> float | None:
        values = self.latencies_ms if values is None else values
        if not values:
            return None
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    def summary(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "errors": self.errors,
            "p50_ms": _round(self.percentile(0.50)),
            "p99_ms": _round(self.percentile(0.99)),
            "mean_ms": _round(statistics.fmean(self.latencies_ms)) if self.latencies_ms else None,
            "ttfb_p50_ms": _round(self.percentile(0.50, self.ttfb_ms)),
            "throughput_rps": round(self.requests / self.wall_s, 1) if self.wall_s else None,
            "client_cpu_ms_per_request": _round(self.client_cpu_ms),
            "first_error": self.first_error,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _answer_check(marker: bytes) -> Callable[[Answer], str | None]:
    def check(answer: Answer) -> str | None:
        if answer.status != 200 or marker not in answer.head:
            return f"HTTP {answer.status}: {answer.head[:300]!r}"
        return None

    return check


#: A Chat Completions request for the same image, streamed (OpenRouter's shape, imagegate's /v1/chat/completions).
CHAT_BODY = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "a lighthouse at dusk, photorealistic"}],
    "modalities": ["image", "text"],
    "stream": True,
}


async def load(
    target: str,
    url: str,
    headers: dict[str, str],
    *,
    concurrency: int,
    requests: int,
    body: dict[str, Any] | None = None,
    marker: bytes = b"inlineData",
) -> Run:
    """``requests`` POSTs of the same body (generateContent's by default), ``concurrency`` at a time.

    An answer counts when it is a 200 whose first KiB carry ``marker``.
    """
    payload = json.dumps(body or BODY).encode()
    request = build_request("POST", url, {**headers, "content-type": "application/json"}, payload)
    # one exchange per connection first, so connection set-up is not counted as the gateway's latency
    warm = build_request("GET", url.split("/v1beta")[0] + "/healthz", headers)
    check = _answer_check(marker)
    stats = await hammer(url, request, concurrency=concurrency, requests=requests, check=check, warm=warm)
    return Run(
        target,
        concurrency,
        requests,
        stats.latencies_ms,
        stats.errors,
        stats.wall_s,
        stats.first_error,
        stats.ttfb_ms,
        stats.client_cpu_ms,
    )


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A scratch directory for one run (databases, logs, every image written), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="imagegate-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
