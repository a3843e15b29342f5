"""A fake fal.ai: the queue API (submit, status, result, cancel), sync runs and a CDN, as a Starlette app.

It behaves as fal's docs describe: ``Authorization: Key``, a request that waits ``steps_in_queue`` status polls
``IN_QUEUE`` (with ``queue_position``) then one ``IN_PROGRESS`` before ``COMPLETED``, results with
``images[].url`` on its own CDN (or data URIs in sync mode) and a ``description``. ``fail_next`` scripts the
next submission's answer; ``refuse`` makes results a content-policy 422.
"""

from __future__ import annotations

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


def png(width: int = 96, height: int = 64, color: str = "teal") -> bytes:
    sink = io.BytesIO()
    Image.new("RGB", (width, height), color).save(sink, "PNG")
    return sink.getvalue()


@dataclass
class FakeFal:
    steps_in_queue: int = 2
    refuse: bool = False
    never_finish: bool = False
    fail_next: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    submissions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    polls: int = 0
    cancelled: list[str] = field(default_factory=list)
    cdn_auth: list[str | None] = field(default_factory=list)
    base: str = ""
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]
    _requests: dict[str, dict[str, Any]] = field(default_factory=dict)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/cdn/{name}", self._cdn),
                Route("/queue/{app:path}/requests/{rid}/status", self._status),
                Route("/queue/{app:path}/requests/{rid}/cancel", self._cancel, methods=["PUT"]),
                Route("/queue/{app:path}/requests/{rid}", self._result),
                Route("/queue/{app:path}", self._submit, methods=["POST"]),
                Route("/run/{app:path}", self._sync, methods=["POST"]),
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
        return {"images": [image], "description": f"Here it is: {body.get('prompt')}"}

    def _refusal(self) -> JSONResponse:
        detail = [
            {
                "loc": ["body", "prompt"],
                "msg": "The content could not be processed.",
                "type": "content_policy_violation",
            }
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    async def _submit(self, request: Request) -> Response:
        if (denied := self._authorised(request)) is not None:
            return denied
        app, body = request.path_params["app"], await request.json()
        self.submissions.append((app, body))
        if self.fail_next:
            status, payload, headers = self.fail_next.pop(0)
            return JSONResponse(payload, status_code=status, headers=headers)
        rid = f"req-{next(self._ids)}"
        self._requests[rid] = {"app": app, "body": body, "polls": 0}
        root = f"{self.base}/queue/{app}/requests/{rid}"
        return JSONResponse(
            {
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
        if self.refuse:
            return self._refusal()
        return JSONResponse(self._output(self._requests[request.path_params["rid"]]["body"], inline=False))

    async def _cancel(self, request: Request) -> Response:
        self.cancelled.append(request.path_params["rid"])
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

    async def _sync(self, request: Request) -> Response:
        if (denied := self._authorised(request)) is not None:
            return denied
        body = await request.json()
        self.submissions.append((request.path_params["app"], body))
        if self.refuse:
            return self._refusal()
        return JSONResponse(self._output(body, inline=bool(body.get("sync_mode"))))

    async def _cdn(self, request: Request) -> Response:
        self.cdn_auth.append(request.headers.get("authorization"))
        return Response(png(), media_type="image/png")
