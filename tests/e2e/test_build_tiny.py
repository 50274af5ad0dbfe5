"""`mmship build` end to end on tiny CLIP, FLAVA and fusion folders, and its failures."""

from __future__ import annotations

import json
import shutil

import pytest

from mmship.core.bundle import Bundle
from mmship.core.cli.app import main


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")


@pytest.mark.parametrize(
    ("fixture", "graphs"),
    [("tiny_clip_dir", {"image", "text"}), ("tiny_flava_dir", {"image", "text", "multimodal"}), ("tiny_fusion_dir", {"fused"})],
)
def test_build_and_inspect(request, tmp_path, capsys, fixture, graphs):
    model_dir = request.getfixturevalue(fixture)
    out = tmp_path / "bundle"
    code = main(["build", str(model_dir), "--out", str(out), "-p", "fp32", "-p", "fp16", "-p", "int8", "--optimize", "none"])
    assert code == 0, capsys.readouterr().err
    bundle = Bundle.load(out)
    manifest = bundle.manifest
    assert {g.name for g in manifest.graphs} == graphs
    assert {(g.name, g.precision) for g in manifest.graphs} == {(n, p) for n in graphs for p in ("fp32", "fp16", "int8")}
    assert manifest.serving_params.precision == "int8"
    assert manifest.preprocess.image is not None and manifest.preprocess.text is not None
    assert (out / "processor" / "tokenizer.json").exists() and (out / "hf" / "config.json").exists()
    onnxruntime = {g.precision for g in manifest.graphs if g.runtime == "onnxruntime"}
    assert onnxruntime == {"fp32", "fp16", "int8"}
    # OpenVINO's variants (fp32 and int8: it builds no fp16) are validated alongside, keyed runtime-precision
    assert set(bundle.report["accuracy"]) == onnxruntime | {
        f"openvino-{g.precision}" for g in manifest.graphs if g.runtime == "openvino"
    } | set(bundle.report["dropped"])
    for name in graphs:
        assert bundle.report["parity"][name]["min_cosine"] > 0.9999
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "checksums verified" in shown and "accuracy vs fp32" in shown and "export parity" in shown
    assert main(["inspect", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["manifest"]["adapter"] == manifest.adapter


def test_build_progress_lists_every_stage(tiny_clip_dir, tmp_path, capsys):
    assert main(["build", str(tiny_clip_dir), "--out", str(tmp_path / "b"), "--optimize", "none"]) == 0
    out = capsys.readouterr().out
    for stage in ("load", "align", "export", "quantize int8", "optimize", "validate", "write", "total"):
        assert stage in out


def test_fusion_head_mismatch_fails_naming_both_numbers(tiny_fusion_dir, tmp_path, capsys):
    broken = tmp_path / "fusion"
    shutil.copytree(tiny_fusion_dir, broken)
    config = json.loads((broken / "config.json").read_text())
    expected = config["text_config"]["hidden_size"] + config["vision_config"]["hidden_size"]
    config["fusion_input_dim"] = expected + 8
    (broken / "config.json").write_text(json.dumps(config))
    out = tmp_path / "bundle"
    assert main(["build", str(broken), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert str(expected) in err and str(expected + 8) in err and "fusion_input_dim" in err
    assert not out.exists()


def test_failed_build_leaves_nothing(tiny_clip_dir, tmp_path, capsys):
    out = tmp_path / "bundle"
    assert main(["build", str(tiny_clip_dir), "--out", str(out), "--max-accuracy-loss", "0%", "-p", "int8"]) == 1
    assert "accuracy" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_pickle_only_checkpoint_is_refused(tiny_clip_dir, tmp_path, capsys):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_clip_dir, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    assert main(["build", str(folder), "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert "safetensors only" in err and "pytorch_model.bin" in err


def test_unreachable_hub_id_says_how_to_use_a_local_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["build", "openai/clip-vit-base-patch32", "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert "openai/clip-vit-base-patch32" in err and "save_pretrained" in err


def test_existing_bundle_needs_force(tiny_clip_dir, tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["build", str(tiny_clip_dir), "--out", str(out), "--optimize", "none", "-p", "fp32"]) == 0
    assert main(["build", str(tiny_clip_dir), "--out", str(out), "-p", "fp32"]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["build", str(tiny_clip_dir), "--out", str(out), "--force", "--optimize", "none", "-p", "fp32"]) == 0
