"""A fake OpenAI Images upstream (``/v1/images/generations``, ``/v1/images/edits``, hosted files) as a Starlette app.

It answers the way OpenAI's API reference and the Lumenfall/AIML/Pixapi pages describe: bearer auth, a real PNG
of the asked ``size`` (or ``aspect_ratio``, or the first input image's size), ``b64_json`` unless
``response_format`` is ``url`` (then a URL on this server), and GPT Image ``usage``. Failures are scripted:
``fail(...)`` queues answers that the next requests get before any image is made. Everything that reached
it is recorded in ``seen`` (and image downloads in ``downloads``).
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
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from imagegate.core.images import ASPECT_RATIOS


def invalid_key(key: str) -> dict[str, Any]:
    """OpenAI's 401, which quotes the key masked: its first characters and its last four."""
    masked = key[:8] + "*" * max(4, len(key) - 12) + key[-4:]
    return {
        "error": {
            "message": f"Incorrect API key provided: {masked}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


@dataclass
class Seen:
    """One request as the fake upstream received it."""

    method: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None = None
    fields: dict[str, str] = field(default_factory=dict)
    files: list[tuple[str, str, str, bytes]] = field(default_factory=list)  # (part name, filename, type, bytes)


@dataclass
class Scripted:
    status: int
    body: Any
    headers: dict[str, str]
    delay_s: float = 0.0


def solid_png(width: int, height: int, color: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


class FakeOpenAI:
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.seen: list[Seen] = []
        self.downloads: list[dict[str, str]] = []
        self.script: list[Scripted] = []
        self.delay_s = 0.0  # every image answer waits this long (timeouts)
        self.files: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/v1/images/generations", self._generations, methods=["POST"]),
                Route("/v1/images/edits", self._edits, methods=["POST"]),
                Route("/files/{name}", self._file, methods=["GET"]),
            ]
        )

    def fail(self, status: int, body: Any, headers: dict[str, str] | None = None, *, delay_s: float = 0.0) -> None:
        """The next request (after those already queued) gets this answer instead of an image."""
        self.script.append(Scripted(status, body, headers or {}, delay_s))

    # -- endpoints -------------------------------------------------------------------------------------

    async def _generations(self, request: Request) -> Response:
        body = await request.json()
        self.seen.append(Seen(request.method, request.url.path, dict(request.headers), json=body))
        if (early := await self._early(request)) is not None:
            return early
        width, height = _dimensions(body.get("size"), body.get("aspect_ratio"), None)
        return await self._answer(request, body.get("response_format"), width, height, str(body["prompt"]), 0)

    async def _edits(self, request: Request) -> Response:
        seen = Seen(request.method, request.url.path, dict(request.headers))
        async with request.form() as form:  # Starlette's own multipart parser
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    seen.files.append((name, value.filename or "", value.content_type or "", await value.read()))
                else:
                    seen.fields[name] = value
        self.seen.append(seen)
        if (early := await self._early(request)) is not None:
            return early
        first = Image.open(io.BytesIO(seen.files[0][3])).size if seen.files else None
        width, height = _dimensions(seen.fields.get("size"), seen.fields.get("aspect_ratio"), first)
        prompt = seen.fields.get("prompt", "")
        return await self._answer(request, seen.fields.get("response_format"), width, height, prompt, len(seen.files))

    async def _file(self, request: Request) -> Response:
        self.downloads.append(dict(request.headers))
        data = self.files.get(request.path_params["name"])
        if data is None:
            return Response(status_code=404)
        return Response(data, media_type="image/png")

    # -- helpers ---------------------------------------------------------------------------------------

    async def _early(self, request: Request) -> Response | None:
        sent = request.headers.get("authorization", "")
        if sent != f"Bearer {self.api_key}":
            return JSONResponse(invalid_key(sent.removeprefix("Bearer ")), status_code=401)
        if self.script:
            scripted = self.script.pop(0)
            await asyncio.sleep(scripted.delay_s)
            if isinstance(scripted.body, bytes):
                return Response(scripted.body, scripted.status, scripted.headers, media_type="application/json")
            return JSONResponse(scripted.body, scripted.status, scripted.headers)
        return None

    async def _answer(
        self, request: Request, response_format: str | None, width: int, height: int, prompt: str, images: int
    ) -> Response:
        await asyncio.sleep(self.delay_s)
        png = solid_png(width, height)
        if response_format == "url":
            name = f"img-{next(self._ids)}.png"
            self.files[name] = png
            item = {"url": f"{str(request.base_url).rstrip('/')}/files/{name}", "revised_prompt": prompt}
        else:
            item = {"b64_json": base64.b64encode(png).decode("ascii")}
        text_tokens = len(prompt.split())
        image_tokens = 65 * images
        usage = {
            "input_tokens": text_tokens + image_tokens,
            "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
            "output_tokens": 1056,
            "output_tokens_details": {"text_tokens": 0, "image_tokens": 1056},
            "total_tokens": text_tokens + image_tokens + 1056,
        }
        return JSONResponse({"created": 1735689600, "data": [item], "usage": usage})


def _dimensions(size: str | None, ratio: str | None, first: tuple[int, int] | None) -> tuple[int, int]:
    if size and "x" in size:
        width, height = size.split("x")
        return int(width), int(height)
    if ratio in ASPECT_RATIOS:
        return ASPECT_RATIOS[ratio].width, ASPECT_RATIOS[ratio].height
    return first or (1024, 1024)
