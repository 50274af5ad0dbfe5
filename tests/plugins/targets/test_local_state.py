"""Detached local deployments signal only the process mmship started. State files are
written as an attacker (or a stale run) would leave them: a pid now held by another
process, a pid of -1, 0 or 1, a pid that is not an integer, names with path parts.

``os.kill`` is replaced by a recorder in every test here, so a regression can never signal
the test run itself (``kill(-1, SIGTERM)`` would stop every process of the user)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from pydantic import ValidationError

from mmship.core.cli.app import main
from mmship.core.errors import DeployError
from mmship.plugins.targets.local import LocalSettings, LocalTarget

REAL_KILL = os.kill  # taken before any test replaces os.kill


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MMSHIP_HOME", str(tmp_path / "home"))
    folder = tmp_path / "home" / "deployments"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def signals(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every os.kill call (pid, signal); nothing is really signalled (existence probes aside)."""
    sent: list[tuple[int, int]] = []

    def record(pid: int, sig: int) -> None:
        sent.append((pid, sig))
        if sig == 0 and pid > 1:
            REAL_KILL(pid, 0)  # existence probes stay honest

    monkeypatch.setattr(os, "kill", record)
    return sent


@pytest.fixture
def bystander():
    """An unrelated process of this user (what a reused pid points at)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield child
    finally:
        if child.poll() is None:
            REAL_KILL(child.pid, signal.SIGKILL)
        child.wait()


def write_state(home: Path, name: str, **record) -> Path:
    path = home / f"{name}.json"
    path.write_text(json.dumps({"name": name, "url": "http://127.0.0.1:8000", **record}))
    return path


@pytest.mark.parametrize("pid", [-1, 0, 1, "4242", 4242.0, True, None])
def test_a_state_file_pid_that_is_not_a_process_mmship_started_is_refused(home, signals, capsys, pid):
    path = write_state(home, "evil", pid=pid)
    assert main(["stop", "evil"]) == 1
    err = capsys.readouterr().err
    assert f"records pid {pid!r}; expected the integer pid (above 1)" in err and "nothing is signalled" in err
    assert signals == []
    assert path.exists()  # left for the user to look at
    assert main(["deployments", "list", "--target", "local"]) == 0
    assert "invalid state file" in capsys.readouterr().out
    assert signals == []


def test_a_reused_pid_is_not_signalled(home, signals, bystander):
    """The server exited; its pid now belongs to another process (the bystander). The
    record's start time and command line do not match it: nothing is signalled."""
    write_state(home, "gone", pid=bystander.pid, started=psutil.Process(bystander.pid).create_time() - 3600,
                cmdline=[sys.executable, "-m", "mmship", "serve", "/bundles/clip"])
    assert LocalTarget().status("gone").status == "stopped"
    assert main(["stop", "gone"]) == 0
    assert [s for s in signals if s[1] != 0] == []
    assert bystander.poll() is None and not (home / "gone.json").exists()


def test_same_start_time_but_another_command_is_not_signalled(home, signals, bystander):
    write_state(home, "other", pid=bystander.pid, started=psutil.Process(bystander.pid).create_time(),
                cmdline=[sys.executable, "-m", "mmship", "serve", "/bundles/clip"])
    assert LocalTarget().status("other").status == "stopped"
    LocalTarget().delete("other")
    assert [s for s in signals if s[1] != 0] == [] and bystander.poll() is None


def test_a_process_started_in_the_same_second_with_the_same_command_is_not_signalled(home, signals, bystander):
    """Where the start ticks can be read (Linux), they must match exactly: a process that
    started one tick later is another process, whatever its start time in seconds."""
    from mmship.plugins.targets.local_state import start_ticks

    process = psutil.Process(bystander.pid)
    ticks = start_ticks(bystander.pid)
    assert ticks is not None  # the test machines run Linux
    write_state(home, "twin", pid=bystander.pid, started=process.create_time(), cmdline=process.cmdline(), start_ticks=ticks - 1)
    assert LocalTarget().status("twin").status == "stopped"
    LocalTarget().delete("twin")
    assert [s for s in signals if s[1] != 0] == [] and bystander.poll() is None


def test_the_recorded_process_itself_is_stopped(home, bystander):
    """The verified process (start time and command line match) gets SIGTERM."""
    process = psutil.Process(bystander.pid)
    write_state(home, "mine", pid=bystander.pid, started=process.create_time(), cmdline=process.cmdline())
    assert LocalTarget().status("mine").status == "running"
    LocalTarget().delete("mine", timeout_s=10)
    assert not process.is_running()  # psutil reaped it after SIGTERM
    assert not (home / "mine.json").exists()


def test_a_record_without_identity_is_not_acted_on(home, signals, bystander, capsys):
    write_state(home, "old", pid=bystander.pid)
    assert main(["stop", "old"]) == 1
    err = capsys.readouterr().err
    assert "has no start time and command line" in err and f"ps -p {bystander.pid}" in err
    assert [s for s in signals if s[1] != 0] == [] and bystander.poll() is None


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".hidden", "", "x" * 65, "name with space", "_x", "x\ny"])
def test_deployment_names_with_path_parts_are_refused(home, tiny_clip_bundle, capsys, name):
    assert main(["stop", name]) == 1
    assert "is not a plain name" in capsys.readouterr().err
    with pytest.raises(ValidationError, match="deployment_name"):
        LocalSettings(deployment_name=name)
    code = main(["deploy", str(tiny_clip_bundle), "--target", "local", "--set", "detach=true",
                 "--set", f"deployment_name={name}", "--dry-run"])
    assert code == 1
    assert list(home.parent.rglob("*.json")) == []


def test_a_bundle_name_that_is_not_a_plain_name_needs_a_deployment_name(home, tiny_clip_bundle):
    from mmship.core.bundle import Bundle
    from mmship.core.config import DeployConfig

    bundle = Bundle.load(tiny_clip_bundle)
    bundle.manifest.name = "../../outside"
    with pytest.raises(DeployError) as info:
        LocalTarget(LocalSettings(detach=True)).plan(bundle, DeployConfig.defaults("x"))
    assert "'../../outside' is not a plain name" in info.value.message and "deployment_name=" in info.value.hint
