"""What every CLI command shares: loading settings and running a coroutine against the runtime."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from imagegate.bootstrap import Runtime, open_runtime
from imagegate.cli.failures import EXIT_FAILED, EXIT_USAGE, fail
from imagegate.settings import Settings, load_settings

T = TypeVar("T")

ConfigOption = typer.Option(None, "--config", "-c", help="TOML config file (default: IMAGEGATE_HOME/imagegate.toml).")


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    home = os.environ.get("IMAGEGATE_HOME")
    if home is not None and not home.strip():
        fail(
            "IMAGEGATE_HOME is set but empty",
            code=EXIT_FAILED,
            hint="unset it to use ~/.imagegate, or point it at a folder",
        )
    if home is not None and "home" not in overrides:
        overrides["home"] = Path(home).expanduser().resolve()  # a relative home would make relative URLs
    try:
        return load_settings(config, **{k: v for k, v in overrides.items() if v is not None})
    except FileNotFoundError as exc:
        fail(str(exc), code=EXIT_USAGE, hint="check --config")


def run_with_runtime(settings: Settings, action: Callable[[Runtime], Awaitable[T]], *, workers: bool = False) -> T:
    """Run ``action`` against the runtime. With ``workers`` it runs its own jobs only: a server may be running
    on the same database, and its jobs are not ours to recover."""

    async def main() -> T:
        async with open_runtime(settings, start_workers=workers, recover=False) as runtime:
            return await action(runtime)

    return asyncio.run(main())
