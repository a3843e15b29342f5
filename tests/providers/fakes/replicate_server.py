"""A fake Replicate: model and version predictions, ``Prefer: wait``, polling, cancel and file delivery.

Predictions take ``polls_to_finish`` GETs of ``urls.get`` before they end (0: they end within the create
call's wait, as a ``Prefer: wait`` call answers a finished prediction). They end ``succeeded`` with
``outputs`` file URLs on the fake's own file host (a bare string for one, unless ``output_as_list``), or
``failed`` with ``fail_with`` as the error, or ``end_as`` (``canceled``, ``aborted``) when set.
``fail_next`` scripts the next create calls' answers as problem JSON; ``file_*`` the file host.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = "r8_token_abcdef"


def png(color: str = "purple") -> bytes:
    sink = io.BytesIO()
    Image.new("RGB", (80, 48), color).save(sink, "PNG")
    return sink.getvalue()


@dataclass
class FakeReplicate:
    polls_to_finish: int = 0
    fail_with: str | None = None
    end_as: str | None = None
    outputs: int = 1
    output_as_list: bool = False
    file_status: int = 200
    fail_next: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    created: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    polls: int = 0
    cancelled: list[str] = field(default_factory=list)
    file_auth: list[str | None] = field(default_factory=list)
    base: str = ""
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]
    _polls: dict[str, int] = field(default_factory=dict)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/models/{owner}/{name}/predictions", self._create, methods=["POST"]),
                Route("/v1/predictions", self._create, methods=["POST"]),
                Route("/v1/predictions/{pid}", self._get),
                Route("/v1/predictions/{pid}/cancel", self._cancel, methods=["POST"]),
                Route("/files/{pid}/{n}.png", self._file),
            ]
        )

    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            problem = {"title": "Unauthenticated", "detail": "You did not pass a valid authentication token"}
            return JSONResponse({**problem, "status": 401}, status_code=401)
        return None

    def _prediction(self, pid: str, status: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": pid,
            "model": "google/nano-banana",
            "version": "hidden",
            "status": status,
            "error": None,
            "output": None,
            "urls": {"get": f"{self.base}/v1/predictions/{pid}", "cancel": f"{self.base}/v1/predictions/{pid}/cancel"},
            "metrics": {},
        }
        if status == "succeeded":
            urls = [f"{self.base}/files/{pid}/{n}.png" for n in range(self.outputs)]
            body["output"] = urls if self.output_as_list or self.outputs != 1 else urls[0]
            body["metrics"] = {"predict_time": 3.2}
        if status == "failed":
            body["error"] = self.fail_with
        return body

    def _finished(self) -> str:
        return self.end_as or ("failed" if self.fail_with else "succeeded")

    async def _create(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        body = await request.json()
        self.created.append((request.url.path, body, dict(request.headers)))
        if self.fail_next:
            status, payload, headers = self.fail_next.pop(0)
            return JSONResponse(payload, status_code=status, headers=headers)
        pid = f"p{next(self._ids)}"
        self._polls[pid] = 0
        done = self.polls_to_finish == 0
        return JSONResponse(self._prediction(pid, self._finished() if done else "starting"), status_code=201)

    async def _get(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        pid = request.path_params["pid"]
        self.polls += 1
        self._polls[pid] += 1
        if pid in self.cancelled:
            return JSONResponse(self._prediction(pid, "canceled"))
        done = self._polls[pid] >= self.polls_to_finish
        return JSONResponse(self._prediction(pid, self._finished() if done else "processing"))

    async def _cancel(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        self.cancelled.append(request.path_params["pid"])
        return JSONResponse(self._prediction(request.path_params["pid"], "canceled"))

    async def _file(self, request: Request) -> Response:
        self.file_auth.append(request.headers.get("authorization"))
        if self.file_status != 200:
            return Response(b"not found", status_code=self.file_status)
        return Response(png(), media_type="image/png")
