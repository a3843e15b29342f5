"""A fake Google AI Studio on loopback whose behaviour a test switches at will: answer, fail, rate-limit,
refuse, stall, or die (stop listening), to drive imagegate's routing across several upstreams."""

from __future__ import annotations

import asyncio
import base64
import io
import socket
import threading
import time
from typing import Any

import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def _png() -> str:
    sink = io.BytesIO()
    Image.new("RGB", (64, 64), "orange").save(sink, "PNG")
    return base64.b64encode(sink.getvalue()).decode()


PNG_B64 = _png()
USAGE = {
    "promptTokenCount": 7,
    "candidatesTokenCount": 1290,
    "totalTokenCount": 1297,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 7}],
    "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
}


class FakeGemini:
    """``mode``: ok | unavailable (503) | rate_limited (429 + RetryInfo) | refuse (blockReason) | slow."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.mode = "ok"
        self.delay_s = 0.0
        self.calls = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _generate(self, request: Request) -> JSONResponse:
        self.calls += 1
        await request.body()
        if self.mode == "slow" or self.delay_s:
            await asyncio.sleep(self.delay_s or 5)
        if self.mode == "unavailable":
            error = {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}
            return JSONResponse({"error": error}, status_code=503)
        if self.mode == "rate_limited":
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"}]
            error = {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED", "details": details}
            return JSONResponse({"error": error}, status_code=429)
        if self.mode == "refuse":
            return JSONResponse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": USAGE})
        parts: list[dict[str, Any]] = [
            {"text": f"from {self.name}"},
            {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
        ]
        body = {
            "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": USAGE,
            "modelVersion": "gemini-2.5-flash-image",
        }
        return JSONResponse(body)

    def start(self) -> FakeGemini:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        app = Starlette(routes=[Route("/v1beta/models/{name}:generateContent", self._generate, methods=["POST"])])
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"fake upstream {self.name} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Die: stop listening, so new connections are refused (the port stays the same for a restart)."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None
