"""``imagegate keys``: create, list and revoke API keys (a key is shown once, at creation)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from imagegate.cli.common import ConfigOption, run_with_runtime, settings_from
from imagegate.cli.failures import friendly
from imagegate.cli.tables import print_table
from imagegate.core.money import format_amount, parse_amount
from imagegate.core.ports import ApiKey
from imagegate.services import accounts

app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
console = Console()


@app.command("create")
@friendly
def create(
    name: str = typer.Option(..., "--name", "-n", help="A name to recognise the key by."),
    credits: str | None = typer.Option(
        None, "--credits", help="Starting credits, in the operator's currency (e.g. 10.50); makes the key metered."
    ),
    admin: bool = typer.Option(False, "--admin", help="May manage keys over the API."),
    as_json: bool = typer.Option(False, "--json", help='Print {"id","key","name","credits"} as JSON.'),
    config: Path | None = ConfigOption,
) -> None:
    """Create a key and print it once; only its hash is stored."""
    try:
        micros = parse_amount(credits) if credits is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--credits") from exc
    created = run_with_runtime(
        settings_from(config),
        lambda rt: accounts.create_key(rt.services, name=name, credits=micros, is_admin=admin),
    )
    if as_json:
        payload = {
            "id": created.record.id,
            "key": created.key,
            "name": name,
            "credits": _credits(created.record),
        }
        typer.echo(json.dumps(payload))
        return
    console.print(f"Created key [bold]{created.record.id}[/bold] ({name}{', admin' if admin else ''}).")
    console.print("Store it now; it is not shown again:")
    typer.echo(created.key)


@app.command("list")
@friendly
def list_(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array."), config: Path | None = ConfigOption
) -> None:
    """Every key: id, name, prefix, credits, admin, created, revoked."""
    keys = run_with_runtime(settings_from(config), lambda rt: accounts.list_keys(rt.services))
    rows = [
        {
            "id": key.id,
            "name": key.name,
            "prefix": key.prefix,
            "credits": _credits(key),
            "admin": key.is_admin,
            "created": key.created_at.isoformat(timespec="seconds"),
            "revoked": key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else None,
        }
        for key in keys
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    print_table(
        ["id", "name", "credits", "admin", "created", "revoked"],
        [
            [
                key.id,
                key.name,
                _credits(key),
                "yes" if key.is_admin else "",
                key.created_at.date().isoformat(),
                key.revoked_at.date().isoformat() if key.revoked_at else "",
            ]
            for key in keys
        ],
        numeric={"credits"},
    )


@app.command("revoke")
@friendly
def revoke(
    key_id: str = typer.Argument(..., help="The key's id (see keys list)."),
    config: Path | None = ConfigOption,
) -> None:
    """Revoke a key at once; requests with it are refused from now on."""
    run_with_runtime(settings_from(config), lambda rt: accounts.revoke_key(rt.services, key_id))
    console.print(f"Revoked {key_id}.")


def _credits(key: ApiKey) -> str:
    return format_amount(key.credits) if key.metered else "unlimited"
