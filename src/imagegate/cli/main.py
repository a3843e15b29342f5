"""The ``imagegate`` Typer app: every subcommand registered in one place."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from imagegate.cli import keys
from imagegate.cli.common import ConfigOption, settings_from
from imagegate.cli.generate import generate
from imagegate.cli.serve import serve

app = typer.Typer(
    help="imagegate: one self-hosted endpoint for gemini-2.5-flash-image in every API dialect.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve)
app.command("generate")(generate)
app.add_typer(keys.app, name="keys")

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.command("settings")
def show_settings(config: Path | None = ConfigOption) -> None:
    """Print the effective settings as JSON, secrets masked."""
    typer.echo(json.dumps(settings_from(config).masked(), indent=2, default=str))


@db_app.command("upgrade")
def db_upgrade(config: Path | None = ConfigOption) -> None:
    """Apply pending migrations (serve does this on start too)."""
    import asyncio

    from imagegate.persistence.db import create_engine, upgrade_database

    settings = settings_from(config)
    settings.home.mkdir(parents=True, exist_ok=True)

    async def run() -> None:
        engine = create_engine(settings.effective_database_url)
        try:
            await upgrade_database(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    typer.echo("database is up to date")
