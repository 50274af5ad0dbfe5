"""The tutorial's example package, pip-installed, shows up in mmship without touching it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "example_plugin" / "mmship-siglip"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory) -> dict[str, str]:
    """pip-install the example package into a private folder; return an env using it."""
    work = tmp_path_factory.mktemp("siglip")
    source = work / "src"
    shutil.copytree(EXAMPLE, source)
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True,
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]), COLUMNS="200")
    env.pop("MMSHIP_DISABLE_PLUGIN_AUTOLOAD", None)
    return env


def mmship(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mmship", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_installed_adapter_is_listed(installed_example):
    result = mmship(installed_example, "adapters", "--json")
    assert result.returncode == 0, result.stderr
    adapters = {a["name"]: a for a in json.loads(result.stdout)}
    assert adapters["siglip-tutorial"]["plugin"] == "siglip-tutorial"
    assert [s["name"] for s in adapters["siglip-tutorial"]["inputs"]] == ["pixel_values", "input_ids"]
    assert adapters["siglip-tutorial"]["scoring"]["kind"] == "sigmoid"  # declared by the tutorial's adapter
    assert {"clip", "flava", "fusion", "siglip"} <= adapters.keys()  # beside the built-in siglip, no clash


def test_installed_plugin_reports_its_distribution(installed_example):
    result = mmship(installed_example, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert records["siglip-tutorial"]["source"] == "entrypoint"
    assert records["siglip-tutorial"]["distribution"] == "mmship-siglip"
    assert records["siglip-tutorial"]["provides"] == ["adapter:siglip-tutorial"]


def test_installed_plugin_can_be_disabled(installed_example):
    env = dict(installed_example, MMSHIP_DISABLE_PLUGINS="siglip-tutorial")
    result = mmship(env, "adapters", "--json")
    names = {a["name"] for a in json.loads(result.stdout)}
    assert "siglip-tutorial" not in names and "siglip" in names


SIGLIP_CONFIG = """\
compute: {{instance_type: cpu.medium, min_replicas: 1, max_replicas: 2}}
model:
  name: my-siglip
  adapter: siglip-tutorial
  inputs:
    - {{name: image, type: tensor, shape: {image_shape}}}
    - {{name: text, type: tensor, shape: [-1, 64]}}
  serving_params: {{precision: int8}}
"""


def test_mmship_check_uses_the_installed_adapter(installed_example, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(SIGLIP_CONFIG.format(image_shape="[-1, 3, 224, 224]"))
    result = mmship(installed_example, "check", str(good), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "siglip-tutorial" in result.stdout

    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(SIGLIP_CONFIG.format(image_shape="[-1, 3, 384, 384]"))
    result = mmship(installed_example, "check", str(wrong), cwd=tmp_path)
    assert result.returncode == 1
    shown = result.stdout + result.stderr
    assert "384" in shown and "224" in shown
