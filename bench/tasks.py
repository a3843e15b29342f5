"""Holding slow work: N async tasks in flight at once against an upstream taking p50 9 s / p95 14 s per image.

    python bench/tasks.py                   # 10,000 tasks (about a minute)
    python bench/tasks.py --tasks 200 --p50-ms 500 --p95-ms 800    # a quick look
    python bench/tasks.py --tasks 2000 --workers 1 --p50-ms 600000 --p95-ms 600001 --no-wait  # accepting only
    python bench/tasks.py --tasks 2000 --p50-ms 1 --p95-ms 2      # the whole life of a task (accept to finish)

Tasks are submitted through ``POST /v1/async/images/generations`` by 64 concurrent clients (the submission
rate is measured on SQLite, the default database, with the raw-socket client of ``loadgen.py``); every task is
then awaited through ``GET /v1/tasks`` pages. The gateway's CPU is reported per submission (while submissions
ran) and per task over its whole life (from the first submission until the last task finished, less what the
status polls cost, measured after the run with the same number of polls). The gateway's resident memory is
sampled every half second; its peak (VmHWM) is reported. The upstream answers a small image here: this
measures holding many slow jobs, not moving megabytes (run.py).
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

from harness import MODEL, cpu_seconds, peak_rss_mib, rss_mib, start_imagegate, start_upstream, workdir
from loadgen import Answer, build_request, hammer


async def submit_all(url: str, key: str, tasks: int, concurrency: int) -> tuple[list[str], int, float, float]:
    """Submit ``tasks`` tasks; their ids, the errors, the seconds it took and the client's CPU per submission."""
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}

    def request(number: int) -> bytes:
        body = json.dumps({"model": MODEL, "prompt": f"task {number}", "size": "1024x1024"}).encode()
        return build_request("POST", f"{url}/v1/async/images/generations", headers, body)

    def check(answer: Answer) -> str | None:
        return None if answer.status == 200 else f"HTTP {answer.status} {answer.head[:200]!r}"

    warm = build_request("GET", f"{url}/healthz", {})
    stats = await hammer(url, request, concurrency=concurrency, requests=tasks, check=check, keep_body=True, warm=warm)
    if stats.first_error:
        print(f"first submission error: {stats.first_error}", file=sys.stderr)
    ids = [json.loads(body)["id"] for body in stats.bodies]
    return ids, stats.errors, stats.wall_s, stats.client_cpu_ms


async def poll_cost(url: str, key: str, polls: int, pid: int) -> float:
    """The gateway's CPU seconds for ``polls`` full walks of the task list (what wait_all spends polling)."""
    before = cpu_seconds(pid) or 0.0
    async with httpx.AsyncClient(timeout=60, headers={"authorization": f"Bearer {key}"}) as client:
        for _ in range(polls):
            await _statuses(client, url)
    return (cpu_seconds(pid) or 0.0) - before


async def _statuses(client: httpx.AsyncClient, url: str) -> dict[str, int]:
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
            return statuses
        after = page["last_id"]


async def wait_all(
    url: str, key: str, expected: int, pid: int, timeout_s: float, poll_s: float = 0.5
) -> dict[str, Any]:
    peak = 0.0
    peak_running = 0
    started = time.perf_counter()
    polls = 0
    async with httpx.AsyncClient(timeout=60, headers={"authorization": f"Bearer {key}"}) as client:
        while True:
            peak = max(peak, rss_mib(pid) or 0.0)
            statuses = await _statuses(client, url)
            polls += 1
            peak_running = max(peak_running, statuses.get("running", 0))
            done = sum(n for s, n in statuses.items() if s in ("succeeded", "failed", "cancelled"))
            if done >= expected or time.perf_counter() - started > timeout_s:
                return {
                    "statuses": statuses,
                    "wait_s": round(time.perf_counter() - started, 1),
                    "sampled_peak_rss_mib": round(peak, 1),
                    "peak_running": peak_running,  # the most seen running at once (sampled after submission)
                    "polls": polls,
                }
            await asyncio.sleep(poll_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--p50-ms", type=float, default=9000)
    parser.add_argument("--p95-ms", type=float, default=14000)
    parser.add_argument("--concurrency", type=int, default=64, help="clients submitting at once")
    parser.add_argument("--workers", type=int, default=None, help="imagegate's workers (default: tasks + 16)")
    parser.add_argument("--no-wait", action="store_true", help="stop after submitting (for accept-only runs)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with workdir() as work:
        upstream = start_upstream(work, image=64, delay_ms=0, p50_ms=args.p50_ms, p95_ms=args.p95_ms)
        gateway = start_imagegate(work, upstream, workers=args.workers or args.tasks + 16)
        key = gateway.headers["x-goog-api-key"]
        pid = gateway.process.pid
        try:
            cpu_before = cpu_seconds(pid)
            ids, submit_errors, submit_s, client_cpu = asyncio.run(
                submit_all(gateway.url, key, args.tasks, args.concurrency)
            )
            cpu_after = cpu_seconds(pid)
            waited: dict[str, Any] = {}
            life: float | None = None
            if not args.no_wait:
                waited = asyncio.run(wait_all(gateway.url, key, len(ids), pid, timeout_s=args.p95_ms / 1000 * 20 + 120))
                cpu_done = cpu_seconds(pid)
                polling = asyncio.run(poll_cost(gateway.url, key, waited["polls"], pid))
                if ids and cpu_before is not None and cpu_done is not None:
                    life = round((cpu_done - cpu_before - polling) / len(ids) * 1000, 2)
            peak = peak_rss_mib(pid)
        finally:
            gateway.stop()
            upstream.stop()
    report = {
        "tasks": args.tasks,
        "workers": args.workers or args.tasks + 16,
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
        # the gateway's CPU from the first submission until the last task finished, polls excluded, per task
        "gateway_cpu_ms_per_task_life": life,
        "client_cpu_ms_per_submission": round(client_cpu, 3),
        **waited,
        "peak_rss_mib": round(peak, 1) if peak else None,
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
