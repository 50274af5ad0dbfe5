"""Ctrl-C ends a command with exit code 130 and says so (typer turns it into Exit(130))."""

from __future__ import annotations

import typer

from mmship.core.cli import app as cli_app


def test_ctrl_c_is_reported_with_exit_code_130(monkeypatch, capsys):
    stub = typer.Typer()

    @stub.command()
    def build() -> None:
        raise KeyboardInterrupt

    @stub.command()
    def other() -> None:
        pass

    monkeypatch.setattr(cli_app, "build_app", lambda: stub)
    assert cli_app.main(["build"]) == 130
    assert "interrupted" in capsys.readouterr().err
