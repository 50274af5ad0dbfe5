"""``mmship plugins``: every plugin, where it came from, its hooks, and its errors."""

from __future__ import annotations

import json

import typer

from mmship import hookimpl
from mmship.core.cli.console import console, table


@hookimpl
def mmship_register_commands(app: typer.Typer) -> None:
    """Add the ``plugins`` command to ``app``."""

    @app.command("plugins")
    def plugins(
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
        show_traceback: bool = typer.Option(False, "--traceback", help="Show tracebacks of failed plugins."),
    ) -> None:
        """List loaded, failed and disabled plugins with the hooks each implements."""
        from mmship.core.manager import get_plugin_manager

        manager = get_plugin_manager()
        adapters = manager.adapters()
        targets = manager.targets()
        records = sorted(manager.records.values(), key=lambda r: (r.source != "builtin", r.name))
        provides = {r.name: [] for r in records}
        for name in adapters.names():
            provides.setdefault(adapters.owner(name), []).append(f"adapter:{name}")
        for name in targets.names():
            provides.setdefault(targets.owner(name), []).append(f"target:{name}")
        for kind, registry in (("runtime", manager.runtimes()), ("codec", manager.codecs())):
            for name in registry.names():
                provides.setdefault(registry.owner(name), []).append(f"{kind}:{name}")
        if as_json:
            console.print_json(
                json.dumps(
                    [
                        {
                            "name": r.name,
                            "source": r.source,
                            "status": r.status,
                            "module": r.module,
                            "distribution": r.distribution,
                            "version": r.version,
                            "hooks": r.hooks,
                            "provides": provides.get(r.name, []),
                            "error": r.error,
                        }
                        for r in records
                    ]
                )
            )
            return
        rows = []
        for r in records:
            origin = r.module if not r.distribution else f"{r.distribution} {r.version} ({r.module})"
            status = {"loaded": "[green]loaded[/]", "failed": "[red]failed[/]", "disabled": "[yellow]disabled[/]"}
            detail = r.error or ", ".join(provides.get(r.name, [])) or ", ".join(r.hooks)
            rows.append((r.name, r.source, status[r.status], origin, detail))
        console.print(table("mmship plugins", ["plugin", "source", "status", "from", "provides / error"], rows))
        for r in records:
            if r.status == "failed" and show_traceback and r.traceback:
                console.rule(f"traceback of {r.name}")
                console.print(r.traceback, markup=False)
