"""``imagegate generate``: one request from the shell, in-process on the embedded defaults or against a server.

In-process it runs the same job pipeline as the server (under a local key it creates once); with
``--server URL --key K`` it speaks the Gemini REST dialect to that server, one request per image.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from imagegate.bootstrap import Runtime
from imagegate.cli.common import ConfigOption, run_with_runtime, settings_from
from imagegate.core.images import ImageInput
from imagegate.core.jobs import Job, JobPriority, JobSpec, JobStatus, Role, Turn
from imagegate.core.ports import ApiKey
from imagegate.errors import ImagegateError, InvalidImage
from imagegate.services import accounts
from imagegate.services.queries import get_job, load_job_images, wait_for_job
from imagegate.services.submit import submit_job

console = Console(stderr=True)
LOCAL_KEY_NAME = "local-cli"
_SUFFIX = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


def generate(
    prompt: str = typer.Argument(..., help="What to draw, or how to edit the input images."),
    images: list[Path] = typer.Option([], "--image", "-i", help="An input image (repeat for up to 3)."),
    aspect_ratio: str | None = typer.Option(None, "--aspect-ratio", "-a", help="1:1, 16:9, 9:16, 4:3, 3:2, 21:9…"),
    n: int = typer.Option(1, "-n", min=1, max=10, help="How many images."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output file (one image) or directory."),
    model: str = typer.Option("gemini-2.5-flash-image", "--model", "-m"),
    server: str | None = typer.Option(
        None, "--server", help="Use this imagegate server instead of running in-process."
    ),
    key: str | None = typer.Option(None, "--key", "-k", envvar="IMAGEGATE_API_KEY", help="API key for --server."),
    config: Path | None = ConfigOption,
) -> None:
    """Make images and write them to files."""
    inputs = [_read_image(path) for path in images]
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"generating {n} image{'s' if n > 1 else ''}…", total=None)

        def show_steps(done: int, total: int) -> None:
            bar.update(task, total=total, completed=done, description=f"step {done}/{total}")

        try:
            if server:
                if not key:
                    raise typer.BadParameter("--server needs --key (or IMAGEGATE_API_KEY)", param_hint="--key")
                made = asyncio.run(_remote(server, key, model, prompt, inputs, aspect_ratio, n))
            else:
                spec = JobSpec(model=model, turns=(Turn(Role.USER, (prompt, *inputs)),), aspect_ratio=aspect_ratio, n=n)
                made = run_with_runtime(
                    settings_from(config), lambda rt: _in_process(rt, spec, show_steps), workers=True
                )
        except ImagegateError as exc:
            bar.stop()
            console.print(f"[red]error:[/red] {exc.message}")
            raise typer.Exit(1) from exc
        bar.update(task, description="done")
    images_made = [(data, mime) for data, mime, _ in made if data]
    for _, _, note in made:
        if note:
            console.print(note)
    if not images_made:
        console.print("[yellow]No image was made.[/yellow]")
        raise typer.Exit(2)
    for path in _write(images_made, out):
        typer.echo(str(path))


def _read_image(path: Path) -> ImageInput:
    try:
        return ImageInput.from_bytes(path.read_bytes(), field=str(path))
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--image") from exc
    except InvalidImage as exc:
        raise typer.BadParameter(f"{path}: {exc.message}", param_hint="--image") from exc


async def _local_principal(runtime: Runtime) -> ApiKey:
    for existing in await accounts.list_keys(runtime.services):
        if existing.name == LOCAL_KEY_NAME and existing.active:
            return existing
    return (await accounts.create_key(runtime.services, name=LOCAL_KEY_NAME)).record


async def _in_process(
    runtime: Runtime, spec: JobSpec, on_steps: Callable[[int, int], None]
) -> list[tuple[bytes, str, str]]:
    svc = runtime.services
    principal = await _local_principal(runtime)
    job = await submit_job(svc, principal, spec, priority=JobPriority.INTERACTIVE)  # the user waits on it
    follower = asyncio.create_task(_follow_steps(runtime, principal, job.id, on_steps))
    try:
        finished = await wait_for_job(svc, job.id)
    finally:
        follower.cancel()
    return await _collect(runtime, finished)


async def _follow_steps(runtime: Runtime, principal: ApiKey, job_id: str, on_steps: Callable[[int, int], None]) -> None:
    """Show the steps a provider reports (local models do; cloud APIs don't, and the spinner stays)."""
    while True:
        await asyncio.sleep(0.25)
        job = await get_job(runtime.services, principal, job_id)
        if job.progress is not None:
            on_steps(job.progress.done, job.progress.total)


async def _collect(runtime: Runtime, job: Job) -> list[tuple[bytes, str, str]]:
    if job.status is not JobStatus.SUCCEEDED and job.error is not None:
        return [(b"", "", f"failed: {job.error.message}")]
    data = await load_job_images(runtime.services, job)
    made: list[tuple[bytes, str, str]] = []
    for result in job.results:
        for image in result.images:
            made.append((data[image.file_id], image.mime_type, ""))
        if not result.images:
            reason = result.block_reason or result.finish_reason or (result.error.message if result.error else "?")
            made.append((b"", "", f"image {result.index + 1}: no image ({reason})"))
    return made


async def _remote(
    server: str, key: str, model: str, prompt: str, inputs: list[ImageInput], aspect_ratio: str | None, n: int
) -> list[tuple[bytes, str, str]]:
    parts: list[dict[str, object]] = [{"text": prompt}]
    parts += [{"inlineData": {"mimeType": i.mime_type, "data": base64.b64encode(i.data).decode()}} for i in inputs]
    body: dict[str, object] = {"contents": [{"role": "user", "parts": parts}]}
    if aspect_ratio:
        body["generationConfig"] = {"imageConfig": {"aspectRatio": aspect_ratio}}
    url = f"{server.rstrip('/')}/v1beta/models/{model}:generateContent"
    async with httpx.AsyncClient(timeout=httpx.Timeout(600, connect=10)) as client:
        responses = await asyncio.gather(
            *(client.post(url, json=body, headers={"x-goog-api-key": key}) for _ in range(n))
        )
    made: list[tuple[bytes, str, str]] = []
    for response in responses:
        payload = response.json()
        if response.status_code != 200:
            made.append((b"", "", f"failed: HTTP {response.status_code}: {payload.get('error', {}).get('message')}"))
            continue
        candidates = payload.get("candidates") or []
        found = False
        for part in (candidates[0].get("content") or {}).get("parts", []) if candidates else []:
            if blob := part.get("inlineData"):
                made.append((base64.b64decode(blob["data"]), blob.get("mimeType", "image/png"), ""))
                found = True
        if not found:
            reason = (payload.get("promptFeedback") or {}).get("blockReason") or (
                candidates[0].get("finishReason") if candidates else "no candidates"
            )
            made.append((b"", "", f"no image ({reason})"))
    return made


def _write(images: list[tuple[bytes, str]], out: Path | None) -> list[Path]:
    single_file = out is not None and len(images) == 1 and out.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")
    if single_file:
        assert out is not None
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(images[0][0])
        return [out]
    directory = out or Path.cwd()
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    paths = []
    for number, (data, mime) in enumerate(images, start=1):
        path = directory / f"imagegate-{stamp}-{number}{_SUFFIX.get(mime, '.png')}"
        path.write_bytes(data)
        paths.append(path)
    return paths
