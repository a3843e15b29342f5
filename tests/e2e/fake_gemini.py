"""A fake Google AI Studio on loopback whose behaviour a test switches at will: answer, fail, rate-limit,
refuse, stall, or die (stop listening), to drive imagegate's routing across several upstreams."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
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
GROUNDING = {  # the shape of a grounded answer's metadata (search entry point, sources, queries)
    "searchEntryPoint": {"renderedContent": '<style>.container{display:flex}</style><div class="container"></div>'},
    "groundingChunks": [
        {"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/x", "title": "example.org"}}
    ],
    "groundingSupports": [
        {"segment": {"startIndex": 0, "endIndex": 9, "text": "from fake"}, "groundingChunkIndices": [0]}
    ],
    "webSearchQueries": ["weather in Paris today"],
}
USAGE = {
    "promptTokenCount": 7,
    "candidatesTokenCount": 1290,
    "totalTokenCount": 1297,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 7}],
    "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
}


def _jpeg() -> str:
    sink = io.BytesIO()
    Image.new("RGB", (64, 36), "teal").save(sink, "JPEG")
    return base64.b64encode(sink.getvalue()).decode()


JPEG_B64 = _jpeg()  # Gemini 3 image models answer in JPEG


#: A prompt holding this word gets Google's 400 INVALID_ARGUMENT: the request is at fault, not the upstream.
POISON = "poison-pill"


class FakeGemini:
    """``mode``: ok | unavailable (503) | rate_limited (429 + RetryInfo) | refuse (blockReason) | slow.

    For a model whose name says it thinks (``gemini-3-pro-image…``) it answers as Nano Banana Pro does: thought
    parts (only when ``thinkingConfig.includeThoughts`` is set), a ``thoughtSignature`` on the first text part
    and on the image, ``thoughtsTokenCount``, and ``groundingMetadata`` when the request carries the
    ``googleSearch`` tool. Every body it was sent and every signature it issued are kept for tests to compare.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.mode = "ok"
        self.image_b64 = PNG_B64  # the image an ordinary (not thinking) answer carries
        self.delay_s = 0.0
        self.next_delays: list[float] = []  # per call, first come first served; then ``delay_s``
        self.calls = 0
        self.bodies: list[dict[str, Any]] = []
        self.issued: list[tuple[bytes, bytes]] = []  # (text signature, image signature) per thinking answer
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _generate(self, request: Request) -> JSONResponse:
        self.calls += 1
        body = json.loads(await request.body())
        self.bodies.append(body)
        if self.next_delays:
            await asyncio.sleep(self.next_delays.pop(0))
        elif self.mode == "slow" or self.delay_s:
            await asyncio.sleep(self.delay_s or 5)
        if POISON in json.dumps(body):  # a request Google itself refuses, whatever the mode
            error = {"code": 400, "message": "Request contains an invalid argument.", "status": "INVALID_ARGUMENT"}
            return JSONResponse({"error": error}, status_code=400)
        if self.mode == "unavailable":
            error = {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}
            return JSONResponse({"error": error}, status_code=503)
        if self.mode == "rate_limited":
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"}]
            error = {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED", "details": details}
            return JSONResponse({"error": error}, status_code=429)
        if self.mode == "refuse":
            return JSONResponse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": USAGE})
        if "pro-image" in request.path_params["name"]:
            return JSONResponse(self._thinking_answer(body))
        parts: list[dict[str, Any]] = [
            {"text": f"from {self.name}"},
            {"inlineData": {"mimeType": "image/png", "data": self.image_b64}},
        ]
        body = {
            "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": USAGE,
            "modelVersion": "gemini-2.5-flash-image",
        }
        return JSONResponse(body)

    def _thinking_answer(self, body: dict[str, Any]) -> dict[str, Any]:
        config = body.get("generationConfig") or {}
        signatures = (os.urandom(48), os.urandom(48))  # opaque bytes, as Google's are
        self.issued.append(signatures)
        parts: list[dict[str, Any]] = []
        if (config.get("thinkingConfig") or {}).get("includeThoughts"):
            parts.append({"text": "**Composing the scene**\n\nI will place the subject first.", "thought": True})
            parts.append({"inlineData": {"mimeType": "image/jpeg", "data": JPEG_B64}, "thought": True})
        parts.append({"text": f"from {self.name}", "thoughtSignature": base64.b64encode(signatures[0]).decode()})
        image = {"mimeType": "image/jpeg", "data": JPEG_B64}
        parts.append({"inlineData": image, "thoughtSignature": base64.b64encode(signatures[1]).decode()})
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        if any("googleSearch" in tool for tool in body.get("tools") or ()):
            candidate["groundingMetadata"] = GROUNDING
        usage = {
            "promptTokenCount": 9,
            "candidatesTokenCount": 1126,
            "totalTokenCount": 1335,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 9}],
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1120}],
            "thoughtsTokenCount": 200,
        }
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-3-pro-image-preview"}

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
