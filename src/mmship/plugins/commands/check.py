"""``mmship check``: validate deploy_config.yaml and check it against the adapter and model.

Prints a table (check, status, detail) and exits 1 when any check is an error.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mmship import hookimpl
from mmship.core.cli.console import console

#: Rich style of each status.
STATUS_STYLES: dict[str, str] = {"ok": "green", "warn": "yellow", "error": "bold red", "skip": "dim"}


def results_table(results: list, title: str) -> Table:
    """The check rows as a rich table; the detail holds the message and the fix."""
    grid = Table(title=title, title_justify="left")
    grid.add_column("check", no_wrap=True)
    grid.add_column("status", no_wrap=True)
    grid.add_column("detail", overflow="fold")
    for row in results:
        detail = escape(row.message)
        if row.hint:
            detail += f"\n[bold]Fix:[/] {escape(row.hint)}"
        style = STATUS_STYLES.get(row.status, "")
        grid.add_row(escape(row.name), f"[{style}]{row.status}[/]", detail)
    return grid


@hookimpl
def mmship_register_commands(app: typer.Typer) -> None:
    """Add the ``check`` command to ``app``."""

    @app.command("check")
    def check(
        path: Path = typer.Argument(Path("deploy_config.yaml"), help="The config file to check."),
        model: Path | None = typer.Option(None, "--model", "-m", help="Model folder (default: model.path when it exists)."),
        as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    ) -> None:
        """Validate the config, then check it against the adapter and the model: input
        shapes, embedding dimensions, precision, accelerator, instance size, replicas."""
        from mmship.core.checks import check_file, counts, has_errors

        results = check_file(path, model_dir=model)
        tally = counts(results)
        if as_json:
            console.print_json(json.dumps({"file": str(path), "results": [r.as_dict() for r in results], "counts": tally}))
        else:
            console.print(results_table(results, f"mmship check {path}"))
            summary = f"{tally['error']} error(s), {tally['warn']} warning(s), {tally['ok']} ok"
            if tally["skip"]:
                summary += f", {tally['skip']} skipped"
            colour = "bold red" if tally["error"] else ("yellow" if tally["warn"] else "bold green")
            console.print(f"[{colour}]{escape(summary)}[/]")
        if has_errors(results):
            raise typer.Exit(1)
