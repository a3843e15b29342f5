"""Soak: a steady load for a long time against an upstream that fails some calls and is slow at p95.

Starts the fake upstream (log-normal delays, ``--fail-rate`` of its answers Google's 503 UNAVAILABLE) and
``imagegate serve`` on the embedded defaults (SQLite, local files) with the Gemini provider's default retries,
then keeps ``--concurrency`` sync ``generateContent`` requests in flight for ``--minutes``. Every
``--sample-s`` it records imagegate's resident memory and CPU and the window's latency percentiles.

Each answer is one of: a 200 with an image (good); the upstream's own 503 passed on after every retry failed
(upstream-caused: with 2 retries at 8 % that is 0.08³ ≈ 0.05 % of requests); anything else, a 500, another
status, a broken connection or a 200 without an image, is gateway-caused (the goal is under 0.1 %).

    python bench/soak.py --minutes 30 --out soak.json
    python bench/soak.py --minutes 2 --sample-s 10     # a short look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from harness import BODY, MODEL, cpu_seconds, rss_mib, start_imagegate, start_upstream, workdir
from loadgen import ProtocolFault, build_request, connect


@dataclass
class Window:
    """What one sampling interval saw."""

    started_s: float
    latencies_ms: list[float] = field(default_factory=list)
    good: int = 0
    upstream_errors: int = 0
    gateway_errors: int = 0
    rss_mib: float | None = None
    cpu_s: float | None = None

    def row(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)

        def pct(q: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else None

        return {
            "t_s": round(self.started_s),
            "good": self.good,
            "upstream_errors": self.upstream_errors,
            "gateway_errors": self.gateway_errors,
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
            "rss_mib": self.rss_mib,
            "cpu_s": self.cpu_s,
        }


def classify(status: int, head: bytes) -> str:
    if status == 200 and b"inlineData" in head:
        return "good"
    if status == 503 and b"overloaded" in head:  # Google's own words, passed on after the retries
        return "upstream"
    return "gateway"


async def soak(url: str, key: str, pid: int, *, concurrency: int, seconds: float, sample_s: float) -> list[Window]:
    endpoint = f"{url}/v1beta/models/{MODEL}:generateContent"
    request = build_request(
        "POST", endpoint, {"x-goog-api-key": key, "content-type": "application/json"}, json.dumps(BODY).encode()
    )
    started = time.perf_counter()
    windows = [Window(0.0)]
    first_gateway_error: list[str] = []

    async def client() -> None:
        connection = await connect(endpoint)
        while time.perf_counter() - started < seconds:
            try:
                answer = await connection.exchange(request, False)
                kind, latency, head = classify(answer.status, answer.head), answer.latency_ms, answer.head
            except (ProtocolFault, OSError) as exc:
                kind, latency, head = "gateway", None, repr(exc).encode()
                connection = await connect(endpoint)
            window = windows[-1]
            if kind == "good":
                window.good += 1
                window.latencies_ms.append(latency or 0.0)
            elif kind == "upstream":
                window.upstream_errors += 1
            else:
                window.gateway_errors += 1
                if not first_gateway_error:
                    first_gateway_error.append(head[:300].decode(errors="replace"))
        if connection.transport is not None:
            connection.transport.close()

    async def sampler() -> None:
        while time.perf_counter() - started < seconds:
            await asyncio.sleep(sample_s)
            windows[-1].rss_mib, windows[-1].cpu_s = rss_mib(pid), cpu_seconds(pid)
            windows.append(Window(time.perf_counter() - started))

    await asyncio.gather(sampler(), *(client() for _ in range(concurrency)))
    if first_gateway_error:
        print("first gateway-caused error:", first_gateway_error[0], file=sys.stderr)
    return [w for w in windows if w.good or w.upstream_errors or w.gateway_errors]


def report(windows: list[Window], args: argparse.Namespace) -> dict[str, Any]:
    rows = [w.row() for w in windows]
    total = sum(w.good + w.upstream_errors + w.gateway_errors for w in windows)
    gateway = sum(w.gateway_errors for w in windows)
    upstream = sum(w.upstream_errors for w in windows)
    memory = [w.rss_mib for w in windows if w.rss_mib is not None]
    # The last window is partial and holds the slowest answers of requests sent before the end: left out here.
    steady = windows[:-1] if len(windows) > 2 else windows
    tenth = max(1, len(steady) // 10)
    first = [lat for w in steady[:tenth] for lat in w.latencies_ms]
    last = [lat for w in steady[-tenth:] for lat in w.latencies_ms]
    return {
        "settings": vars(args),
        "requests": total,
        "gateway_errors": gateway,
        "gateway_error_pct": round(100 * gateway / total, 4) if total else None,
        "upstream_errors_passed_on": upstream,
        "rss_mib_first_last_max": [memory[0], memory[-1], max(memory)] if memory else None,
        "p50_ms_first_tenth_vs_last_tenth": [
            round(statistics.median(first), 1) if first else None,
            round(statistics.median(last), 1) if last else None,
        ],
        "windows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--p50-ms", type=float, default=1500, help="upstream median delay")
    parser.add_argument("--p95-ms", type=float, default=8000, help="upstream 95th-percentile delay (slow tail)")
    parser.add_argument("--fail-rate", type=float, default=0.08)
    parser.add_argument("--image", type=int, default=512, help="side of the PNG the upstream answers")
    parser.add_argument("--sample-s", type=float, default=60)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with workdir() as work:
        upstream = start_upstream(
            work, image=args.image, delay_ms=0, p50_ms=args.p50_ms, p95_ms=args.p95_ms, fail_rate=args.fail_rate
        )
        gateway = start_imagegate(work, upstream, workers=args.concurrency * 2, provider_retries=2)
        try:
            key = gateway.headers["x-goog-api-key"]
            windows = asyncio.run(
                soak(
                    gateway.url,
                    key,
                    gateway.process.pid,
                    concurrency=args.concurrency,
                    seconds=args.minutes * 60,
                    sample_s=args.sample_s,
                )
            )
        finally:
            gateway.stop()
            upstream.stop()
    result = report(windows, args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as sink:
            sink.write(text)


if __name__ == "__main__":
    main()
