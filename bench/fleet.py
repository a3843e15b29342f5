"""The database queue across processes: submissions/s and sync added latency with 1, 2 and 4 API processes,
and many tasks held at once across the fleet, all on a fresh PostgreSQL database.

    python bench/fleet.py                                  # 1, 2, 4 API processes; 2,000 submissions, 200 sync
    python bench/fleet.py --apis 1 2 --submissions 500 --sync 50        # a quick look
    python bench/fleet.py --apis 2 --held 10000 --submissions 0 --sync 0  # 10,000 tasks held across processes

For each count of API processes (``imagegate serve`` with ``workers = 0``, so they only accept):

* submissions: ``POST /v1/async/images/generations`` from 64 raw keep-alive connections (``loadgen.py``) spread
  evenly over the API processes, while no worker runs (the rows pile up queued): the accept path alone. The
  rate is all submissions over the wall time; the CPU per submission is the API processes' CPU over the run
  divided by the submissions.
* sync added latency: one ``imagegate worker`` (32 slots) is started, then ``generateContent`` requests at
  concurrency 1, round-robin over the API processes, against a fake upstream answering at once; the added
  latency at a percentile is that percentile through the fleet minus the same percentile straight to the
  upstream, measured back to back. It includes a hop the one-process server does not have: accept on A,
  claim on the worker (woken by NOTIFY), answer read back by A from the database and the store.
* held (``--held N``): N tasks submitted through the API processes while two workers with N/2 slots each hold
  them against an upstream taking p50 9 s / p95 14 s; reports submission errors, the most running at once, the
  time until all ended and each process's peak memory.

Everything runs on loopback on this machine (the load generator, the API processes, the workers, the fake
upstream and PostgreSQL share its cores), so the figures are the shape of the scaling, not a capacity claim.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    MODEL,
    Service,
    cpu_seconds,
    free_port,
    load,
    peak_rss_mib,
    postgres_database,
    start_upstream,
    workdir,
)
from loadgen import Answer, build_request, hammer

CLI = [sys.executable, "-m", "imagegate.cli"]


def write_config(work: Path, database_url: str, upstream: Service, *, slots_hint: int) -> Path:
    config = work / "imagegate.toml"
    config.write_text(
        f"""database_url = "{database_url}"
queue_url = "database"
storage_url = "{(work / "files").as_uri()}"
storage_shared = true
url_signing_key = "bench-fleet-signing-key"
workers = 0
access_log = false
sync_timeout_s = 3600
job_lease_s = 600
file_retention_days = 1

[[deployments]]
name = "fake-google"
model = "{MODEL}"
provider = "gemini"
base_url = "{upstream.url}"
api_key = "bench-upstream-key"
options = {{ max_connections = {max(slots_hint, 100)}, max_retries = 0, timeout_s = 600 }}
"""
    )
    return config


def env_for(work: Path, name: str, config: Path) -> dict[str, str]:
    home = work / name
    home.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "IMAGEGATE_HOME": str(home), "IMAGEGATE_CONFIG": str(config), "GEMINI_API_KEY": ""}


def start_api(work: Path, config: Path, name: str, key: str) -> Service:
    port = free_port()
    log = work / f"{name}.log"
    process = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=env_for(work, name, config),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    service = Service(name, f"http://127.0.0.1:{port}", process, {"x-goog-api-key": key}, log)
    service.wait_until_up("/healthz")
    return service


def start_worker(work: Path, config: Path, name: str, slots: int) -> Service:
    log = work / f"{name}.log"
    process = subprocess.Popen(
        [*CLI, "worker", "--slots", str(slots)],
        env=env_for(work, name, config),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    service = Service(name, "", process, log=log)
    deadline = time.monotonic() + 90
    while "claims" not in service.tail():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start: {service.tail()}")
        time.sleep(0.2)
    return service


async def submit(apis: list[Service], key: str, total: int, concurrency: int) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}

    def check(answer: Answer) -> str | None:
        return None if answer.status == 200 else f"HTTP {answer.status} {answer.head[:200]!r}"

    def requests_for(api: Service) -> Any:
        def request(number: int) -> bytes:
            body = json.dumps({"model": MODEL, "prompt": f"task {number}", "size": "1024x1024"}).encode()
            return build_request("POST", f"{api.url}/v1/async/images/generations", headers, body)

        return request

    share, per_api = total // len(apis), max(1, concurrency // len(apis))
    cpu_before = [cpu_seconds(api.process.pid) or 0.0 for api in apis]
    started = time.perf_counter()
    stats = await asyncio.gather(
        *(hammer(api.url, requests_for(api), concurrency=per_api, requests=share, check=check) for api in apis)
    )
    wall = time.perf_counter() - started
    cpu = sum((cpu_seconds(api.process.pid) or 0.0) - before for api, before in zip(apis, cpu_before, strict=True))
    done = sum(len(s.latencies_ms) for s in stats)
    return {
        "submissions": share * len(apis),
        "errors": sum(s.errors for s in stats),
        "first_error": next((s.first_error for s in stats if s.first_error), None),
        "wall_s": round(wall, 2),
        "submissions_per_s": round(done / wall, 1),
        "api_cpu_ms_per_submission": round(cpu * 1000 / done, 2) if done else None,
        "p50_ms": _pct([x for s in stats for x in s.latencies_ms], 0.5),
        "p99_ms": _pct([x for s in stats for x in s.latencies_ms], 0.99),
    }


async def sync_latency(apis: list[Service], upstream: Service, requests: int) -> dict[str, Any]:
    direct = await load(
        "direct", f"{upstream.url}/v1beta/models/{MODEL}:generateContent", {}, concurrency=1, requests=requests
    )
    latencies: list[float] = []
    errors = 0
    for i in range(requests):  # round-robin, one at a time
        api = apis[i % len(apis)]
        run = await load(
            api.name, f"{api.url}/v1beta/models/{MODEL}:generateContent", api.headers, concurrency=1, requests=1
        )
        latencies.extend(run.latencies_ms)
        errors += run.errors
    out = {"requests": requests, "errors": errors, "direct_p50_ms": _pct(direct.latencies_ms, 0.5)}
    for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        through, straight = _pct(latencies, q), _pct(direct.latencies_ms, q)
        out[f"added_{name}_ms"] = None if through is None or straight is None else round(through - straight, 2)
    return out


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))], 2)


def queue_counts(database_url: str) -> dict[str, int]:
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    out = subprocess.run(
        ["psql", dsn, "-Atc", "SELECT status, count(*) FROM jobs GROUP BY status"], capture_output=True, text=True
    ).stdout
    return {line.split("|")[0]: int(line.split("|")[1]) for line in out.split() if "|" in line}


def run_level(args: argparse.Namespace, count: int) -> dict[str, Any]:
    with workdir() as work, postgres_database(args.postgres) as database_url:
        held = args.held
        upstream = start_upstream(
            work, image=64, delay_ms=0, p50_ms=9000 if held else None, p95_ms=14000 if held else None
        )
        config = write_config(work, database_url, upstream, slots_hint=max(held // 2, 32))
        created = subprocess.run(
            [*CLI, "keys", "create", "--name", "bench", "--json"],
            env=env_for(work, "cli", config),
            capture_output=True,
            check=True,
        )
        key = json.loads(created.stdout)["key"]
        services: list[Service] = [upstream]
        result: dict[str, Any] = {"api_processes": count}
        try:
            apis = [start_api(work, config, f"api-{i}", key) for i in range(count)]
            services += apis
            if args.submissions:
                result["submit"] = asyncio.run(submit(apis, key, args.submissions, args.concurrency))
                subprocess.run(
                    ["psql", database_url.replace("+asyncpg", ""), "-qc", "DELETE FROM jobs WHERE status = 'queued'"],
                    capture_output=True,
                )  # not for the workers: they were only there to be accepted
            if args.sync:
                services.append(start_worker(work, config, "worker-0", 32))
                result["sync"] = asyncio.run(sync_latency(apis, upstream, args.sync))
            if held:
                services += [start_worker(work, config, f"held-worker-{i}", held // 2 + 8) for i in range(2)]
                started = time.perf_counter()
                result["held"] = asyncio.run(submit(apis, key, held, args.concurrency))
                peak_running = 0
                while True:
                    counts = queue_counts(database_url)
                    peak_running = max(peak_running, counts.get("running", 0))
                    if not counts.get("queued") and not counts.get("running"):
                        break
                    time.sleep(0.5)  # sampling the fleet, not waiting for time
                result["held"].update(
                    {
                        "peak_running": peak_running,
                        "all_ended_s": round(time.perf_counter() - started, 1),
                        "statuses": queue_counts(database_url),
                        "peak_rss_mib": {s.name: peak_rss_mib(s.process.pid) for s in services[1:]},
                    }
                )
        finally:
            for service in services:
                service.stop()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apis", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--submissions", type=int, default=2000)
    parser.add_argument("--sync", type=int, default=200)
    parser.add_argument("--held", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("IMAGEGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = [run_level(args, count) for count in args.apis]
    text = json.dumps({"cpus": os.cpu_count(), "runs": results}, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
