"""Targets declare their own flags and URL schemes; the commands know no platform: a
third-party target gets its flags on ``mmship deploy`` and its ``scheme://`` URLs in
``mmship invoke`` through the same declarations the built-ins use."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

import mmship
from mmship.core.cli.app import main
from mmship.core.manager import get_plugin_manager
from mmship.core.target import Deployment, DeployPlan, Target, TargetOption

COMMANDS = Path(mmship.__file__).parent / "plugins" / "commands"


class EchoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    region: str = "eu"
    fast: bool = False


@dataclass
class EchoAnswer:
    text: str | None
    embeddings: list[list[float]] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)


class EchoTarget(Target):
    """A third-party target: one flag with a value, one switch, a URL scheme."""

    name = "echo"
    settings_model = EchoSettings
    cli_options = (
        TargetOption("--region", "region", "where the echo lives"),
        TargetOption("--fast", "fast", "skip the queue", is_flag=True),
    )
    url_schemes = ("echo",)
    invoke_modes = ("say", "shout")
    calls: list[dict[str, Any]] = []

    def plan(self, bundle, config):
        return DeployPlan(self.name, f"echo {bundle.manifest.name}", settings=self.settings.model_dump())

    def deploy(self, bundle, config, plan):
        return Deployment(self.name, bundle.manifest.name, status="echoed")

    def invoke(self, name, *, texts, images, mode, max_tokens=256):
        self.calls.append({"name": name, "texts": texts, "images": len(images), "mode": mode, "region": self.settings.region})
        text = " ".join(texts)
        return EchoAnswer(text=f"{name} {mode}s {text.upper() if mode == 'shout' else text}", usage={"tokens": len(texts)})


class EchoPlugin:
    @mmship.hookimpl
    def mmship_register_targets(self, register):
        register(EchoTarget)


@pytest.fixture
def echo():
    EchoTarget.calls = []
    get_plugin_manager().register(EchoPlugin(), "echo-target")
    return EchoTarget


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_deploy_help_lists_every_declared_flag_with_its_targets(echo, capsys):
    code, out, _ = run(capsys, "deploy", "--help")
    assert code == 0
    assert "Target options" in out
    for text in ("--region", "echo: where the echo lives", "--fast", "--out", "triton: the model repository folder",
                 "--hf-repo", "friendli: the Hugging Face repo to serve", "friendli: deploy a bundle", "triton: replace"):
        assert text in out


def test_declared_flags_set_the_targets_settings(echo, graphs_bundle, capsys):
    code, out, err = run(capsys, "deploy", graphs_bundle, "--target", "echo", "--region", "us", "--fast", "--dry-run")
    assert code == 0, err
    assert "plan (echo)" in out and "us" in out and "True" in out
    code, out, err = run(capsys, "deploy", graphs_bundle, "--target", "echo", "--dry-run")
    assert code == 0 and "eu" in out and "False" in out


def test_a_flag_the_chosen_target_does_not_declare_is_an_error_naming_who_takes_it(echo, graphs_bundle, tmp_path, capsys):
    code, _, err = run(capsys, "deploy", graphs_bundle, "--target", "triton", "--region", "us")
    assert code == 1 and "target 'triton' takes no --region" in err and "it is for: echo" in err
    code, _, err = run(capsys, "deploy", graphs_bundle, "--target", "local", "--force", "--dry-run")
    assert code == 1 and "target 'local' takes no --force" in err and "friendli, triton" in err
    code, _, err = run(capsys, "deploy", graphs_bundle, "--target", "echo", "--out", tmp_path / "x")
    assert code == 1 and "target 'echo' takes no --out" in err and "--region, --fast" in err


def test_invoke_resolves_a_scheme_through_the_target_registry(echo, capsys, tmp_path):
    code, out, err = run(capsys, "invoke", "echo://dep-1", "--text", "hello", "--text", "there")
    assert code == 0, err
    assert "dep-1 says hello there" in out and "usage: tokens=2" in out
    code, out, err = run(capsys, "invoke", "echo://dep-1", "--text", "hi", "--protocol", "shout", "--timeout", "5")
    assert code == 0 and "dep-1 shouts HI" in out
    code, _, err = run(capsys, "invoke", "echo://dep-1", "--text", "hi", "--protocol", "v2")
    assert code == 1 and "invokes with say or shout, not 'v2'" in err and "--protocol say" in err
    code, _, err = run(capsys, "invoke", "echo://", "--text", "hi")
    assert code == 1 and "echo:// needs a deployment id" in err
    code, _, err = run(capsys, "invoke", "nope://x", "--text", "hi")
    assert code == 1 and "no deploy target answers nope:// URLs" in err and "echo:// (echo)" in err
    assert [c["name"] for c in echo.calls] == ["dep-1", "dep-1"]


def test_deployments_invoke_goes_through_the_same_method(echo, capsys):
    code, out, err = run(capsys, "deployments", "invoke", "dep-2", "--target", "echo", "--text", "hi", "--set", "region=ap")
    assert code == 0, err
    assert "dep-2 says hi" in out
    assert echo.calls == [{"name": "dep-2", "texts": ["hi"], "images": 0, "mode": "say", "region": "ap"}]
    code, _, err = run(capsys, "deployments", "status", "dep-2", "--target", "echo")
    assert code == 1 and "does not support `deployments status`" in err


@pytest.mark.parametrize("argument, expected", [
    ("flp_Qz7secretValue", "argument 2 of --set has no '=' (18 characters, not shown"),
    ("=flp_Qz7secretValue", "argument 2 of --set has nothing before '='"),
])
def test_a_malformed_set_is_never_echoed(argument, expected, capsys, monkeypatch):
    """``--set $FRIENDLI_TOKEN`` (the '=' forgotten) must not print the token."""
    monkeypatch.setenv("FRIENDLI_TOKEN", "flp_Qz7secretValue")
    for command in (["deployments", "list", "--target", "friendli"], ["deployments", "restart", "x", "--target", "friendli"]):
        code, out, err = run(capsys, *command, "--set", "region=ap", "--set", argument)
        assert code == 1 and expected in err
        assert "Qz7secret" not in out + err


@pytest.mark.parametrize("module", ["deploy.py", "invoke.py", "target_settings.py"])
def test_the_commands_import_no_target_plugin(module):
    tree = ast.parse((COMMANDS / module).read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [name for name in imported if name.startswith("mmship.plugins.targets")]
