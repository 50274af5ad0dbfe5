"""Every target serves the same params for the same bundle and config: the bundle's
serving params with only the fields the config sets on top (issue 10: ``local`` and
``ray`` used to take the config's ``serving_params`` wholesale, so a config setting only
``max_batch_size`` served fp32 locally and int8 on Triton)."""

from __future__ import annotations

import pytest

from mmship.core.bundle import Bundle
from mmship.core.config import DeployConfig
from mmship.plugins.targets.friendli.mapping import FriendliSettings
from mmship.plugins.targets.friendli.target import FriendliTarget
from mmship.plugins.targets.local import LocalTarget
from mmship.plugins.targets.ray.target import RayTarget
from mmship.plugins.targets.triton.target import TritonSettings, TritonTarget


def served(target: str, bundle: Bundle, config: DeployConfig, tmp_path) -> dict[str, object]:
    """(precision, max_batch_size) as each target's plan says it will serve them."""
    if target == "local":
        command = LocalTarget().plan(bundle, config).settings["command"].split()
        return {"precision": command[command.index("--precision") + 1],
                "max_batch_size": int(command[command.index("--max-batch-size") + 1])}
    if target == "ray":
        settings = RayTarget().plan(bundle, config).settings
        return {"precision": settings["serving.precision"], "max_batch_size": settings["serving.max_batch_size"]}
    if target == "triton":
        models = TritonTarget(TritonSettings(out=tmp_path / "repo")).models(bundle, config)
        (precision,) = {m.source.name.split(".")[-2] for m in models}  # graphs/<graph>.<precision>.onnx copied
        return {"precision": precision, "max_batch_size": models[0].max_batch_size}
    # FriendliAI's engine chooses both: the plan shows the merged params as not mapped, and
    # the ONNX serving batch is never sent as FriendliAI's batch cap (issue 8)
    plan = FriendliTarget(FriendliSettings(project_id="p", force=True)).plan(bundle, config)
    assert "max_batch_size" not in plan.body["advanced"]
    precision = plan.settings["(not mapped) serving_params.precision/accelerator"].split("/")[0]
    batch = plan.settings["(not mapped) serving_params.max_batch_size"].split()[0]
    return {"precision": precision, "max_batch_size": int(batch)}


@pytest.mark.parametrize("target", ["local", "ray", "triton", "friendli"])
def test_a_config_setting_only_max_batch_size_keeps_the_bundles_precision(target, graphs_bundle, tmp_path):
    bundle = Bundle.load(graphs_bundle)
    assert bundle.manifest.serving_params.precision == "int8"  # the bundle serves int8
    config = DeployConfig.model_validate({"model": {"name": "clip", "serving_params": {"max_batch_size": 8}}})
    assert served(target, bundle, config, tmp_path) == {"precision": "int8", "max_batch_size": 8}


@pytest.mark.parametrize("target", ["local", "ray", "triton", "friendli"])
def test_fields_the_config_sets_win_and_no_config_means_the_bundles(target, graphs_bundle, tmp_path):
    bundle = Bundle.load(graphs_bundle)
    config = DeployConfig.model_validate({"model": {"name": "clip", "serving_params": {"precision": "fp32"}}})
    assert served(target, bundle, config, tmp_path) == {"precision": "fp32", "max_batch_size": 32}
    assert served(target, bundle, DeployConfig.defaults("clip"), tmp_path) == {"precision": "int8", "max_batch_size": 32}


def test_local_target_passes_the_request_limits_and_runtime_to_the_server(tiny_clip_bundle):
    """A local deploy serves with the limits its config sets, not the server's defaults."""
    from mmship.plugins.targets.local import LocalSettings

    bundle = Bundle.load(tiny_clip_bundle)
    target = LocalTarget(LocalSettings(latency_budget_ms=250, max_body_mb=4, max_items=8, runtime="onnxruntime",
                                       jpeg_scaled_decode=True))
    command = target.plan(bundle, DeployConfig.defaults("local")).settings["command"].split()
    given = {flag: command[command.index(flag) + 1] for flag in ("--latency-budget-ms", "--max-body-mb", "--max-items", "--runtime")}
    assert given == {"--latency-budget-ms": "250.0", "--max-body-mb": "4.0", "--max-items": "8", "--runtime": "onnxruntime"}
    assert "--jpeg-scaled-decode" in command
    default = LocalTarget().plan(bundle, DeployConfig.defaults("local")).settings["command"].split()
    assert "--runtime" not in default and default[default.index("--max-items") + 1] == "256"
    assert "--jpeg-scaled-decode" not in default and "--streams" not in default
    streams = LocalTarget(LocalSettings(streams=2)).plan(bundle, DeployConfig.defaults("local")).settings["command"].split()
    assert streams[streams.index("--streams") + 1] == "2"
