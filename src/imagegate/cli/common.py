"""What every CLI command shares: loading settings and running a coroutine against the runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from imagegate.bootstrap import Runtime, open_runtime
from imagegate.settings import Settings, load_settings

T = TypeVar("T")

ConfigOption = typer.Option(None, "--config", "-c", help="TOML config file (default: IMAGEGATE_HOME/imagegate.toml).")


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **{k: v for k, v in overrides.items() if v is not None})
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from exc


def run_with_runtime(settings: Settings, action: Callable[[Runtime], Awaitable[T]], *, workers: bool = False) -> T:
    """Run ``action`` against the runtime. With ``workers`` it runs its own jobs only: a server may be running
    on the same database, and its jobs are not ours to recover."""

    async def main() -> T:
        async with open_runtime(settings, start_workers=workers, recover=False) as runtime:
            return await action(runtime)

    return asyncio.run(main())
