"""A build with OpenVINO variants (NNCF int8 included) and loading them for serving
attempt no connection off this machine.

``import openvino`` and NNCF send usage events by default (from a forked child process)
and NNCF turns itself off under pytest, so the build runs in a fresh Python process
whose ``sitecustomize`` (``egress_guard/``, on ``PYTHONPATH`` so every child process has
it too) records and refuses every non-loopback connect and name lookup, with a home
folder of its own and none of the variables that switch telemetry off in CI. A control
run (plain ``import openvino``) shows the guard catches the attempt it must catch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

GUARD = Path(__file__).parent / "egress_guard"
ROOT = Path(__file__).resolve().parents[3]

BUILD = """
import sys
from pathlib import Path
from mmship.core.bundle import Bundle
from mmship.core.pipeline import BuildRequest, build
from mmship.core.stages import OptimizeOptions
from mmship.serving.engine import Engine
path = build(BuildRequest(source=sys.argv[1], out=Path(sys.argv[2]), runtimes=["openvino"],
                          precisions=["int8", "fp32"], optimize=OptimizeOptions(level="none")))
engine = Engine(Bundle.load(path), runtime="openvino", precision="int8")
assert {g.runtime for g in engine.graphs.values()} == {"openvino"}
print("built", path)
"""

CONTROL = """
import time
import openvino  # unguarded: sends an "ov import" usage event when no consent file says no
time.sleep(float(__import__("sys").argv[1]))
"""


def _run(code: str, args: list[str], tmp_path: Path, name: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    log = tmp_path / f"{name}.egress.log"
    home = tmp_path / f"{name}-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "NNCF_CI", "TF_BUILD", "JENKINS_URL", "PYTEST_CURRENT_TEST"}}
    env.update(
        HOME=str(home), MMSHIP_EGRESS_LOG=str(log),
        PYTHONPATH=os.pathsep.join([str(GUARD), str(ROOT / "src"), str(ROOT)]),
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    time.sleep(0.5)  # a forked sender child may still be writing
    attempts = log.read_text().splitlines() if log.is_file() else []
    return result, attempts


def test_the_guard_catches_openvinos_own_usage_event(tmp_path):
    """Control: without mmship's guard, importing openvino tries to reach the network."""
    _, attempts = _run(CONTROL, ["4"], tmp_path, "control")
    assert attempts, "the egress guard saw nothing: it would not catch telemetry either"
    assert any("google-analytics" in line or "getaddrinfo" in line for line in attempts), attempts


def test_a_build_with_openvino_variants_attempts_no_outbound_connection(tiny_clip_dir, tmp_path):
    result, attempts = _run(BUILD, [str(tiny_clip_dir), str(tmp_path / "bundle")], tmp_path, "build")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "built" in result.stdout
    assert attempts == [], f"outbound connections attempted during the build: {attempts}"
    assert not (tmp_path / "build-home" / "intel").exists(), "telemetry wrote a client id into the home folder"
