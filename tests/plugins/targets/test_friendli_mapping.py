"""The friendli target's plan: deploy_config.yaml + bundle + settings -> the create request
(replica floor and billing, batch cap, instances, project, repo), and settings that keep
the token out of errors and away from unexpected hosts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mmship.core.bundle import Bundle
from mmship.core.config import DeployConfig
from mmship.core.errors import DeployError
from mmship.plugins.targets.friendli.mapping import (
    INSTANCE_OPTIONS,
    INSTANCE_TYPES,
    FriendliSettings,
)
from tests.plugins.targets.fixtures import PROJECT
from tests.plugins.targets.friendli_setup import CONFIG, CONFIG_DATA, no_config, target

pytestmark = pytest.mark.network


# --- mapping ---------------------------------------------------------------------------


def test_plan_maps_the_deploy_config(weights_bundle, monkeypatch):
    monkeypatch.setenv("FRIENDLI_PROJECT", PROJECT)
    plan = target().plan(Bundle.load(weights_bundle), CONFIG)
    body = plan.body
    assert body["projectId"] == PROJECT
    assert body["name"] == "vlm-chat"
    assert body["instanceOptionId"] == INSTANCE_OPTIONS[INSTANCE_TYPES["gpu.large"]][0]
    assert body["hfModelRepo"] == "org/tiny-llava" and body["hfModelRepoRevision"] == "main"
    assert body["autoscalingPolicy"] == {"minReplica": 1, "maxReplica": 5, "cooldownPeriod": 300}
    assert plan.settings["autoscalingPolicy.maxReplica"].startswith("5")
    assert "compute.max_replicas" in plan.settings["autoscalingPolicy.maxReplica"]
    assert "request load" in plan.settings["(not mapped) autoscaling.metrics"]
    assert "bill around the clock" in plan.settings["billing"]


def test_defaults_without_a_config(weights_bundle, monkeypatch):
    monkeypatch.setenv("FRIENDLI_PROJECT", PROJECT)
    bundle = Bundle.load(weights_bundle)
    body = target().plan(bundle, no_config(bundle)).body
    assert body["name"] == "tiny-llava"
    assert body["instanceOptionId"] == INSTANCE_OPTIONS["a100-80gb-x1"][0]
    assert body["autoscalingPolicy"] == {"minReplica": 0, "maxReplica": 1, "cooldownPeriod": 300}
    assert "max_batch_size" not in body["advanced"]


@pytest.mark.parametrize("compute, expected", [
    (None, 0),  # FriendliAI's own default: the endpoint sleeps when idle
    ({"instance_type": "gpu.small", "max_replicas": 3}, 0),
    ({"min_replicas": 0, "max_replicas": 3}, 0),
    ({"min_replicas": 2, "max_replicas": 3}, 2),
])
def test_min_replicas_follows_friendlis_default_unless_set(weights_bundle, compute, expected):
    config = DeployConfig.model_validate({"model": {"name": "x"}, **({"compute": compute} if compute else {})})
    plan = target(project_id="p").plan(Bundle.load(weights_bundle), config)
    assert plan.body["autoscalingPolicy"]["minReplica"] == expected
    billing = plan.settings["billing"]
    if expected:
        assert "bill around the clock" in billing and "min_replicas: 0" in billing
    else:
        assert "sleeps" in billing and "wakes it" in billing
    if "min_replicas" not in (compute or {}):
        assert "FriendliAI's default" in plan.settings["autoscalingPolicy.minReplica"]


def test_min_replicas_written_in_a_loaded_config_is_honoured(weights_bundle, tmp_path):
    from mmship.core.config import load_config

    path = tmp_path / "deploy_config.yaml"
    path.write_text(f"model: {{name: x, path: {weights_bundle}}}\ncompute: {{instance_type: gpu.large, min_replicas: 1}}\n")
    body = target(project_id="p").plan(Bundle.load(weights_bundle), load_config(path)).body
    assert body["autoscalingPolicy"]["minReplica"] == 1
    path.write_text(f"model: {{name: x, path: {weights_bundle}}}\ncompute: {{instance_type: gpu.large}}\n")
    body = target(project_id="p").plan(Bundle.load(weights_bundle), load_config(path)).body
    assert body["autoscalingPolicy"]["minReplica"] == 0


def test_max_batch_size_is_sent_only_when_set_for_friendli(weights_bundle):
    plan = target(project_id="p").plan(Bundle.load(weights_bundle), CONFIG)
    assert "max_batch_size" not in plan.body["advanced"]  # not the ONNX serving batch (8)
    assert "continuously" in plan.settings["(not mapped) serving_params.max_batch_size"]
    plan = target(project_id="p", max_batch_size=256).plan(Bundle.load(weights_bundle), CONFIG)
    assert plan.body["advanced"]["max_batch_size"] == 256
    assert "target.max_batch_size" in plan.settings["advanced.max_batch_size"]


def test_instance_option_id_overrides_the_table(weights_bundle):
    body = target(project_id="p", instance_option_id="RAWID").plan(Bundle.load(weights_bundle), CONFIG).body
    assert body["instanceOptionId"] == "RAWID"


def test_cpu_instances_are_refused_with_the_choices(weights_bundle):
    config = DeployConfig.model_validate({**CONFIG_DATA, "compute": {"instance_type": "cpu.medium", "min_replicas": 1, "max_replicas": 1}})
    with pytest.raises(DeployError) as info:
        target(project_id="p").plan(Bundle.load(weights_bundle), config)
    assert "GPUs only" in info.value.message
    assert "gpu.small" in info.value.hint and "instance_option_id" in info.value.hint


def test_more_than_ten_replicas_is_refused(weights_bundle):
    config = DeployConfig.model_validate({**CONFIG_DATA, "compute": {"instance_type": "gpu.small", "min_replicas": 1, "max_replicas": 12}})
    with pytest.raises(DeployError, match="at most 10"):
        target(project_id="p").plan(Bundle.load(weights_bundle), config)


def test_project_is_required(weights_bundle):
    with pytest.raises(DeployError) as info:
        bundle = Bundle.load(weights_bundle)
        target().plan(bundle, no_config(bundle))
    assert "FRIENDLI_PROJECT" in info.value.hint and "project_id" in info.value.hint


def test_local_bundle_needs_hf_repo(local_weights_bundle):
    bundle = Bundle.load(local_weights_bundle)
    with pytest.raises(DeployError) as info:
        target(project_id="p").plan(bundle, no_config(bundle))
    assert "--hf-repo" in info.value.hint and "huggingface-cli upload" in info.value.hint
    body = target(project_id="p", hf_repo="me/llava", hf_revision="v1").plan(bundle, no_config(bundle)).body
    assert body["hfModelRepo"] == "me/llava" and body["hfModelRepoRevision"] == "v1"


def test_token_is_not_a_setting_and_is_not_echoed():
    with pytest.raises(ValidationError) as info:
        FriendliSettings.model_validate({"token": "flp_never_here"})
    assert "FRIENDLI_TOKEN" in str(info.value)
    errors = info.value.errors(include_input=False)
    assert "flp_never_here" not in str(errors)


@pytest.mark.parametrize("settings", [
    {"token": "flp_Qz7secret"},
    {"api_token": "flp_Qz7secret"},
    {"retries": "flp_Qz7secret"},
    {"base_url": "flp_Qz7secret"},
    {"project_id": ["flp_Qz7secret"]},
    {"team": "flp_Qz7secret\nX-Evil: 1"},
    {"flp_Qz7secret": 1},
])
def test_str_of_a_settings_error_never_contains_the_token(settings, monkeypatch):
    monkeypatch.setenv("FRIENDLI_TOKEN", "flp_Qz7secret")
    with pytest.raises(ValidationError) as info:
        FriendliSettings.model_validate(settings)
    for text in (str(info.value), repr(info.value), str(info.value.errors(include_input=False))):
        assert "Qz7secret" not in text


@pytest.mark.parametrize("url", ["http://api.friendli.example", "http://192.168.1.5:8000", "https://me:pw@api.friendli.ai"])
def test_settings_refuse_a_base_url_the_token_must_not_go_to(url):
    with pytest.raises(ValidationError) as info:
        FriendliSettings(base_url=url)
    assert "base_url" in str(info.value)


def test_the_plan_warns_when_the_token_goes_to_another_host(weights_bundle):
    plan = target(project_id="p", base_url="https://gateway.example.com").plan(Bundle.load(weights_bundle), CONFIG)
    assert "WARNING: gateway.example.com is not FriendliAI's API host" in plan.settings["base_url"]
    plan = target(project_id="p").plan(Bundle.load(weights_bundle), CONFIG)
    assert plan.settings["base_url"] == "https://api.friendli.ai"
