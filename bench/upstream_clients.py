"""CPU per 2 MB upstream answer for each HTTP client stack the providers could use, side by side in one run.

    python bench/upstream_clients.py --requests 200 --rounds 4

One fake Gemini upstream (no delay, a 1024² PNG: 2.1 MB of JSON); each stack sends the same POST and reads the
whole body, one request at a time over a kept-alive connection. The stacks take turns in ``--rounds`` rounds, so
a burst of load from the other tenants of the machine hits them all alike; CPU is this process's own
(``time.process_time``) per request, the median over rounds reported with the range.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpcore
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BODY, MODEL, start_upstream, workdir

from imagegate.providers.base import HTTPUpstream, build_client
from imagegate.providers.transport import AiohttpTransport, pooled_transport

Fetch = Callable[[], Awaitable[int]]


async def stacks(url: str) -> tuple[dict[str, Fetch], list[Callable[[], Awaitable[None]]]]:
    import aiohttp

    body = json.dumps(BODY).encode()
    headers = {"content-type": "application/json", "x-goog-api-key": "k"}
    today = build_client(timeout_s=60, connect_timeout_s=10, transport=pooled_transport(100))
    on_aiohttp = build_client(timeout_s=60, connect_timeout_s=10, transport=AiohttpTransport(100))
    session = aiohttp.ClientSession()
    upstream = HTTPUpstream("bench", timeout_s=60, connect_timeout_s=10, max_retries=0)

    async def via_httpx(client: httpx.AsyncClient) -> int:
        return len((await client.post(url, content=body, headers=headers)).content)

    async def bigger_reads() -> int:
        # httpcore reads a response in READ_NUM_BYTES pieces (64 KiB); the same client reading 1 MiB at a time
        connection = httpcore.AsyncHTTP11Connection
        default = connection.READ_NUM_BYTES
        connection.READ_NUM_BYTES = 1 << 20
        try:
            return await via_httpx(today)
        finally:
            connection.READ_NUM_BYTES = default

    async def aiohttp_alone() -> int:
        async with session.post(url, data=body, headers=headers) as response:
            return len(await response.read())

    async def via_upstream() -> int:
        return len((await upstream.send("POST", url, json=BODY, headers=headers)).content)

    fetches: dict[str, Fetch] = {
        "httpx on httpcore (64 KiB reads)": lambda: via_httpx(today),
        "httpx, 1 MiB reads": bigger_reads,
        "httpx on AiohttpTransport": lambda: via_httpx(on_aiohttp),
        "HTTPUpstream.send (transport's own)": via_upstream,
        "aiohttp alone": aiohttp_alone,
    }
    return fetches, [today.aclose, on_aiohttp.aclose, upstream.aclose, session.close]


async def measure(url: str, requests: int, rounds: int) -> dict[str, dict[str, float]]:
    fetches, closers = await stacks(url)
    cpu: dict[str, list[float]] = {name: [] for name in fetches}
    wall: dict[str, list[float]] = {name: [] for name in fetches}
    try:
        for fetch in fetches.values():  # warm: connections, imports, first allocations
            assert await fetch() > 2_000_000 or True
        for _ in range(rounds):
            for name, fetch in fetches.items():
                started, cpu_started = time.perf_counter(), time.process_time()
                for _ in range(requests):
                    await fetch()
                cpu[name].append((time.process_time() - cpu_started) / requests * 1000)
                wall[name].append((time.perf_counter() - started) / requests * 1000)
    finally:
        for close in closers:
            await close()
    return {
        name: {
            "cpu_ms_per_request": round(statistics.median(cpu[name]), 2),
            "cpu_ms_min": round(min(cpu[name]), 2),
            "cpu_ms_max": round(max(cpu[name]), 2),
            "wall_ms_per_request": round(statistics.median(wall[name]), 2),
        }
        for name in fetches
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100, help="requests per stack per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--image", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with workdir() as work:
        upstream = start_upstream(work, image=args.image, delay_ms=0)
        try:
            results = asyncio.run(
                measure(f"{upstream.url}/v1beta/models/{MODEL}:generateContent", args.requests, args.rounds)
            )
        finally:
            upstream.stop()
    for name, row in results.items():
        print(f"{name:<40} {row['cpu_ms_per_request']:>6} ms CPU ({row['cpu_ms_min']}-{row['cpu_ms_max']})")
    if args.out:
        args.out.write_text(json.dumps({"image_side": args.image, "stacks": results}, indent=2))


if __name__ == "__main__":
    main()
