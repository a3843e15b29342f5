"""A fake fal.ai: the queue API (submit, status, result, cancel), sync runs and a CDN, as a Starlette app.

It behaves as fal's docs describe: ``Authorization: Key``; a submission answers ``request_id`` and the
status/response/cancel URLs, which name only the owner and app (``fal-ai/nano-banana`` for a request to
``fal-ai/nano-banana/edit``); the request waits ``steps_in_queue`` status polls ``IN_QUEUE`` (with a falling
``queue_position``, status 202) then one ``IN_PROGRESS`` before ``COMPLETED`` (200); results carry
``images[].url`` on its own CDN (data URIs in sync mode) and a ``description``. Knobs script the failures:
``fail_next`` answers the next submissions, ``result_error`` the result of a completed request that failed,
``refuse`` makes results a content-policy 422, ``cdn_*`` the CDN, ``sync_delay_s`` a slow sync run.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

KEY = "fal-key-1234"

Scripted = tuple[int, Any, dict[str, str]]


def png(width: int = 96, height: int = 64, color: str = "teal") -> bytes:
    sink = io.BytesIO()
    Image.new("RGB", (width, height), color).save(sink, "PNG")
    return sink.getvalue()


@dataclass
class FakeFal:
    steps_in_queue: int = 2
    refuse: bool = False
    never_finish: bool = False
    images_per_result: int = 1
    sync_delay_s: float = 0.0
    fail_next: list[Scripted] = field(default_factory=list)
    result_error: Scripted | None = None
    cdn_status: int = 200
    cdn_body: bytes | None = None  # None: a PNG
    submissions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    submit_headers: list[dict[str, str]] = field(default_factory=list)
    polls: int = 0
    result_reads: int = 0
    cancelled: list[str] = field(default_factory=list)
    cdn_auth: list[str | None] = field(default_factory=list)
    base: str = ""
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]
    _requests: dict[str, dict[str, Any]] = field(default_factory=dict)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/cdn/{name}", self._cdn),
                Route("/queue/{owner}/{app}/requests/{rid}/status", self._status),
                Route("/queue/{owner}/{app}/requests/{rid}/cancel", self._cancel, methods=["PUT"]),
                Route("/queue/{owner}/{app}/requests/{rid}", self._result),
                Route("/queue/{model:path}", self._submit, methods=["POST"]),
                Route("/run/{model:path}", self._sync, methods=["POST"]),
            ]
        )

    def _authorised(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Key {KEY}":
            return JSONResponse({"detail": "Invalid API key"}, status_code=401)
        return None

    def _output(self, body: dict[str, Any], *, inline: bool) -> dict[str, Any]:
        data = png()
        url = f"data:image/png;base64,{base64.b64encode(data).decode()}" if inline else f"{self.base}/cdn/out.png"
        image = {"url": url, "content_type": "image/png", "file_name": "out.png", "width": 96, "height": 64}
        images = [image] * self.images_per_result
        return {"images": images, "description": f"Here it is: {body.get('prompt')}"}

    def _refusal(self) -> JSONResponse:
        detail = [
            {
                "loc": ["body", "prompt"],
                "msg": "The content could not be processed.",
                "type": "content_policy_violation",
                "url": "https://docs.fal.ai/errors#content_policy_violation",
            }
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    async def _submit(self, request: Request) -> Response:
        if (denied := self._authorised(request)) is not None:
            return denied
        model, body = request.path_params["model"], await request.json()
        self.submissions.append((model, body))
        self.submit_headers.append(dict(request.headers))
        start_by = request.headers.get("x-fal-request-timeout")
        if start_by is not None and not float(start_by) > 0.1:
            return JSONResponse({"detail": "Invalid timeout header", "error_type": "bad_request"}, status_code=400)
        if self.fail_next:
            status, payload, headers = self.fail_next.pop(0)
            return JSONResponse(payload, status_code=status, headers=headers)
        rid = f"req-{next(self._ids)}"
        self._requests[rid] = {"body": body, "polls": 0}
        # status, result and cancel live under owner/app only, whatever subpath the request went to
        root = f"{self.base}/queue/{'/'.join(model.split('/')[:2])}/requests/{rid}"
        return JSONResponse(
            {
                "status": "IN_QUEUE",
                "request_id": rid,
                "response_url": root,
                "status_url": f"{root}/status",
                "cancel_url": f"{root}/cancel",
                "queue_position": self.steps_in_queue,
            }
        )

    async def _status(self, request: Request) -> Response:
        if (denied := self._authorised(request)) is not None:
            return denied
        self.polls += 1
        state = self._requests[request.path_params["rid"]]
        state["polls"] += 1
        if self.never_finish or state["polls"] <= self.steps_in_queue:
            position = max(0, self.steps_in_queue - state["polls"])
            return JSONResponse({"status": "IN_QUEUE", "queue_position": position}, status_code=202)
        if state["polls"] == self.steps_in_queue + 1:
            return JSONResponse({"status": "IN_PROGRESS", "logs": [{"message": "generating"}]}, status_code=202)
        return JSONResponse(
            {"status": "COMPLETED", "logs": [], "response_url": str(request.url).removesuffix("/status")}
        )

    async def _result(self, request: Request) -> Response:
        if (denied := self._authorised(request)) is not None:
            return denied
        self.result_reads += 1
        if self.refuse:
            return self._refusal()
        if self.result_error is not None:
            status, payload, headers = self.result_error
            return JSONResponse(payload, status_code=status, headers=headers)
        return JSONResponse(self._output(self._requests[request.path_params["rid"]]["body"], inline=False))

    async def _cancel(self, request: Request) -> Response:
        if (denied := self._authorised(request)) is not None:
            return denied
        self.cancelled.append(request.path_params["rid"])
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

    async def _sync(self, request: Request) -> Response:
        if (denied := self._authorised(request)) is not None:
            return denied
        body = await request.json()
        self.submissions.append((request.path_params["model"], body))
        if self.sync_delay_s:
            await asyncio.sleep(self.sync_delay_s)
        if self.fail_next:
            status, payload, headers = self.fail_next.pop(0)
            return JSONResponse(payload, status_code=status, headers=headers)
        if self.refuse:
            return self._refusal()
        return JSONResponse(self._output(body, inline=bool(body.get("sync_mode"))))

    async def _cdn(self, request: Request) -> Response:
        self.cdn_auth.append(request.headers.get("authorization"))
        if self.cdn_status != 200:
            return Response(b"gone", status_code=self.cdn_status)
        return Response(png() if self.cdn_body is None else self.cdn_body, media_type="image/png")
