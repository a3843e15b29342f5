"""``imagegate providers``: the configured deployments, or a running server's live fleet stats (``--server``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import typer

from imagegate.cli.common import ConfigOption, settings_from
from imagegate.cli.failures import EXIT_USAGE, fail
from imagegate.cli.remote import http_failure, unreachable
from imagegate.cli.tables import print_table
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
            fail("--server needs an API key", code=EXIT_USAGE, hint="pass --key or set IMAGEGATE_API_KEY")
        rows = _live(server, key)
    else:
        rows = _configured(config)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not server:
        print_table(
            ["name", "provider", "priority", "weight", "limit", "models"],
            [
                [
                    row["name"],
                    row["provider"],
                    str(row["priority"]),
                    f"{row['weight']:g}",
                    str(row.get("concurrency_limit") or "-"),
                    ", ".join(row["models"]),
                ]
                for row in rows
            ],
            numeric={"priority", "weight", "limit"},
        )
        typer.echo(f"installed providers: {', '.join(available_providers())}", err=True)
        return
    table = []
    for row in rows:
        stats = row["stats"].get(window)
        if stats is None:
            fail(f"unknown window {window!r}", code=EXIT_USAGE, hint=f"use one of {', '.join(sorted(row['stats']))}")
        rate = stats["success_rate"]
        table.append(
            [
                row["name"],
                health_word(row["state"], stats),
                str(stats["requests"]),
                "-" if rate is None else f"{rate:.0%}",
                str(stats.get("refusals", 0)),
                str(stats.get("errors", 0)),
                _ms(stats["latency_ms"]["p50"]),
                _ms(stats["latency_ms"]["p95"]),
                _ms(stats["ttfb_ms"]["p50"]),
            ]
        )
    print_table(
        ["name", "health", "reqs", "ok", "refused", "errors", "p50 ms", "p95 ms", "ttfb"],
        table,
        numeric={"reqs", "ok", "refused", "errors", "p50 ms", "p95 ms", "ttfb"},
    )


def health_word(state: str, stats: dict[str, Any]) -> str:
    """The playground's words from the same figures: paused (breaker open: no traffic until it probes again),
    no data (fewer than 5 judged calls), healthy (>= 95 % success), degraded (>= 50 %), down."""
    if state != "closed":
        return "paused"
    judged = int(stats.get("requests", 0)) - int(stats.get("rejected", 0))
    rate = stats.get("success_rate")
    if rate is None or judged < 5:
        return "no data"
    if rate >= 0.95:
        return "healthy"
    return "degraded" if rate >= 0.5 else "down"


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
        raise unreachable(server, exc) from exc
    if response.status_code != 200:
        raise http_failure(response, server)
    data: list[dict[str, Any]] = response.json()["data"]
    return data
