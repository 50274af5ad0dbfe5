"""``mmship deploy`` and ``mmship deployments``: send a bundle to a target, then manage it.

``deploy`` loads the bundle (checksums verified), reads ``--config`` (or uses
:meth:`DeployConfig.defaults`), picks the target (``--target`` or the config's
``target.name``), validates the target's settings (config ``target`` section, then the
flags targets declare, e.g. Triton's ``--out``, and ``--set key=value`` on top), prints the
plan and, unless ``--dry-run``, runs the ``mmship_deploy`` hook. The declared flags become
real options when the app is built, so ``mmship deploy --help`` lists them with their
targets. ``deployments`` calls the optional operations a target implements (list, status,
delete, sleep, wake, restart, invoke).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from mmship import hookimpl
from mmship.core.cli.console import console, table
from mmship.core.config import DeployConfig
from mmship.core.errors import DeployError
from mmship.core.target import Deployment, DeployPlan, InvokeAnswer, Target
from mmship.plugins.commands.target_settings import (
    build_settings,
    choose_target,
    declared_flag_params,
    declared_flag_values,
    flag_overrides,
    invoke_mode,
    parse_sets,
    target_registry,
)

__all__ = ["parse_sets", "print_deployments", "print_invoke_result", "print_plan"]


def _load_config(path: Path | None) -> DeployConfig | None:
    if path is None:
        return None
    from mmship.core.config import load_config

    return load_config(path)


def print_plan(plan: DeployPlan) -> None:
    """The plan as a heading, a settings table and numbered steps."""
    console.print(f"[bold]plan[/] ({plan.target}): {escape(plan.summary)}")
    rows = [(escape(str(k)), escape(str(v))) for k, v in plan.settings.items()]
    console.print(table(f"{plan.target} settings", ["setting", "value"], rows))
    for i, step in enumerate(plan.steps, start=1):
        console.print(f"  {i}. {step}", markup=False)


def print_deployments(deployments: list[Deployment], title: str) -> None:
    """Deployments as a table (details as key=value pairs)."""
    rows = [
        tuple(escape(str(cell)) for cell in (
            d.name, d.status, d.url or "",
            ", ".join(f"{k}={v}" for k, v in d.details.items() if v not in (None, "", [])),
        ))
        for d in deployments
    ]
    console.print(table(title, ["name", "status", "url", "details"], rows))


def print_invoke_result(result: InvokeAnswer) -> None:
    """A deployment's answer: the reply text, embedding heads, and token usage."""
    if result.text is not None:
        console.print(result.text, markup=False, highlight=False)
    for i, vector in enumerate(result.embeddings or []):
        head = ", ".join(f"{x:.4f}" for x in vector[:8])
        console.print(f"embedding {i}: dim {len(vector)} [{head}{', ...' if len(vector) > 8 else ''}]")
    if result.usage:
        console.print("usage: " + ", ".join(f"{k}={v}" for k, v in result.usage.items()), style="dim")


def read_images(paths: list[Path]) -> list[bytes]:
    """The bytes of each image file, or an error naming the missing one."""
    for path in paths:
        if not path.is_file():
            raise DeployError(f"image {path} does not exist", hint="pass the path of a JPEG/PNG file")
    return [path.read_bytes() for path in paths]


def _with_declared_flags(command: Callable[..., None], extra: list[inspect.Parameter]) -> Callable[..., None]:
    """``command`` whose signature (what Typer reads) also lists ``extra`` options."""
    own = [p for p in inspect.signature(command).parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    setattr(command, "__signature__", inspect.Signature([*own, *extra]))  # noqa: B010 (Typer reads it)
    return command


@hookimpl
def mmship_register_commands(app: typer.Typer) -> None:
    """Add ``deploy`` and the ``deployments`` group to ``app``."""
    registry = target_registry()

    def deploy(
        bundles: list[Path] = typer.Argument(
            ..., metavar="BUNDLE",
            help="A bundle folder written by `mmship build`; several for targets that serve them together (local, ray).",
        ),
        target: str | None = typer.Option(None, "--target", "-t", help="Target name (default: target.name in --config)."),
        config: Path | None = typer.Option(None, "--config", "-c", help="deploy_config.yaml."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and stop."),
        sets: list[str] = typer.Option([], "--set", help="A target setting, key=value (repeat)."),
        **declared: Any,
    ) -> None:
        """Deploy a bundle (or several, to targets serving them together) to a target: validate
        settings, print the plan, then create it."""
        from mmship.core.bundle import Bundle
        from mmship.core.manager import get_plugin_manager

        loaded, *more = [Bundle.load(b) for b in bundles]
        deploy_config = _load_config(config) or DeployConfig.defaults(loaded.manifest.name)
        cls = choose_target(target, deploy_config, registry)
        if more and not cls.several_bundles:
            several = ", ".join(c.name for c in registry if c.several_bundles) or "none"
            raise DeployError(
                f"target {cls.name!r} deploys one bundle at a time, got {len(bundles)}",
                hint=f"deploy each bundle on its own, or use a target that serves several together ({several})",
            )
        overrides = flag_overrides(cls, declared_flag_values(declared, registry), registry) | parse_sets(sets)
        instance = cls(build_settings(cls, deploy_config.target, overrides))
        instance.more_bundles = more
        plan = instance.plan(loaded, deploy_config)
        print_plan(plan)
        if dry_run:
            console.print("[bold]dry run[/]: nothing was created")
            return
        result = get_plugin_manager().hook.mmship_deploy(bundle=loaded, config=deploy_config, target=instance, plan=plan)
        if result is None:
            raise DeployError(f"no plugin carried out the {cls.name} deployment", hint="check `mmship plugins` for failed plugins")
        print_deployments([result], "deployment")
        console.print(f"[bold green]deployed[/] {escape(result.name)}: {escape(result.status)}" + (f"  {escape(result.url)}" if result.url else ""))

    app.command("deploy")(_with_declared_flags(deploy, declared_flag_params(registry)))

    group = typer.Typer(help="Manage deployments on a target: list, status, delete, sleep, wake, restart, invoke.", no_args_is_help=True)
    app.add_typer(group, name="deployments")

    def _target(op: str, target: str | None, config: Path | None, sets: list[str]) -> Target:
        deploy_config = _load_config(config)
        cls = choose_target(target, deploy_config, registry)
        if not cls.supports(op):
            raise cls.unsupported(op)
        section = deploy_config.target if deploy_config is not None else None
        return cls(build_settings(cls, section, parse_sets(sets)))

    target_opt = typer.Option(None, "--target", "-t", help="Target name (default: target.name in --config).")
    config_opt = typer.Option(None, "--config", "-c", help="deploy_config.yaml (target settings).")
    set_opt = typer.Option([], "--set", help="A target setting, key=value (repeat).")

    @group.command("list")
    def list_cmd(target: str | None = target_opt, config: Path | None = config_opt, sets: list[str] = set_opt) -> None:
        """List the target's deployments."""
        found = _target("list", target, config, sets).list_deployments()
        print_deployments(found, f"deployments ({len(found)})")

    def _simple(op: str, call: Callable[[Target, str], Deployment], title: str, doc: str) -> None:
        @group.command(op)
        def command(
            name: str = typer.Argument(..., help="Deployment name or id."),
            target: str | None = target_opt, config: Path | None = config_opt, sets: list[str] = set_opt,
        ) -> None:
            result = call(_target(op, target, config, sets), name)
            print_deployments([result], f"{title} {result.name}")

        command.__doc__ = doc

    _simple("status", lambda t, name: t.status(name), "status of", "Show one deployment's status.")
    _simple("delete", lambda t, name: t.delete(name), "deleted", "Delete a deployment.")
    _simple("sleep", lambda t, name: t.sleep(name), "sleeping", "Put a deployment to sleep (no replicas; wake brings it back).")
    _simple("wake", lambda t, name: t.wake(name), "waking", "Wake a sleeping deployment.")
    _simple("restart", lambda t, name: t.restart(name), "restarting", "Start a failed or stopped deployment again.")

    @group.command("invoke")
    def invoke_cmd(
        name: str = typer.Argument(..., help="Deployment name or id."),
        text: list[str] = typer.Option([], "--text", help="Text (repeat for several)."),
        image: list[Path] = typer.Option([], "--image", help="Image file: JPEG, PNG, GIF or WebP (repeat)."),
        mode: str | None = typer.Option(None, "--mode", help="What to send, e.g. chat (text + images) or embeddings (texts); default: the target's first."),
        max_tokens: int = typer.Option(256, "--max-tokens", help="Longest reply (chat)."),
        target: str | None = target_opt, config: Path | None = config_opt, sets: list[str] = set_opt,
    ) -> None:
        """Call a deployment once with texts and images and print the answer."""
        images = read_images(image)
        instance = _target("invoke", target, config, sets)
        chosen = invoke_mode(type(instance), mode, "--mode")
        print_invoke_result(instance.invoke(name, texts=text, images=images, mode=chosen, max_tokens=max_tokens))
