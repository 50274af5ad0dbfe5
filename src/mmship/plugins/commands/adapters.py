"""``mmship adapters``: list adapters with their specs; ``adapters detect DIR``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mmship import hookimpl
from mmship.core.adapter import describe
from mmship.core.cli.console import console, table


@hookimpl
def mmship_register_commands(app: typer.Typer) -> None:
    """Add the ``adapters`` command group to ``app``."""
    group = typer.Typer(help="Model-family adapters and their input/output specs.")

    @group.callback(invoke_without_command=True)
    def list_adapters(
        ctx: typer.Context,
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    ) -> None:
        """List every registered adapter with its input and output specs."""
        if ctx.invoked_subcommand is not None:
            return
        from mmship.core.manager import get_plugin_manager

        manager = get_plugin_manager()
        registry = manager.adapters()
        described = [describe(cls.from_example()) | {"plugin": registry.owner(cls.name)} for cls in registry]
        if as_json:
            console.print_json(json.dumps(described))
            return
        console.print(
            table(
                "adapters",
                ["adapter", "plugin", "model types", "graphs", "description"],
                [
                    (
                        d["name"],
                        d["plugin"],
                        ", ".join(d["model_types"]),
                        "; ".join(f"{g['name']}: {', '.join(g['inputs'])} -> {', '.join(g['outputs'])}" for g in d["graphs"]),
                        d["description"],
                    )
                    for d in described
                ],
            )
        )
        for d in described:
            rows = [
                (kind, s["name"], s["modality"], s["dtype"], "[" + ", ".join(map(str, s["shape"])) + "]", s["layout"] or "")
                for kind, key in (("input", "inputs"), ("output", "outputs"))
                for s in d[key]
            ]
            console.print(table(f"{d['name']} specs (default-size model)", ["", "name", "modality", "dtype", "shape", "layout"], rows))

    @group.command("detect")
    def detect(
        model_dir: Path = typer.Argument(..., help="A model folder with config.json."),
    ) -> None:
        """Name the adapter that serves the model in MODEL_DIR."""
        from mmship.core.manager import get_plugin_manager
        from mmship.core.model_source import read_hf_config

        hf_config = read_hf_config(model_dir)
        cls = get_plugin_manager().adapters().detect(hf_config, where=str(model_dir / "config.json"))
        console.print(f"{cls.name}  ({hf_config.get('model_type')}: {cls.description})")

    app.add_typer(group, name="adapters")
