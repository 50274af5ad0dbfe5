"""Shared console output for the CLI: rich console, error paragraphs, tables."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

import rich
from rich.console import Console
from rich.table import Table

rich.reconfigure(highlight=False)
#: The process's rich console (``rich.get_console()``), not one of our own: libraries that
#: draw progress bars on it during a build (NNCF's quantizer) are then stacked under the
#: stage's status line by rich, instead of two consoles redrawing the same terminal lines.
console = rich.get_console()
err_console = Console(stderr=True, highlight=False)


def print_error(message: str, hint: str | None = None) -> None:
    """Print a user error as one paragraph (and its fix) on stderr."""
    err_console.print(f"[bold red]Error:[/] {message}", soft_wrap=True, markup=True, emoji=False)
    if hint:
        err_console.print(f"[bold]Fix:[/] {hint}", soft_wrap=True)


def print_warning(message: str) -> None:
    """Print a warning line on stderr."""
    err_console.print(f"[bold yellow]Warning:[/] {message}", soft_wrap=True)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    """A rich table with the given columns, every cell rendered with ``str``."""
    result = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        result.add_column(column, overflow="fold")
    for row in rows:
        result.add_row(*("" if cell is None else str(cell) for cell in row))
    return result


def is_interactive() -> bool:
    """True when stdout is a terminal (progress bars and colour make sense)."""
    return sys.stdout.isatty()
