"""Tables for the terminal that fit 80 columns (long cells are cut with an ellipsis, never wrapped), and
tab-separated lines when stdout is not a terminal, so ``| cut``/``| awk`` see one record per line."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

WIDTH = 80


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def print_table(
    headers: list[str], rows: list[list[str]], *, numeric: set[str] | frozenset[str] = frozenset(), title: str = ""
) -> None:
    if not stdout_is_terminal():
        typer.echo("\t".join(headers))
        for row in rows:
            typer.echo("\t".join(cell.replace("\t", " ") for cell in row))
        return
    console = Console(width=min(Console().width or WIDTH, WIDTH))
    table = Table(*(), box=None, title=title or None, pad_edge=False, padding=(0, 1))
    for header in headers:
        table.add_column(header, justify="right" if header in numeric else "left", no_wrap=True, overflow="ellipsis")
    for row in rows:
        table.add_row(*row)
    console.print(table)
