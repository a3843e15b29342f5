"""imagegate's added latency and throughput, side by side with LiteLLM, in front of one fake Gemini upstream.

    python bench/run.py                 # full run: concurrency 1, 64, 512 (a few minutes)
    python bench/run.py --quick         # smoke: small numbers, seconds (what CI runs)
    python bench/run.py --levels 1 --requests 300 --postgres    # the hot path on SQLite and PostgreSQL

For each concurrency level the same generateContent requests go straight to the fake upstream, through
imagegate (Gemini dialect; with ``--postgres`` a second imagegate on a fresh PostgreSQL database too), through
imagegate's ``streamGenerateContent?alt=sse`` and, when ``bench/.venv-litellm`` exists, through LiteLLM's proxy.
The added latency at a percentile is that percentile through the gateway minus the same percentile straight to
the upstream, measured back to back in one run; a stream's added time to first byte is its first body byte
minus the direct answer's. Results are printed as a table and written as JSON; the scratch directory (databases,
images) is removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    BENCH,
    CHAT_BODY,
    MODEL,
    Run,
    Service,
    cpu_seconds,
    load,
    peak_rss_mib,
    postgres_database,
    start_imagegate,
    start_litellm,
    start_upstream,
    workdir,
)

# name, URL, headers, the gateway's pid (None: direct), and for other than generateContent: body and answer marker
Target = tuple[str, str, dict[str, str], int | None, dict[str, Any] | None, bytes]


async def measure(
    targets: list[Target], levels: list[int], per_level: dict[int, int], rounds: int = 1
) -> list[dict[str, Any]]:
    """Each target at each level; with ``rounds`` > 1 the requests are split into rounds that take the targets in
    turn, so that a drift of the machine over the run (load, caches, a growing database) is shared by all targets
    instead of favouring whichever comes first."""
    rows = []
    for level in levels:
        runs: dict[str, list[Run]] = {name: [] for name, *_ in targets}
        cpu: dict[str, float] = dict.fromkeys(runs, 0.0)
        loop_cpu: dict[str, float] = dict.fromkeys(runs, 0.0)
        for round_ in range(rounds):
            share = per_level[level] // rounds + (1 if round_ < per_level[level] % rounds else 0)
            for name, url, headers, pid, body, marker in targets:
                cpu_before = cpu_seconds(pid) if pid else None
                loop_before = cpu_seconds(pid, main_thread=True) if pid else None
                run = await load(name, url, headers, concurrency=level, requests=share, body=body, marker=marker)
                loop_after = cpu_seconds(pid, main_thread=True) if pid else None
                cpu_after = cpu_seconds(pid) if pid else None
                runs[name].append(run)
                if cpu_before is not None and cpu_after is not None:
                    cpu[name] += cpu_after - cpu_before
                if loop_before is not None and loop_after is not None:
                    loop_cpu[name] += loop_after - loop_before
        for name, _, _, pid, _, _ in targets:
            row = merged(runs[name]).summary()
            # The gateway's own work per request, whatever the machine's contention: its CPU time over the run.
            if pid:
                row["gateway_cpu_ms_per_request"] = round(cpu[name] / per_level[level] * 1000, 2)
                # of which the main thread (imagegate's event loop; for LiteLLM its main thread too)
                row["gateway_main_thread_cpu_ms_per_request"] = round(loop_cpu[name] / per_level[level] * 1000, 2)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def merged(runs: list[Run]) -> Run:
    """One ``Run`` of the rounds of a target."""
    first = runs[0]
    requests = sum(r.requests for r in runs)
    client = [r.client_cpu_ms * r.requests for r in runs if r.client_cpu_ms is not None]
    return Run(
        first.target,
        first.concurrency,
        requests,
        [ms for r in runs for ms in r.latencies_ms],
        sum(r.errors for r in runs),
        sum(r.wall_s for r in runs),
        next((r.first_error for r in runs if r.first_error), None),
        [ms for r in runs for ms in r.ttfb_ms],
        sum(client) / requests if client else None,
    )


def added(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    direct = {r["concurrency"]: r for r in rows if r["target"] == "direct"}
    out = []
    for row in rows:
        base = direct.get(row["concurrency"])
        if row["target"] == "direct" or base is None or row["p50_ms"] is None or base["p50_ms"] is None:
            continue
        out.append(
            {
                "target": row["target"],
                "concurrency": row["concurrency"],
                "added_p50_ms": round(row["p50_ms"] - base["p50_ms"], 2),
                "added_p99_ms": round(row["p99_ms"] - base["p99_ms"], 2),
                "added_ttfb_p50_ms": round(row["ttfb_p50_ms"] - base["ttfb_p50_ms"], 2),
                "throughput_rps": row["throughput_rps"],
                "direct_rps": base["throughput_rps"],
                "errors": row["errors"],
                "gateway_cpu_ms_per_request": row.get("gateway_cpu_ms_per_request"),
                "gateway_main_thread_cpu_ms_per_request": row.get("gateway_main_thread_cpu_ms_per_request"),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--delay-ms", type=float, default=100.0, help="the upstream's time per image")
    parser.add_argument("--image", type=int, default=1024, help="side of the answered PNG")
    parser.add_argument("--levels", default="1,64,512")
    parser.add_argument("--requests", type=int, default=None, help="requests per target and level")
    parser.add_argument(
        "--rounds", type=int, default=1, help="split each target's requests into rounds taken in turn (cancels drift)"
    )
    parser.add_argument("--postgres", action="store_true", help="also imagegate on PostgreSQL (see --postgres-url)")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-stream", action="store_true", help="skip streamGenerateContent")
    parser.add_argument("--chat", action="store_true", help="also a streamed Chat Completions (/v1/chat/completions)")
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="NAME=SRC",
        help="also imagegate from another source tree (e.g. a git worktree of an older commit), side by side",
    )
    parser.add_argument("--litellm", type=Path, default=BENCH / ".venv-litellm" / "bin" / "litellm")
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument(
        "--memory-limit-mib",
        type=int,
        default=None,
        help="run each gateway in a memory cgroup with this limit, as in a container (see harness.MemoryCgroup)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    limit = args.memory_limit_mib
    levels = [1, 4] if args.quick else [int(x) for x in args.levels.split(",")]
    per_level = {level: args.requests or (8 if args.quick else max(100, 2 * level)) for level in levels}
    if args.quick:
        args.image = min(args.image, 256)

    services: list[Service] = []
    with workdir() as work, contextlib.ExitStack() as stack:
        try:
            upstream = start_upstream(work, image=args.image, delay_ms=args.delay_ms)
            services.append(upstream)
            gateway = start_imagegate(work / "sqlite", upstream, workers=max(levels) * 2, memory_limit_mib=limit)
            services.append(gateway)
            path = f"/v1beta/models/{MODEL}:generateContent"
            stream = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
            targets: list[Target] = [
                ("direct", upstream.url + path, {}, None, None, b"inlineData"),
                ("imagegate", gateway.url + path, gateway.headers, gateway.process.pid, None, b"inlineData"),
            ]
            if not args.no_stream:
                pid = gateway.process.pid
                targets.append(("imagegate-stream", gateway.url + stream, gateway.headers, pid, None, b"inlineData"))
                if args.chat:
                    bearer = {"authorization": f"Bearer {gateway.headers['x-goog-api-key']}"}
                    chat = gateway.url + "/v1/chat/completions"
                    # the first event (the role) is sent at once; the answer counts when the stream has ended
                    targets.append(("imagegate-chat-stream", chat, bearer, pid, CHAT_BODY, b"data:"))
            for spec in args.compare:
                name, _, src = spec.partition("=")
                other = start_imagegate(
                    work / name,
                    upstream,
                    workers=max(levels) * 2,
                    extra_env={"PYTHONPATH": src},
                    name=name,
                    memory_limit_mib=limit,
                )
                services.append(other)
                targets.append((name, other.url + path, other.headers, other.process.pid, None, b"inlineData"))
            if args.postgres:
                url = stack.enter_context(postgres_database(args.postgres_url))
                on_pg = start_imagegate(
                    work / "postgres",
                    upstream,
                    workers=max(levels) * 2,
                    extra_env={"IMAGEGATE_DATABASE_URL": url},
                    name="imagegate-pg",
                    memory_limit_mib=limit,
                )
                services.append(on_pg)
                targets.append(
                    ("imagegate-pg", on_pg.url + path, on_pg.headers, on_pg.process.pid, None, b"inlineData")
                )
            if not args.no_litellm and args.litellm.exists():
                litellm = start_litellm(work, upstream, args.litellm, limit)
                services.append(litellm)
                targets.append(
                    ("litellm", litellm.url + path, litellm.headers, litellm.process.pid, None, b"inlineData")
                )
            rows = asyncio.run(measure(targets, levels, per_level, args.rounds))
            memory = {s.name: peak_rss_mib(s.process.pid) for s in services}
        finally:
            for service in services:
                service.stop()
    report = {
        "method": "same requests back to back; added = gateway percentile - direct percentile",
        "rounds": args.rounds,
        "image_side": args.image,
        "upstream_delay_ms": args.delay_ms,
        "gateway_memory_limit_mib": limit,
        "runs": rows,
        "added": added(rows),
        "peak_rss_mib": memory,
    }
    print(
        "\ntarget            conc  added p50 ms  added p99 ms  added TTFB  rps (direct)  errors  "
        "gateway CPU ms/req (main thread)"
    )
    for row in report["added"]:
        print(
            f"{row['target']:<17} {row['concurrency']:>4}  {row['added_p50_ms']:>12}  {row['added_p99_ms']:>12}  "
            f"{row['added_ttfb_p50_ms']:>10}  {row['throughput_rps']} ({row['direct_rps']})  {row['errors']}  "
            f"{row['gateway_cpu_ms_per_request']} ({row['gateway_main_thread_cpu_ms_per_request']})"
        )
    print(f"peak RSS MiB: {memory}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
