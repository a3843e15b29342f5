"""The ``imagegate`` Typer app: every subcommand registered in one place."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from imagegate.bootstrap import Runtime
from imagegate.cli import keys
from imagegate.cli.common import ConfigOption, run_with_runtime, settings_from
from imagegate.cli.failures import friendly
from imagegate.cli.generate import generate
from imagegate.cli.providers import providers
from imagegate.cli.serve import serve
from imagegate.cli.worker import worker
from imagegate.services.usage import UsageRow

app = typer.Typer(
    help="imagegate: one self-hosted endpoint for gemini-2.5-flash-image in every API dialect.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    epilog=(
        "Exit codes: 0 ok, 1 could not run (configuration, database, files), 2 usage error, 3 refused by the "
        "model, 4 upstream or server failure, 5 API key missing or refused, 6 not enough credit, 130 interrupted."
    ),
)
app.command("serve")(friendly(serve))
app.command("generate")(friendly(generate))
app.command("providers")(friendly(providers))
app.command("worker")(friendly(worker))
app.add_typer(keys.app, name="keys")

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
credits_app = typer.Typer(help="Key balances.", no_args_is_help=True)
app.add_typer(credits_app, name="credits")


@credits_app.command("add")
@friendly
def credits_add(
    key_id: str = typer.Argument(..., help="The key's id (see keys list)."),
    amount: str = typer.Argument(..., help="Credits to add, in the operator's currency (e.g. 25 or 9.99)."),
    config: Path | None = ConfigOption,
) -> None:
    """Grant credits to a key; from then on its requests must be covered by its balance."""
    from imagegate.core.money import format_amount, parse_amount
    from imagegate.services.accounts import add_credits

    try:
        micros = parse_amount(amount)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="AMOUNT") from exc
    balance = run_with_runtime(settings_from(config), lambda rt: add_credits(rt.services, key_id, micros))
    typer.echo(f"{key_id}: balance {format_amount(balance)}")


app.add_typer(db_app, name="db")


@app.command("usage")
@friendly
def show_usage(
    days: int = typer.Option(30, "--days", min=1, max=366, help="How many days back."),
    key_id: str | None = typer.Option(None, "--key", help="One key only (default: every key)."),
    as_json: bool = typer.Option(False, "--json", help="Every figure, tokens too, as JSON."),
    config: Path | None = ConfigOption,
) -> None:
    """Requests, images and spend by day, model and key name (tokens with --json)."""
    from datetime import timedelta

    from imagegate.cli.tables import print_table
    from imagegate.core.money import format_amount
    from imagegate.core.ports import ApiKey
    from imagegate.services.accounts import list_keys
    from imagegate.services.usage import usage

    async def collect(runtime: Runtime) -> tuple[list[UsageRow], dict[str, str]]:
        svc = runtime.services
        operator = ApiKey("cli", "cli", "", "", 0, True, svc.clock())  # the operator sees every key
        rows = await usage(svc, operator, since=svc.clock() - timedelta(days=days), key_id=key_id)
        return rows, {key.id: key.name for key in await list_keys(svc)}

    rows, names = run_with_runtime(settings_from(config), collect)
    if as_json:
        typer.echo(
            json.dumps(
                [{**row.__dict__, "key_name": names.get(row.key_id), "spend": format_amount(row.spend)} for row in rows]
            )
        )
        return
    if not rows:
        typer.echo(f"no settled requests in the last {days} days", err=True)
        return
    print_table(
        ["date", "model", "key", "requests", "images", "spend"],
        [
            [
                row.day,
                row.model,
                names.get(row.key_id, row.key_id),
                str(row.requests),
                str(row.images),
                format_amount(row.spend),
            ]
            for row in rows
        ],
        numeric={"requests", "images", "spend"},
    )


@app.command("settings")
@friendly
def show_settings(config: Path | None = ConfigOption) -> None:
    """Print the effective settings as JSON, secrets masked."""
    typer.echo(json.dumps(settings_from(config).masked(), indent=2, default=str))


@db_app.command("upgrade")
@friendly
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
