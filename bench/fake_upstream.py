"""A fake Google AI Studio for benchmarks: answers every generateContent with one real-size image after a delay.

A bare ASGI app on uvicorn (httptools, uvloop), with the whole answer encoded once at start, so the upstream
costs as little as possible and what is measured is the client and whatever sits between. Delays are fixed
(``--delay-ms``) or drawn from a log-normal with a given median and 95th percentile (``--p50-ms --p95-ms``);
``--fail-rate`` answers that share of calls, after the same delay, with Google's 503 UNAVAILABLE.

    python bench/fake_upstream.py --port 9100 --image 1024 --delay-ms 200
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import math
import random
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from PIL import Image

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def noise_png(side: int) -> bytes:
    """A side x side PNG of coarse noise: as big as a real photo-like answer (about 1.5 MB at 1024)."""
    channels = [Image.effect_noise((side, side), 64).point(lambda v: v // 16 * 16) for _ in range(3)]
    sink = io.BytesIO()
    Image.merge("RGB", channels).save(sink, "PNG", compress_level=6)
    return sink.getvalue()


def answer(side: int) -> bytes:
    data = base64.b64encode(noise_png(side)).decode()
    body = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"inlineData": {"mimeType": "image/png", "data": data}}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 8,
            "candidatesTokenCount": 1290,
            "totalTokenCount": 1298,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}],
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
        },
        "modelVersion": "gemini-2.5-flash-image",
    }
    return json.dumps(body).encode()


def delay_source(delay_ms: float, p50_ms: float | None, p95_ms: float | None) -> Callable[[], float]:
    if p50_ms is None:
        return lambda: delay_ms / 1000
    sigma = math.log((p95_ms or p50_ms) / p50_ms) / 1.6449  # z of the 95th percentile
    mu = math.log(p50_ms / 1000)
    return lambda: random.lognormvariate(mu, sigma)


OVERLOADED = json.dumps(
    {"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}
).encode()


def make_app(
    body: bytes, delay: Callable[[], float], fail_rate: float = 0.0
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    failed = [(b"content-type", b"application/json"), (b"content-length", str(len(OVERLOADED)).encode())]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        more = True
        while more:  # read the request to the end, as a real server does
            more = (await receive()).get("more_body", False)
        if scope["method"] != "POST":  # health checks and connection warm-ups
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        wait = delay()
        if wait > 0:
            await asyncio.sleep(wait)
        if fail_rate and random.random() < fail_rate:
            await send({"type": "http.response.start", "status": 503, "headers": failed})
            await send({"type": "http.response.body", "body": OVERLOADED})
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--image", type=int, default=1024, help="side of the square PNG answered")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--p50-ms", type=float, default=None, help="log-normal delays with this median...")
    parser.add_argument("--p95-ms", type=float, default=None, help="...and this 95th percentile")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of calls answered 503 UNAVAILABLE")
    args = parser.parse_args()
    app = make_app(answer(args.image), delay_source(args.delay_ms, args.p50_ms, args.p95_ms), args.fail_rate)
    # Idle connections stay open a minute, as Google's front ends keep them: uvicorn's 5 s default closed
    # pooled connections under the gateway's feet ("Server disconnected") once thousands waited at once.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        backlog=4096,
        timeout_keep_alive=60,
    )


if __name__ == "__main__":
    main()
