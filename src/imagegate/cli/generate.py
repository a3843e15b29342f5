"""``imagegate generate``: one request from the shell, in-process on the embedded defaults or against a server.

Everything the command line says is checked before any work starts (prompt, inputs, output paths, then the
model and ratio by the same check the server uses); only then does the progress line appear. In-process it
runs the job pipeline under a local key it creates once (and says so); with ``--server URL`` it submits one
async task (``POST /v1/async/images/…``) and polls ``GET /v1/tasks/{id}``, which also reports cost and
provider. The paths written go to stdout; progress, notes and the closing line (time, cost, provider) to stderr.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from imagegate.bootstrap import Runtime
from imagegate.cli.common import ConfigOption, run_with_runtime, settings_from
from imagegate.cli.failures import EXIT_REFUSED, EXIT_UPSTREAM, EXIT_USAGE, exit_code_for, fail
from imagegate.cli.outputs import IMAGE_SUFFIXES, mime_for_suffix, plan_outputs
from imagegate.cli.remote import RemoteJob, run_remote
from imagegate.core.images import ImageInput
from imagegate.core.jobs import Job, JobPriority, JobSpec, JobStatus, Role, Turn
from imagegate.core.money import format_amount
from imagegate.core.ports import ApiKey
from imagegate.errors import InvalidImage, error_from_code
from imagegate.providers.registry import is_emulated
from imagegate.services import accounts
from imagegate.services.billing import displayed_price
from imagegate.services.queries import get_job, load_job_images, wait_for_job
from imagegate.services.submit import check_spec, resolve_model, submit_job
from imagegate.settings import Settings

console = Console(stderr=True)
LOCAL_KEY_NAME = "local-cli"
MAX_INPUT_BYTES = 50 * 1024 * 1024  # larger files are refused before they are read


@dataclass
class Made:
    """What a run produced: images (bytes, mime), why slots made none, and the closing line's facts."""

    images: list[tuple[bytes, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    job_id: str = ""
    cost: str = ""
    provider: str = ""
    error_code: str | None = None
    error_message: str = ""
    refused: bool = False


class Display:
    """A progress line on a terminal; nothing at all when stderr is piped (plain output)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.progress: Progress | None = None
        self.task: object = None

    def start(self) -> None:
        if not console.is_terminal:
            return
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
        self.progress = Progress(*columns, console=console, transient=True)
        self.progress.start()
        self.task = self.progress.add_task(f"generating {self.n} image{'s' if self.n > 1 else ''}…", total=None)

    def steps(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, total=total, completed=done, description=f"step {done}/{total}")  # type: ignore[arg-type]

    def status(self, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=text)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def generate(
    prompt: str = typer.Argument(..., help="What to draw, or how to edit the input images."),
    images: list[Path] = typer.Option([], "--image", "-i", help="An input image (repeat for more)."),
    aspect_ratio: str | None = typer.Option(None, "--aspect-ratio", "-a", help="1:1, 16:9, 9:16, 4:3, 3:2, 21:9…"),
    n: int = typer.Option(1, "-n", min=1, max=10, help="How many images."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="x.png writes x.png (or x-1.png, x-2.png… for -n > 1); a folder gets named files."
    ),
    model: str = typer.Option("gemini-2.5-flash-image", "--model", "-m"),
    seed: int | None = typer.Option(None, "--seed", help="Same seed, same image (in-process only)."),
    server: str | None = typer.Option(
        None, "--server", help="Use this imagegate server instead of running in-process."
    ),
    key: str | None = typer.Option(None, "--key", "-k", envvar="IMAGEGATE_API_KEY", help="API key for --server."),
    config: Path | None = ConfigOption,
) -> None:
    """Make images and write them to files; print their paths, then time, cost and provider."""
    if not prompt.strip():
        fail("the prompt is empty", code=EXIT_USAGE, hint='say what to draw, e.g. imagegate generate "a red fox"')
    if server and not key:
        fail("--server needs an API key", code=EXIT_USAGE, hint="pass --key or set IMAGEGATE_API_KEY")
    if server and seed is not None:
        fail("--seed works in-process only", code=EXIT_USAGE, hint="drop --seed or --server")
    if server and not server.startswith(("http://", "https://")):
        fail(f"--server {server} is not a URL", code=EXIT_USAGE, hint="e.g. --server http://127.0.0.1:8080")
    inputs = [_read_image(path) for path in images]
    mime = mime_for_suffix(out) if out is not None and out.suffix.lower() in IMAGE_SUFFIXES else "image/png"
    plan_outputs(out, n, mime)  # refuses an impossible --out before any work
    display = Display(n)
    started = time.monotonic()
    try:
        if server:
            assert key is not None
            made = asyncio.run(_remote(server, key, model, prompt, inputs, aspect_ratio, n, mime, display))
        else:
            settings = settings_from(config)
            spec = JobSpec(
                model=model,
                turns=(Turn(Role.USER, (prompt, *inputs)),),
                aspect_ratio=aspect_ratio,
                n=n,
                seed=seed,
                dialect="cli",
                output_mime_type=mime,
            )
            made = run_with_runtime(settings, lambda rt: _in_process(rt, settings, spec, display), workers=True)
    finally:
        display.stop()
    elapsed = time.monotonic() - started
    for note in made.notes:
        typer.echo(note, err=True)
    if not made.images:
        _no_image(made, elapsed)
    for path in _write(made.images, out):
        typer.echo(str(path))
    typer.echo(_closing_line(made, elapsed), err=True)


def _closing_line(made: Made, elapsed: float) -> str:
    count = len(made.images)
    parts = [
        f"{count} image{'s' if count != 1 else ''} in {elapsed:.1f} s",
        f"cost {made.cost}" if made.cost else "cost unknown",
        f"provider {made.provider}" if made.provider else "provider unknown",
    ]
    if made.job_id:
        parts.append(made.job_id)
    return " · ".join(parts)


def _no_image(made: Made, elapsed: float) -> None:
    line = _closing_line(made, elapsed)
    if made.refused:
        fail(
            f"no image was made: {made.error_message or 'the model refused'} — {line}",
            code=EXIT_REFUSED,
            hint="nothing was charged; rephrase the prompt",
        )
    if made.error_code:
        code = exit_code_for(error_from_code(made.error_code, made.error_message))
        fail(f"{made.error_message} — {line}", code=code, hint="nothing was charged")
    fail(f"no image was made — {line}", code=EXIT_UPSTREAM, hint="nothing was charged")


def _read_image(path: Path) -> ImageInput:
    try:
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            fail(
                f"{path} is {size / 1e6:.0f} MB; input images may be at most {MAX_INPUT_BYTES // 2**20} MiB",
                code=EXIT_USAGE,
                hint="scale it down first",
            )
        return ImageInput.from_bytes(path.read_bytes(), field=str(path))
    except IsADirectoryError:
        fail(f"cannot read {path}: it is a folder", code=EXIT_USAGE, hint="name an image file with -i")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", code=EXIT_USAGE, hint="check the path given to -i")
    except InvalidImage as exc:
        fail(f"{path}: {exc.message}", code=EXIT_USAGE, hint="use a PNG, JPEG, WebP or HEIC image")


async def _local_principal(runtime: Runtime) -> ApiKey:
    for existing in await accounts.list_keys(runtime.services):
        if existing.name == LOCAL_KEY_NAME and existing.active:
            return existing
    created = (await accounts.create_key(runtime.services, name=LOCAL_KEY_NAME)).record
    typer.echo(
        f"note: created the unmetered key {LOCAL_KEY_NAME} ({created.id}) to record in-process runs; "
        "imagegate usage shows them under that name",
        err=True,
    )
    return created


def _provider_of(settings: Settings, deployment: str | None) -> str:
    if not deployment:
        return ""
    kinds = {d.name: d.provider for d in settings.effective_deployments}
    kind = kinds.get(deployment)
    if kind is None:
        return deployment
    described = kind if kind != deployment else ""
    if is_emulated(kind) and not described:
        described = "emulated"
    return f"{deployment} ({described})" if described else deployment


async def _in_process(runtime: Runtime, settings: Settings, spec: JobSpec, display: Display) -> Made:
    svc = runtime.services
    model = resolve_model(svc, spec.model)
    check_spec(spec, model, svc.config.max_n)  # before the key or the spinner: a bad request is a usage error
    principal = await _local_principal(runtime)
    job = await submit_job(svc, principal, spec, priority=JobPriority.INTERACTIVE)  # the user waits on it
    display.start()
    follower = asyncio.create_task(_follow_steps(runtime, principal, job.id, display.steps))
    try:
        finished = await wait_for_job(svc, job.id)
    finally:
        follower.cancel()
    made = await _collect(runtime, finished)
    made.cost = format_amount(displayed_price(finished, model))
    made.provider = _provider_of(settings, finished.deployment)
    return made


async def _follow_steps(runtime: Runtime, principal: ApiKey, job_id: str, on_steps: Callable[[int, int], None]) -> None:
    """Show the steps a provider reports (local models do; cloud APIs don't, and the spinner stays)."""
    while True:
        await asyncio.sleep(0.25)
        job = await get_job(runtime.services, principal, job_id)
        if job.progress is not None:
            on_steps(job.progress.done, job.progress.total)


async def _collect(runtime: Runtime, job: Job) -> Made:
    made = Made(job_id=job.id)
    if job.status is not JobStatus.SUCCEEDED and job.error is not None:
        made.error_code, made.error_message = job.error.code, job.error.message
        made.refused = job.error.code == "moderation_blocked"
        return made
    data = await load_job_images(runtime.services, job)
    reasons = []
    for result in job.results:
        for image in result.images:
            made.images.append((data[image.file_id], image.mime_type))
        if not result.images:
            reason = result.block_reason or result.finish_reason or (result.error.message if result.error else "?")
            reasons.append(reason)
            made.notes.append(f"image {result.index + 1}: no image ({reason})")
    if not made.images and reasons:
        made.refused = all(r for r in reasons)
        made.error_message = ", ".join(dict.fromkeys(reasons))
    return made


async def _remote(
    server: str,
    key: str,
    model: str,
    prompt: str,
    inputs: list[ImageInput],
    aspect_ratio: str | None,
    n: int,
    mime: str,
    display: Display,
) -> Made:
    body: dict[str, object] = {"model": model, "prompt": prompt, "n": n, "response_format": "b64_json"}
    if aspect_ratio:
        body["aspect_ratio"] = aspect_ratio
    if mime != "image/png":
        body["output_format"] = mime.removeprefix("image/")
    if inputs:
        body["images"] = [f"data:{i.mime_type};base64,{base64.b64encode(i.data).decode()}" for i in inputs]
    job: RemoteJob = await run_remote(
        server, key, body, edit=bool(inputs), on_start=display.start, on_progress=display.steps
    )
    made = Made(job_id=job.id, cost=job.cost, provider=job.deployment)
    made.images = job.images
    made.notes = job.notes
    made.error_code, made.error_message, made.refused = job.error_code, job.error_message, job.refused
    return made


def _write(images: list[tuple[bytes, str]], out: Path | None) -> list[Path]:
    paths = plan_outputs(out, len(images), images[0][1] if images else "image/png", mimes=[m for _, m in images])
    for path, (data, _) in zip(paths, images, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return paths
