"""``mmship init``: write a commented starter ``deploy_config.yaml`` for an adapter."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from mmship import hookimpl
from mmship.core.cli.console import console


@hookimpl
def mmship_register_commands(app: typer.Typer) -> None:
    """Add the ``init`` command to ``app``."""

    @app.command("init")
    def init(
        path: Path = typer.Argument(Path("deploy_config.yaml"), help="The config file to write."),
        adapter: str | None = typer.Option(None, "--adapter", "-a", help="Adapter name (`mmship adapters`); default: detected from --model."),
        model: Path | None = typer.Option(None, "--model", "-m", help="A model folder (config.json + safetensors) to describe."),
        target: str | None = typer.Option(None, "--target", "-t", help="Target for the target section (default: local)."),
        force: bool = typer.Option(False, "--force", "-f", help="Replace an existing file."),
    ) -> None:
        """Write a commented starter deploy_config.yaml: every section, the adapter's inputs
        and serving defaults. The file validates as written."""
        from mmship.core.config.starter import write_starter

        written, chosen = write_starter(path, adapter, model=model, force=force, target=target)
        console.print(f"[bold green]wrote[/] {escape(str(written))} (adapter {escape(chosen.name)})")
        model_arg = "" if model is not None else " --model MODEL_DIR"
        console.print(f"next: edit it, then  mmship check {escape(str(written))}{model_arg}", markup=True)
