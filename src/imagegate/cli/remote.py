"""A job on a running imagegate server, as ``generate --server`` runs it: submit one async task, poll it, and
read its images, cost and provider from the task object. HTTP failures become ``CliFailure`` with exit codes."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from imagegate.cli.failures import (
    EXIT_AUTH,
    EXIT_CREDIT,
    EXIT_FAILED,
    EXIT_UPSTREAM,
    EXIT_USAGE,
    CliFailure,
)

_TERMINAL = {"succeeded", "failed", "cancelled"}
_EXIT_BY_STATUS = {
    400: EXIT_USAGE,
    401: EXIT_AUTH,
    402: EXIT_CREDIT,
    403: EXIT_AUTH,
    404: EXIT_USAGE,
    413: EXIT_USAGE,
    422: EXIT_USAGE,
    429: EXIT_UPSTREAM,
}
_HINT_BY_EXIT = {
    EXIT_AUTH: "check --key / IMAGEGATE_API_KEY",
    EXIT_CREDIT: "ask the operator for credit (imagegate credits add KEY_ID AMOUNT)",
    EXIT_UPSTREAM: "try again later",
}


@dataclass
class RemoteJob:
    id: str = ""
    cost: str = ""
    deployment: str = ""
    images: list[tuple[bytes, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error_code: str | None = None
    error_message: str = ""
    refused: bool = False


def http_failure(response: httpx.Response, server: str) -> CliFailure:
    try:
        error = response.json().get("error") or {}
        message = str(error.get("message") or response.reason_phrase)
    except (ValueError, AttributeError):
        message = response.text[:200].strip() or response.reason_phrase
    code = _EXIT_BY_STATUS.get(response.status_code, EXIT_UPSTREAM if response.status_code >= 500 else EXIT_FAILED)
    return CliFailure(
        f"{server} answered HTTP {response.status_code}: {message}", code=code, hint=_HINT_BY_EXIT.get(code)
    )


def unreachable(server: str, exc: httpx.HTTPError) -> CliFailure:
    cause = str(exc) or type(exc).__name__
    return CliFailure(
        f"cannot reach {server}: {cause}", code=EXIT_UPSTREAM, hint="is imagegate serve running there? check --server"
    )


async def run_remote(
    server: str,
    key: str,
    body: dict[str, Any],
    *,
    edit: bool,
    on_start: Callable[[], None],
    on_progress: Callable[[int, int], None],
) -> RemoteJob:
    base = server.rstrip("/")
    headers = {"authorization": f"Bearer {key}"}
    path = "/v1/async/images/edits" if edit else "/v1/async/images/generations"
    try:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=httpx.Timeout(60, connect=10)) as client:
            response = await client.post(path, json=body)
            if response.status_code >= 400:
                raise http_failure(response, server)
            task = response.json()
            on_start()
            delay = 0.2
            while task.get("status") not in _TERMINAL:
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 2.0)
                response = await client.get(f"/v1/tasks/{task['id']}", params={"response_format": "b64_json"})
                if response.status_code >= 400:
                    raise http_failure(response, server)
                task = response.json()
                if progress := task.get("progress"):
                    on_progress(int(progress["done"]), int(progress["total"]))
            if task["status"] == "succeeded":  # the first answer may already be terminal, without b64 data
                response = await client.get(f"/v1/tasks/{task['id']}", params={"response_format": "b64_json"})
                if response.status_code >= 400:
                    raise http_failure(response, server)
                task = response.json()
    except httpx.HTTPError as exc:
        raise unreachable(server, exc) from exc
    return _read_task(task)


def _read_task(task: dict[str, Any]) -> RemoteJob:
    job = RemoteJob(
        id=str(task.get("id", "")), cost=str(task.get("cost") or ""), deployment=str(task.get("deployment") or "")
    )
    mime = "image/" + str(((task.get("result") or {}).get("output_format")) or "png")
    for item in (task.get("result") or {}).get("data") or []:
        if item.get("b64_json"):
            job.images.append((base64.b64decode(item["b64_json"]), mime.replace("image/jpg", "image/jpeg")))
    if error := task.get("error"):
        job.error_code = str(error.get("code") or "internal_error")
        job.error_message = str(error.get("message") or task.get("status"))
        job.refused = job.error_code == "moderation_blocked"
    if job.images and len(job.images) < int(task.get("n") or 1):
        job.notes.append(f"{int(task.get('n') or 1) - len(job.images)} of the images were not made")
    return job
