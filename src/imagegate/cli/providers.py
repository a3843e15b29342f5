"""``imagegate providers``: the configured deployments, or a running server's live fleet stats (``--server``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from imagegate.cli.common import ConfigOption, settings_from
from imagegate.providers.registry import available_providers


def providers(
    server: str | None = typer.Option(None, "--server", help="Show this server's live stats (GET /v1/providers)."),
    key: str | None = typer.Option(None, "--key", "-k", envvar="IMAGEGATE_API_KEY", help="API key for --server."),
    window: str = typer.Option("5m", "--window", "-w", help="Stats window: 5m, 1h or 24h."),
    as_json: bool = typer.Option(False, "--json"),
    config: Path | None = ConfigOption,
) -> None:
    """Deployments: provider, models, priority, weight, limits; with --server their health and latency."""
    if server:
        if not key:
            raise typer.BadParameter("--server needs --key (or IMAGEGATE_API_KEY)", param_hint="--key")
        rows = _live(server, key)
    else:
        rows = _configured(config)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table("name", "provider", "models", "priority", "weight", "limit", title="deployments")
    if server:
        for column in ("state", "health", "requests", "success", "p50 ms", "p95 ms", "ttfb p50"):
            table.add_column(column)
    for row in rows:
        cells = [
            row["name"],
            row["provider"],
            ", ".join(row["models"]),
            str(row["priority"]),
            f"{row['weight']:g}",
            str(row.get("concurrency_limit") or "-"),
        ]
        if server:
            stats = row["stats"].get(window)
            if stats is None:
                raise typer.BadParameter(f"unknown window {window!r}; use one of {sorted(row['stats'])}")
            rate = stats["success_rate"]
            cells += [
                row["state"],
                row["health"],
                str(stats["requests"]),
                "-" if rate is None else f"{rate:.1%}",
                _ms(stats["latency_ms"]["p50"]),
                _ms(stats["latency_ms"]["p95"]),
                _ms(stats["ttfb_ms"]["p50"]),
            ]
        table.add_row(*cells)
    Console().print(table)
    if not server:
        typer.echo(f"installed providers: {', '.join(available_providers())}")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _configured(config: Path | None) -> list[dict[str, Any]]:
    settings = settings_from(config)
    return [
        {
            "name": dep.name,
            "provider": dep.provider,
            "models": sorted(dep.served_models) or ["*"],
            "priority": dep.priority,
            "weight": dep.weight,
            "concurrency_limit": dep.max_concurrency,
            "timeout_s": dep.timeout_s,
        }
        for dep in settings.effective_deployments
    ]


def _live(server: str, key: str) -> list[dict[str, Any]]:
    try:
        response = httpx.get(
            f"{server.rstrip('/')}/v1/providers", headers={"authorization": f"Bearer {key}"}, timeout=30
        )
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot reach {server}: {exc}", err=True)
        raise typer.Exit(1) from exc
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        typer.echo(f"error: HTTP {response.status_code}: {message}", err=True)
        raise typer.Exit(1)
    data: list[dict[str, Any]] = response.json()["data"]
    return data
