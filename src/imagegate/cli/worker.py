"""``imagegate worker``: runs jobs from the database queue and serves no HTTP (scale-out, GPU hosts).

``--deployments`` names the deployments this worker runs (a GPU host names its local models, which other
processes never start); ``--models`` restricts the models it claims. It stops on SIGTERM or Ctrl-C; jobs it
was running go back to the queue when their leases run out.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import typer
from rich.console import Console

from imagegate.bootstrap import open_runtime
from imagegate.cli.common import ConfigOption, settings_from
from imagegate.heap import settle_for_serving
from imagegate.settings import Settings

console = Console(stderr=True)


def _names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    return names or None


def worker(
    models: str | None = typer.Option(None, "--models", help="Only claim these models (comma-separated)."),
    deployments: str | None = typer.Option(
        None, "--deployments", help="Run only these deployments (comma-separated); worker_only ones need naming."
    ),
    slots: int | None = typer.Option(None, "--slots", min=1, help="Jobs run at once (default: workers setting)."),
    config: Path | None = ConfigOption,
) -> None:
    """Run jobs from the shared database queue, without serving HTTP."""
    settings = settings_from(config, workers=slots)
    if not settings.distributed:
        raise typer.BadParameter(
            'imagegate worker needs queue_url = "database" (IMAGEGATE_QUEUE_URL=database) and a PostgreSQL '
            "database_url; with the default in-process queue, imagegate serve runs the jobs itself.",
            param_hint="queue_url",
        )
    if settings.workers < 1:
        raise typer.BadParameter("a worker needs at least one slot (--slots or workers >= 1)", param_hint="--slots")
    # A worker has no access log; what it does (claims, recoveries, stopped calls) is its log, at INFO.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_run(settings, _names(deployments), _names(models)))
    except ValueError as exc:  # an unknown deployment or model name
        raise typer.BadParameter(str(exc)) from exc


async def _run(settings: Settings, deployments: list[str] | None, models: list[str] | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with open_runtime(
        settings, run_deployments=deployments, run_models=models, accepts_requests=False
    ) as runtime:
        pool = runtime.workers
        claimer = pool.claimer if pool is not None else None
        runs = [d.name for d in runtime.services.router.deployments if d.provider is not None]
        claims = claimer.models if claimer is not None else []
        console.print(
            f"imagegate worker {claimer.worker_id if claimer else '?'}: {settings.workers} slot(s); "
            f"runs {', '.join(runs) or 'no deployment'}; claims {', '.join(claims) or 'no model'}",
            markup=False,
            highlight=False,
        )
        if not claims:
            raise ValueError("this worker would claim nothing: no deployment it runs serves the models asked for")
        settle_for_serving()
        await stop.wait()
    console.print("imagegate worker stopped", markup=False)
