"""The CLI shell: version, exit codes, plugin commands, error paragraphs, plugins table."""

from __future__ import annotations

import json

import pytest
import typer

import mmship
from mmship.core.cli.app import main
from mmship.core.errors import MmshipError
from mmship.core.manager import get_plugin_manager


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")


class CommandPlugin:
    @mmship.hookimpl
    def mmship_register_commands(self, app: typer.Typer) -> None:
        @app.command("hello")
        def hello(name: str = "world") -> None:
            """Say hello (fixture command)."""
            print(f"hello {name}")

        @app.command("explode")
        def explode() -> None:
            """Fail with a user error."""
            raise MmshipError("the widget is missing", hint="pass --widget")


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mmship {mmship.__version__}"


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("plugins", "adapters", "init", "check"):
        assert command in out


def test_usage_error_exits_2(capsys):
    assert main(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_plugin_adds_a_command(capsys):
    get_plugin_manager().register(CommandPlugin(), name="commands-fixture")
    assert main(["hello", "--name", "mmship"]) == 0
    assert capsys.readouterr().out.strip() == "hello mmship"


def test_user_error_is_one_paragraph_with_fix_and_exit_1(capsys):
    get_plugin_manager().register(CommandPlugin(), name="commands-fixture")
    assert main(["explode"]) == 1
    err = capsys.readouterr().err
    assert "Error: the widget is missing" in err
    assert "Fix: pass --widget" in err
    assert "Traceback" not in err


def test_debug_shows_traceback(capsys):
    get_plugin_manager().register(CommandPlugin(), name="commands-fixture")
    assert main(["--debug", "explode"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_broken_command_plugin_does_not_stop_the_cli(capsys):
    class Broken:
        @mmship.hookimpl
        def mmship_register_commands(self, app):
            raise RuntimeError("cannot add commands")

    get_plugin_manager().register(Broken(), name="broken-commands")
    assert main(["plugins", "--json"]) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["broken-commands"]["status"] == "failed"
    assert "cannot add commands" in records["broken-commands"]["error"]


def test_plugins_table_shows_builtins_and_failures(capsys):
    class Typo:
        @mmship.hookimpl
        def mmship_exprt(self, adapter):
            return None

    get_plugin_manager().register(Typo(), name="typo-plugin")
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "adapter-clip" in out and "adapter:clip" in out
    assert "typo-plugin" in out and "failed" in out and "mmship_exprt" in out
