"""``mmship init`` and ``mmship check``: files written, table, exit codes 0/1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmship.core.cli.app import main
from mmship.core.config import load_config
from mmship.core.manager import reset_plugin_manager
from tests.helpers.config_models import (
    SEED_YAML,
    register_fixture_plugin,
    write_fake_model,
)

FAKE_SEED = SEED_YAML.replace("  path: ./clip_quantized", "  path: ./clip_quantized\n  adapter: fakeclip")


@pytest.fixture(autouse=True)
def setup(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich must not wrap the messages
    reset_plugin_manager()
    register_fixture_plugin()
    yield
    reset_plugin_manager()


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deploy_config.yaml"
    path.write_text(text)
    return path


# --- init ----------------------------------------------------------------------------------------


def test_init_writes_a_commented_file_that_validates(tmp_path: Path, capsys):
    path = tmp_path / "deploy_config.yaml"
    code, out, err = run(capsys, "init", path, "--adapter", "fakeclip")
    assert code == 0, err
    assert "wrote" in out and "mmship check" in out
    text = path.read_text()
    for section in ("runtime:", "compute:", "model:", "serving_params:", "autoscaling:", "target:"):
        assert f"\n{section}" in text or f"\n  {section}" in text
    assert text.count("#") > 20  # explained, key by key
    config = load_config(path)
    assert config.model.adapter == "fakeclip"
    assert [(i.name, i.shape) for i in config.model.inputs] == [("image", [-1, 3, 224, 224]), ("text", [-1, 77])]
    sp = config.model.serving_params  # the adapter's defaults
    assert (sp.default_batch_size, sp.max_batch_size, sp.max_delay_ms) == (8, 16, 4)
    assert [m.threshold_text() for m in config.autoscaling.metrics] == ["60%", "70%"]
    assert not list(tmp_path.glob(".*.tmp"))  # the temp file was renamed away
    code, _, err = run(capsys, "check", path)
    assert code == 0, err


def test_init_refuses_to_overwrite_without_force(tmp_path: Path, capsys):
    path = tmp_path / "deploy_config.yaml"
    path.write_text("keep me\n")
    code, _, err = run(capsys, "init", path, "--adapter", "fakeclip")
    assert code == 1
    assert "already exists" in err and "--force" in err
    assert path.read_text() == "keep me\n"
    code, _, err = run(capsys, "init", path, "--adapter", "fakeclip", "--force")
    assert code == 0, err
    load_config(path)


def test_init_from_a_model_folder_detects_the_adapter(tmp_path: Path, capsys):
    model = write_fake_model(tmp_path / "my-model", image_size=336, max_text=64)
    path = tmp_path / "cfg.yaml"
    code, out, err = run(capsys, "init", path, "--model", model)
    assert code == 0, err
    assert "fakeclip" in out
    config = load_config(path)
    assert config.model.path == str(model) and config.model.name == "my-model"
    assert [i.shape for i in config.model.inputs] == [[-1, 3, 336, 336], [-1, 64]]
    code, out, err = run(capsys, "check", path)
    assert code == 0, out + err


def test_init_with_a_target_and_its_settings(tmp_path: Path, capsys):
    path = tmp_path / "cfg.yaml"
    code, _, err = run(capsys, "init", path, "--adapter", "fakeclip", "--target", "fakecloud")
    assert code == 0, err
    text = path.read_text()
    assert "region: ..." in text  # a required setting, commented out with the section
    load_config(path)  # still valid


def test_init_unknown_adapter_suggests(tmp_path: Path, capsys):
    code, _, err = run(capsys, "init", tmp_path / "c.yaml", "--adapter", "fakeclp")
    assert code == 1 and "did you mean 'fakeclip'" in err
    assert not (tmp_path / "c.yaml").exists()


def test_init_needs_an_adapter_or_a_model(tmp_path: Path, capsys):
    code, _, err = run(capsys, "init", tmp_path / "c.yaml")
    assert code == 1 and "--adapter" in err and "fakeclip" in err


# --- check ---------------------------------------------------------------------------------------


def test_check_seed_exits_0_with_a_table(tmp_path: Path, capsys):
    code, out, err = run(capsys, "check", write(tmp_path, FAKE_SEED))
    assert code == 0, out + err
    for name in ("config", "replicas", "precision", "accelerator", "input image", "input text", "dimensions"):
        assert name in out
    assert "0 error(s)" in out


def test_check_channels_last_exits_1_naming_input_expected_got_and_fix(tmp_path: Path, capsys):
    code, out, _ = run(capsys, "check", write(tmp_path, FAKE_SEED.replace("[-1, 3, 224, 224]", "[1, 224, 224, 3]")))
    assert code == 1
    assert "model.inputs[0].shape (line 15)" in out
    assert "'image'" in out and "expected [-1, 3, 224, 224]" in out and "got [1, 224, 224, 3]" in out
    assert "transpose" in out and "NCHW" in out
    assert "1 error(s)" in out


def test_check_misspelt_key_exits_1(tmp_path: Path, capsys):
    code, out, _ = run(capsys, "check", write(tmp_path, FAKE_SEED.replace("    precision: fp16", "    precison: fp16")))
    assert code == 1
    assert "model.serving_params.precison (line 21): unknown key; did you mean 'precision'?" in out


def test_check_projection_mismatch_exits_1(tmp_path: Path, capsys):
    model = write_fake_model(tmp_path / "m", image_proj=512, text_proj=256)
    code, out, _ = run(capsys, "check", write(tmp_path, FAKE_SEED), "--model", model)
    assert code == 1
    assert "512" in out and "256" in out and "projection_dim" in out


def test_check_min_above_max_replicas_exits_1(tmp_path: Path, capsys):
    code, out, _ = run(capsys, "check", write(tmp_path, FAKE_SEED.replace("min_replicas: 1", "min_replicas: 9")))
    assert code == 1 and "min_replicas (9) is larger than max_replicas (5)" in out


def test_check_warnings_only_exit_0(tmp_path: Path, capsys):
    text = FAKE_SEED.replace("accelerator: tensorrt", "accelerator: cpu").replace("gpu.large", "cpu.large")
    code, out, _ = run(capsys, "check", write(tmp_path, text))
    assert code == 0
    assert "warn" in out and "not faster" in out


def test_check_json(tmp_path: Path, capsys):
    code, out, _ = run(capsys, "check", write(tmp_path, FAKE_SEED.replace("[-1, 77]", "[-1, 100]")), "--json")
    assert code == 1
    payload = json.loads(out)
    errors = [r for r in payload["results"] if r["status"] == "error"]
    assert len(errors) == 1 and errors[0]["name"] == "input text" and "at most 77" in errors[0]["message"]
    assert payload["counts"]["error"] == 1


def test_check_missing_file_is_one_paragraph_exit_1(tmp_path: Path, capsys):
    code, out, err = run(capsys, "check", tmp_path / "nope.yaml")
    assert code == 1
    assert "does not exist" in err and "mmship init" in err and out == ""
