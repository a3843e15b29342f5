"""Holding slow work: N async tasks in flight at once against an upstream taking p50 9 s / p95 14 s per image.

    python bench/tasks.py                   # 10,000 tasks (about a minute)
    python bench/tasks.py --tasks 200 --p50-ms 500 --p95-ms 800    # a quick look

Tasks are submitted through ``POST /v1/async/images/generations`` by 64 concurrent clients (the submission
rate is measured on SQLite, the default database); every task is then awaited through ``GET /v1/tasks``
pages. The gateway's resident memory is sampled every half second; its peak (VmHWM) is reported. The
upstream answers a small image here: this measures holding many slow jobs, not moving megabytes (run.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import MODEL, cpu_seconds, peak_rss_mib, rss_mib, scratch, start_imagegate, start_upstream


async def submit_all(url: str, key: str, tasks: int, concurrency: int) -> tuple[list[str], int, float]:
    ids: list[str] = []
    errors = 0
    numbers = iter(range(tasks))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60, headers={"authorization": f"Bearer {key}"}) as client:

        async def worker() -> None:
            nonlocal errors
            for i in numbers:
                try:
                    response = await client.post(
                        f"{url}/v1/async/images/generations",
                        json={"model": MODEL, "prompt": f"task {i}", "size": "1024x1024"},
                    )
                except httpx.HTTPError as exc:
                    errors += 1
                    print(f"submission {i}: {exc!r}", file=sys.stderr)
                    continue
                if response.status_code == 200:
                    ids.append(response.json()["id"])
                else:
                    errors += 1
                    print(f"submission {i}: HTTP {response.status_code} {response.text[:200]}", file=sys.stderr)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return ids, errors, time.perf_counter() - started


async def wait_all(url: str, key: str, expected: int, pid: int, timeout_s: float) -> dict[str, Any]:
    peak = 0.0
    peak_running = 0
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, headers={"authorization": f"Bearer {key}"}) as client:
        while True:
            peak = max(peak, rss_mib(pid) or 0.0)
            statuses: dict[str, int] = {}
            after = None
            while True:  # every task of the key, newest first, 100 a page
                params: dict[str, Any] = {"limit": 100}
                if after:
                    params["after"] = after
                page = (await client.get(f"{url}/v1/tasks", params=params)).json()
                for task in page["data"]:
                    statuses[task["status"]] = statuses.get(task["status"], 0) + 1
                if not page["has_more"]:
                    break
                after = page["last_id"]
            peak_running = max(peak_running, statuses.get("running", 0))
            done = sum(n for s, n in statuses.items() if s in ("succeeded", "failed", "cancelled"))
            if done >= expected or time.perf_counter() - started > timeout_s:
                return {
                    "statuses": statuses,
                    "wait_s": round(time.perf_counter() - started, 1),
                    "sampled_peak_rss_mib": round(peak, 1),
                    "peak_running": peak_running,  # the most seen running at once (sampled after submission)
                }
            await asyncio.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--p50-ms", type=float, default=9000)
    parser.add_argument("--p95-ms", type=float, default=14000)
    parser.add_argument("--concurrency", type=int, default=64, help="clients submitting at once")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    work = scratch()
    upstream = start_upstream(work, image=64, delay_ms=0, p50_ms=args.p50_ms, p95_ms=args.p95_ms)
    gateway = start_imagegate(work, upstream, workers=args.tasks + 16)
    key = gateway.headers["x-goog-api-key"]
    try:
        cpu_before = cpu_seconds(gateway.process.pid)
        ids, submit_errors, submit_s = asyncio.run(submit_all(gateway.url, key, args.tasks, args.concurrency))
        cpu_after = cpu_seconds(gateway.process.pid)
        waited = asyncio.run(
            wait_all(gateway.url, key, len(ids), gateway.process.pid, timeout_s=args.p95_ms / 1000 * 20 + 120)
        )
        peak = peak_rss_mib(gateway.process.pid)
    finally:
        gateway.stop()
        upstream.stop()
    report = {
        "tasks": args.tasks,
        "upstream_p50_ms": args.p50_ms,
        "upstream_p95_ms": args.p95_ms,
        "submitted": len(ids),
        "submit_errors": submit_errors,
        "submit_s": round(submit_s, 2),
        "submissions_per_s": round(len(ids) / submit_s, 1) if submit_s else None,
        # the gateway's CPU while submissions ran (accepting them and running the jobs already taken), per task
        "gateway_cpu_ms_per_submission": (
            round((cpu_after - cpu_before) / len(ids) * 1000, 2)
            if ids and cpu_before is not None and cpu_after is not None
            else None
        ),
        **waited,
        "peak_rss_mib": round(peak, 1) if peak else None,
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
