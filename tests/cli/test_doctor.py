"""`mmship doctor`: versions against mmship's own declared ranges, plugins, providers."""

from __future__ import annotations

import mmship
from mmship.core.cli.app import main
from mmship.core.manager import get_plugin_manager
from mmship.plugins.commands import doctor as doctor_cmd


def test_doctor_passes_in_the_test_environment(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "==2.13.*" in out and "CPUExecutionProvider" in out
    assert "environment looks right" in out


def test_ranges_come_from_mmship_metadata():
    ranges = doctor_cmd.expected_ranges()
    assert ranges["torch"] == "==2.13.*"
    assert "ray" not in ranges  # extras are not required


def test_wrong_version_and_failed_plugin_exit_1(capsys, monkeypatch):
    monkeypatch.setattr(doctor_cmd, "expected_ranges", lambda: {"torch": "==1.12.*"})

    class Broken:
        @mmship.hookimpl
        def mmship_register_adapter(self, register):
            return None

    get_plugin_manager().register(Broken(), name="broken-doctor")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "outside the tested range" in out
    assert "plugin broken-doctor failed" in out
