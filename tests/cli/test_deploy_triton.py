"""``mmship deploy BUNDLE --target triton --out REPO`` through the CLI, and the
``mmship_deploy`` hook: the built-in dispatch runs last, a plugin may take over."""

from __future__ import annotations

import yaml

import mmship
from mmship.core.cli.app import main
from mmship.core.manager import get_plugin_manager
from mmship.core.target import Deployment


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_writes_the_repository_then_refuses_to_overwrite(graphs_bundle, tmp_path, capsys):
    repo = tmp_path / "repo"
    code, out, err = run(capsys, "deploy", graphs_bundle, "--target", "triton", "--out", repo,
                         "--set", "storage_uri=s3://b/repo", "--set", "instance_count=2")
    assert code == 0, err
    assert "plan (triton)" in out and "tiny-clip-image input pixel_values" in out and "TYPE_FP32 dims [3, 8, 8]" in out
    assert "deployed tiny-clip: written" in out
    assert (repo / "tiny-clip-image" / "1" / "model.onnx").is_file()
    assert "count: 2" in (repo / "tiny-clip-text" / "config.pbtxt").read_text()
    manifest = yaml.safe_load((repo / "kserve-inferenceservice.yaml").read_text())
    assert manifest["spec"]["predictor"]["model"]["storageUri"] == "s3://b/repo"

    code, _, err = run(capsys, "deploy", graphs_bundle, "--target", "triton", "--out", repo)
    assert code == 1 and "already exists" in err and "--force" in err
    code, _, err = run(capsys, "deploy", graphs_bundle, "--target", "triton", "--out", repo, "--force")
    assert code == 0, err


def test_dry_run_writes_nothing(graphs_bundle, tmp_path, capsys):
    code, out, _ = run(capsys, "deploy", graphs_bundle, "--target", "triton", "--out", tmp_path / "repo", "--dry-run")
    assert code == 0 and "dry run" in out
    assert list(tmp_path.iterdir()) == []


def test_missing_out_and_hf_repo_option(graphs_bundle, capsys):
    code, _, err = run(capsys, "deploy", graphs_bundle, "--target", "triton")
    assert code == 1 and "--out REPO" in err
    code, _, err = run(capsys, "deploy", graphs_bundle, "--target", "triton", "--hf-repo", "a/b")
    assert code == 1 and "takes no --hf-repo" in err


class TakeOver:
    def __init__(self) -> None:
        self.calls = []

    @mmship.hookimpl
    def mmship_deploy(self, bundle, config, target, plan):
        self.calls.append((target.name, plan.target))
        return Deployment(target=target.name, name="audited", url="https://audit.example", status="recorded")


class Decline:
    @mmship.hookimpl
    def mmship_deploy(self, bundle, config, target, plan):
        return None


def test_a_plugin_can_take_over_deploy(graphs_bundle, tmp_path, capsys):
    plugin = TakeOver()
    get_plugin_manager().register(plugin, name="take-over")
    code, out, _ = run(capsys, "deploy", graphs_bundle, "--target", "triton", "--out", tmp_path / "repo")
    assert code == 0 and plugin.calls == [("triton", "triton")]
    assert "deployed audited: recorded" in out
    assert not (tmp_path / "repo").exists()  # the target's own deploy did not run


def test_declining_plugins_fall_through_to_the_target(graphs_bundle, tmp_path, capsys):
    get_plugin_manager().register(Decline(), name="decline")
    code, _, err = run(capsys, "deploy", graphs_bundle, "--target", "triton", "--out", tmp_path / "repo")
    assert code == 0, err
    assert (tmp_path / "repo" / "tiny-clip-text" / "config.pbtxt").is_file()


def test_targets_and_dispatch_are_builtin_plugins():
    manager = get_plugin_manager()
    assert {"friendli", "triton"} <= set(manager.targets().names())
    for name in ("target-friendli", "target-triton", "deploy-dispatch", "adapter-vlm"):
        assert manager.records[name].status == "loaded", manager.records[name].error
    impls = manager.hook.mmship_deploy.get_hookimpls()
    assert impls[0].plugin_name == "deploy-dispatch" and impls[0].trylast  # asked last


def test_deployments_list_works_for_the_local_target(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MMSHIP_HOME", str(tmp_path))
    code, out, err = run(capsys, "deployments", "list", "--target", "local")
    assert code == 0, err
    assert "deployments (0)" in out


SEED_CONFIG = """
runtime: {{framework: pytorch, version: 1.12}}
compute: {{instance_type: gpu.large, min_replicas: 1, max_replicas: 5}}
model:
  name: clip-multimodal
  path: ./clip_quantized
  inputs:
    - {{name: image, type: tensor, shape: [-1, 3, 224, 224]}}
    - {{name: text, type: tensor, shape: [-1, 77]}}
  serving_params: {{default_batch_size: 4, max_batch_size: 16, precision: {precision}, accelerator: tensorrt}}
autoscaling:
  metrics:
    - {{type: request_count, threshold: 8}}
    - {{type: cpu_utilization, threshold: 60%}}
  cooldown: 5m
target:
  name: {target}
{extra}"""


def write_config(tmp_path, precision="fp32", target="triton", extra=""):
    path = tmp_path / "deploy_config.yaml"
    path.write_text(SEED_CONFIG.format(precision=precision, target=target, extra=extra))
    return path


def test_seed_style_config_maps_to_triton_and_kserve(graphs_bundle, tmp_path, capsys):
    repo = tmp_path / "repo"
    config = write_config(tmp_path, extra=f"  out: {repo}\n  namespace: ml\n")
    code, out, err = run(capsys, "deploy", graphs_bundle, "--config", config)
    assert code == 0, err
    text = (repo / "tiny-clip-image" / "config.pbtxt").read_text()
    assert "max_batch_size: 16" in text and "KIND_GPU" in text and 'value: "FP32"' in text
    predictor = yaml.safe_load((repo / "kserve-inferenceservice.yaml").read_text())["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 5)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 8)
    assert "cpu_utilization is not used" in out


def test_a_precision_the_bundle_lacks_is_an_error_with_the_built_ones(graphs_bundle, tmp_path, capsys):
    config = write_config(tmp_path, precision="fp16")
    code, _, err = run(capsys, "deploy", graphs_bundle, "--config", config, "--out", tmp_path / "repo")
    assert code == 1 and "no fp16 graph" in err and "fp32, int8" in err


def test_config_for_another_target_is_not_applied(graphs_bundle, tmp_path, capsys):
    config = write_config(tmp_path, target="friendli", extra="  project_id: p1\n")
    code, _, err = run(capsys, "deploy", graphs_bundle, "--config", config, "--target", "triton", "--out", tmp_path / "r")
    assert code == 0, err
    assert "target section is for 'friendli'" in err


def test_a_token_in_the_config_file_is_refused_and_not_printed(graphs_bundle, tmp_path, capsys):
    config = write_config(tmp_path, target="friendli", extra="  api_token: flp_in_a_file_12345\n")
    code, out, err = run(capsys, "deploy", graphs_bundle, "--config", config)
    assert code == 1 and "FRIENDLI_TOKEN" in err
    assert "flp_in_a_file_12345" not in out + err
