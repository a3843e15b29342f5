"""``imagegate serve``: the API server with in-process workers, on the embedded defaults unless configured."""

from __future__ import annotations

from pathlib import Path

import typer
import uvicorn
from rich.console import Console

from imagegate import __version__
from imagegate.cli.common import ConfigOption, run_with_runtime, settings_from
from imagegate.providers.registry import is_emulated
from imagegate.services import accounts
from imagegate.settings import Settings

console = Console()


def banner(settings: Settings, admin_key: str | None) -> None:
    deployments = settings.effective_deployments
    providers = ", ".join(f"{d.name} ({d.provider})" for d in deployments)
    console.print(f"[bold]imagegate {__version__}[/bold] on http://{settings.host}:{settings.port}")
    console.print(f"  home      {settings.home}")
    console.print(f"  database  {settings.masked()['database_url']}")
    console.print(f"  providers {providers}")
    if settings.distributed:
        runs = f"runs up to {settings.workers} job(s) at once" if settings.workers else "accepts only (workers = 0)"
        console.print(f"  queue     database (shared with every process on it); this process {runs}")
    if any(is_emulated(d.provider) for d in deployments):
        console.print(
            "  [yellow]Images come from the built-in emulator: no upstream is configured "
            "(set GEMINI_API_KEY or add deployments to imagegate.toml).[/yellow]"
        )
    if admin_key:
        console.print("\n[bold green]Created the first admin key. It is shown only this once:[/bold green]")
        console.print(f"  {admin_key}\n", markup=False, highlight=False)


def serve(
    host: str | None = typer.Option(None, "--host", help="Interface to listen on (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", "-p", help="Port to listen on (default 8080)."),
    config: Path | None = ConfigOption,
) -> None:
    """Serve every API dialect with in-process workers."""
    from imagegate.http.app import create_app

    settings = settings_from(config, host=host, port=port)
    created = run_with_runtime(settings, lambda rt: accounts.ensure_admin_key(rt.services))
    banner(settings, created.key if created else None)
    uvicorn.run(
        create_app(settings, serving=True),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=settings.access_log,
        timeout_graceful_shutdown=10,
        # Longer than the idle expiry of clients' pools (httpx, Node and many SDKs use 5 s): the client closes an
        # idle connection first, instead of sending a request into one we are closing (a reset, seen in
        # docs/benchmarks.md with uvicorn's default of 5 s on both sides).
        timeout_keep_alive=75,
    )
