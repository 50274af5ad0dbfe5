"""``mmship deploy`` and ``mmship deployments``: send a bundle to a target, then manage it.

``deploy`` loads the bundle (checksums verified), picks the target (``--target`` or the
config's ``target.name``), validates the target's settings (config ``target`` section,
then ``--out`` / ``--hf-repo`` / ``--force`` / ``--set key=value`` on top), prints the plan
and, unless ``--dry-run``, runs the ``mmship_deploy`` hook. ``deployments`` calls the
optional operations a target lists in ``supports`` (list, status, delete, sleep, wake,
invoke).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml
from pydantic import BaseModel, ValidationError
from rich.markup import escape

from mmship.core.cli.console import console, print_warning, table
from mmship.core.errors import DeployError
from mmship.core.target import Deployment, DeployPlan, Target

#: ``deployments`` operation -> the target method that carries it out.
OPERATIONS: dict[str, str] = {
    "list": "list_deployments",
    "status": "status",
    "delete": "delete",
    "sleep": "sleep",
    "wake": "wake",
    "restart": "restart",
    "invoke": "invoke",
}


def parse_sets(values: list[str]) -> dict[str, Any]:
    """``["a=1", "b.c=x"]`` -> ``{"a": 1, "b": {"c": "x"}}`` (values read as YAML scalars)."""
    result: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise DeployError(f"--set expects key=value, got {item!r}", hint="write e.g. --set project_id=abc123")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return result


def format_validation(exc: ValidationError) -> str:
    """Validation errors as ``key: message`` pairs, without echoing input values (a
    misplaced secret must not be printed)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        parts.append(f"{where}: {err.get('msg', '')}")
    return "; ".join(parts)


def _load_config(path: Path | None) -> Any:
    if path is None:
        return None
    from mmship.core.config import load_config

    return load_config(path)


def choose_target(name: str | None, config: Any) -> type[Target]:
    """The target class named by ``--target`` or the config's ``target.name``."""
    from mmship.core.manager import get_plugin_manager
    from mmship.plugins.targets.config_view import target_section

    registry = get_plugin_manager().targets()
    chosen = name or target_section(config)[0]
    if not chosen:
        raise DeployError(
            "no deploy target chosen",
            hint=f"pass --target NAME or set target.name in deploy_config.yaml (targets: {', '.join(registry.names())})",
        )
    return registry.get(chosen)


def build_settings(cls: type[Target], config: Any, overrides: dict[str, Any]) -> BaseModel:
    """The target's settings: config ``target`` keys (when for this target), then overrides."""
    from mmship.plugins.targets.config_view import target_section

    section_name, section = target_section(config)
    data: dict[str, Any] = {}
    if section_name in (None, cls.name):
        data.update(section)
    elif section:
        print_warning(
            f"deploy_config.yaml's target section is for {section_name!r}; its keys are not used for target {cls.name!r}"
        )
    data.update(overrides)
    try:
        return cls.validate_settings(data)
    except ValidationError as exc:
        fields = ", ".join(cls.settings_model.model_fields) or "none"
        raise DeployError(
            f"invalid settings for target {cls.name!r}: {format_validation(exc)}",
            hint=f"fix the target section of deploy_config.yaml or the --set values; {cls.name} takes: {fields}",
        ) from None


def cli_overrides(cls: type[Target], out: Path | None, hf_repo: str | None, force: bool, sets: list[str]) -> dict[str, Any]:
    """``--out`` / ``--hf-repo`` / ``--force`` / ``--set`` as settings for ``cls``."""
    fields = cls.settings_model.model_fields
    overrides: dict[str, Any] = {}
    for flag, key, value in (("--out", "out", out), ("--hf-repo", "hf_repo", hf_repo)):
        if value is None:
            continue
        if key not in fields:
            raise DeployError(f"target {cls.name!r} takes no {flag}", hint=f"drop {flag}; {cls.name} takes: {', '.join(fields) or 'no settings'}")
        overrides[key] = str(value)
    if force:
        if "force" in fields:
            overrides["force"] = True
        else:
            print_warning(f"--force has no effect on target {cls.name!r}")
    overrides.update(parse_sets(sets))
    return overrides


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


def print_invoke_result(result: Any) -> None:
    """A deployment's answer: the reply text, embedding heads, and token usage."""
    if getattr(result, "text", None) is not None:
        console.print(result.text, markup=False, highlight=False)
    for i, vector in enumerate(getattr(result, "embeddings", []) or []):
        head = ", ".join(f"{x:.4f}" for x in vector[:8])
        console.print(f"embedding {i}: dim {len(vector)} [{head}{', ...' if len(vector) > 8 else ''}]")
    usage = getattr(result, "usage", None)
    if usage:
        console.print("usage: " + ", ".join(f"{k}={v}" for k, v in usage.items()), style="dim")


def register(app: typer.Typer) -> None:
    """Add ``deploy`` and the ``deployments`` group to ``app``."""

    @app.command("deploy")
    def deploy(
        bundle: Path = typer.Argument(..., help="A bundle folder written by `mmship build`."),
        target: str | None = typer.Option(None, "--target", "-t", help="Target name (default: target.name in --config)."),
        config: Path | None = typer.Option(None, "--config", "-c", help="deploy_config.yaml."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and stop."),
        force: bool = typer.Option(False, "--force", help="Triton: replace --out. FriendliAI: deploy a bundle it would refuse."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Folder to write (triton: the model repository)."),
        hf_repo: str | None = typer.Option(None, "--hf-repo", help="FriendliAI: the Hugging Face repo to serve."),
        sets: list[str] = typer.Option([], "--set", help="A target setting, key=value (repeat)."),
    ) -> None:
        """Deploy a bundle to a target: validate settings, print the plan, then create it."""
        from mmship.core.bundle import Bundle
        from mmship.core.manager import get_plugin_manager

        loaded = Bundle.load(bundle)
        deploy_config = _load_config(config)
        cls = choose_target(target, deploy_config)
        settings = build_settings(cls, deploy_config, cli_overrides(cls, out, hf_repo, force, sets))
        instance = cls(settings)
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

    group = typer.Typer(help="Manage deployments on a target: list, status, delete, sleep, wake, invoke.", no_args_is_help=True)
    app.add_typer(group, name="deployments")

    def _target(op: str, target: str | None, config: Path | None, sets: list[str]) -> Target:
        deploy_config = _load_config(config)
        cls = choose_target(target, deploy_config)
        if op not in cls.supports:
            from mmship.core.manager import get_plugin_manager

            able = [c.name for c in get_plugin_manager().targets() if op in c.supports]
            raise DeployError(
                f"target {cls.name!r} does not support `deployments {op}`",
                hint=f"targets that do: {', '.join(able) or 'none'}",
            )
        return cls(build_settings(cls, deploy_config, parse_sets(sets)))

    target_opt = typer.Option(None, "--target", "-t", help="Target name (default: target.name in --config).")
    config_opt = typer.Option(None, "--config", "-c", help="deploy_config.yaml (target settings).")
    set_opt = typer.Option([], "--set", help="A target setting, key=value (repeat).")

    @group.command("list")
    def list_cmd(target: str | None = target_opt, config: Path | None = config_opt, sets: list[str] = set_opt) -> None:
        """List the target's deployments."""
        found = _target("list", target, config, sets).list_deployments()  # type: ignore[attr-defined]
        print_deployments(found, f"deployments ({len(found)})")

    def _simple(op: str, title: str, doc: str) -> None:
        @group.command(op)
        def command(
            name: str = typer.Argument(..., help="Deployment name or id."),
            target: str | None = target_opt, config: Path | None = config_opt, sets: list[str] = set_opt,
        ) -> None:
            result = getattr(_target(op, target, config, sets), OPERATIONS[op])(name)
            print_deployments([result], f"{title} {result.name}")

        command.__doc__ = doc

    for op, title, doc in (
        ("status", "status of", "Show one deployment's status."),
        ("delete", "deleted", "Delete a deployment."),
        ("sleep", "sleeping", "Put a deployment to sleep (no replicas; wake brings it back)."),
        ("wake", "waking", "Wake a sleeping deployment."),
        ("restart", "restarting", "Start a FAILED or TERMINATED deployment again."),
    ):
        _simple(op, title, doc)

    @group.command("invoke")
    def invoke_cmd(
        name: str = typer.Argument(..., help="Deployment name or id."),
        text: list[str] = typer.Option([], "--text", help="Text (repeat for several)."),
        image: list[Path] = typer.Option([], "--image", help="Image file: JPEG, PNG, GIF or WebP (repeat)."),
        mode: str = typer.Option("chat", "--mode", help="chat (text + images) or embeddings (texts)."),
        max_tokens: int = typer.Option(256, "--max-tokens", help="Longest reply (chat)."),
        target: str | None = target_opt, config: Path | None = config_opt, sets: list[str] = set_opt,
    ) -> None:
        """Call a deployment once with texts and images and print the answer."""
        for path in image:
            if not path.is_file():
                raise DeployError(f"image {path} does not exist", hint="pass the path of a JPEG/PNG file")
        images = [path.read_bytes() for path in image]
        result = _target("invoke", target, config, sets).invoke(  # type: ignore[attr-defined]
            name, texts=text, images=images, mode=mode, max_tokens=max_tokens
        )
        print_invoke_result(result)
