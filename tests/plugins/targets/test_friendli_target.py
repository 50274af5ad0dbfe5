"""The friendli target: mapping, preflight, deploy/poll/fail against the fake API, token secrecy."""

from __future__ import annotations

import io
import logging

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
from mmship.plugins.targets.friendli.target import FriendliTarget
from mmship.plugins.targets.friendli.watch import ERROR_FIXES, wait_until_running
from tests.plugins.targets.fixtures import PROJECT

pytestmark = pytest.mark.network

CONFIG_DATA = {
    "runtime": {"framework": "pytorch", "version": "1.12"},
    "compute": {"instance_type": "gpu.large", "min_replicas": 1, "max_replicas": 5},
    "model": {"name": "vlm-chat", "serving_params": {"default_batch_size": 4, "max_batch_size": 8}},
    "autoscaling": {"metrics": [{"type": "cpu_utilization", "threshold": "60%"}], "cooldown": 300},
}
CONFIG = DeployConfig.model_validate(CONFIG_DATA)


def no_config(bundle: Bundle) -> DeployConfig:
    """What `mmship deploy` uses without --config."""
    return DeployConfig.defaults(bundle.manifest.name)


def target(fake=None, **settings):
    if fake is not None:
        settings.setdefault("base_url", fake.url)
    settings.setdefault("poll_interval_s", 0.001)
    settings.setdefault("timeout_s", 10)
    settings.setdefault("request_timeout_s", 5)
    return FriendliTarget(FriendliSettings(**settings))


def png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


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
    assert body["advanced"]["max_batch_size"] == 8
    assert plan.settings["autoscalingPolicy.maxReplica"].startswith("5")
    assert "compute.max_replicas" in plan.settings["autoscalingPolicy.maxReplica"]
    assert "request load" in plan.settings["(not mapped) autoscaling.metrics"]


def test_defaults_without_a_config(weights_bundle, monkeypatch):
    monkeypatch.setenv("FRIENDLI_PROJECT", PROJECT)
    bundle = Bundle.load(weights_bundle)
    body = target().plan(bundle, no_config(bundle)).body
    assert body["name"] == "tiny-llava"
    assert body["instanceOptionId"] == INSTANCE_OPTIONS["a100-80gb-x1"][0]
    assert body["autoscalingPolicy"] == {"minReplica": 1, "maxReplica": 1, "cooldownPeriod": 300}
    assert body["advanced"]["max_batch_size"] == 16  # the bundle's serving params


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


# --- preflight -------------------------------------------------------------------------


def test_graphs_bundle_is_refused_before_any_http_call(graphs_bundle, friendli_env):
    with pytest.raises(DeployError) as info:
        target(friendli_env).plan(Bundle.load(graphs_bundle), CONFIG)
    assert "image embeddings" in info.value.message
    for name in ("local", "ray", "triton"):
        assert f"--target {name}" in info.value.hint
    assert "--force" in info.value.hint
    assert friendli_env.requests == []


def test_force_lets_a_graphs_bundle_through(graphs_bundle, friendli_env):
    plan = target(friendli_env, force=True).plan(Bundle.load(graphs_bundle), CONFIG)
    assert plan.body["hfModelRepo"] == "openai/clip-vit-base-patch32"


# --- deploy ----------------------------------------------------------------------------


def test_deploy_creates_finds_and_polls_until_running(weights_bundle, friendli_env, capsys):
    t = target(friendli_env)
    bundle = Bundle.load(weights_bundle)
    deployment = t.deploy(bundle, CONFIG, t.plan(bundle, CONFIG))
    assert deployment.status == "RUNNING"
    assert deployment.name == "vlm-chat"
    endpoint_id = deployment.details["endpoint_id"]
    assert endpoint_id in friendli_env.endpoints
    assert deployment.url == f"{friendli_env.url}/dedicated/v1"
    out = capsys.readouterr().out
    for phase in ("DOWNLOADING_MODEL", "ENGINE_INITIALIZING", "RUNNING"):
        assert phase in out
    created = next(r for r in friendli_env.requests if r["method"] == "POST")
    assert '"maxReplica":5' in created["body"].replace(" ", "")
    polls = [r for r in friendli_env.requests if r["path"].endswith("/status")]
    assert len(polls) == 3


def test_existing_name_is_refused(weights_bundle, friendli_env):
    existing = friendli_env.add_endpoint(PROJECT, "vlm-chat")
    t = target(friendli_env)
    bundle = Bundle.load(weights_bundle)
    with pytest.raises(DeployError) as info:
        t.deploy(bundle, CONFIG, t.plan(bundle, CONFIG))
    assert existing in info.value.message and "endpoint_name" in info.value.hint
    assert not any(r["method"] == "POST" for r in friendli_env.requests)


@pytest.mark.parametrize("repo, code, fix", [
    ("private/llava", "WORKLOAD_INIT_CANNOT_ACCESS_REPO_ERROR", "integrate your HF token in Friendli Suite"),
    ("oom/llava", "INFERENCE_ENGINE_MEMORY_ERROR", "larger instance"),
])
def test_failed_endpoint_is_reported_with_code_and_fix(weights_bundle, friendli_env, repo, code, fix):
    t = target(friendli_env, hf_repo=repo)
    bundle = Bundle.load(weights_bundle)
    with pytest.raises(DeployError) as info:
        t.deploy(bundle, CONFIG, t.plan(bundle, CONFIG))
    assert code in info.value.message
    assert fix in info.value.hint and ERROR_FIXES[code] in info.value.hint


def test_missing_token_fails_before_any_http_call(weights_bundle, fake, monkeypatch):
    monkeypatch.setenv("FRIENDLI_PROJECT", PROJECT)
    t = target(fake)
    bundle = Bundle.load(weights_bundle)
    plan = t.plan(bundle, CONFIG)  # planning needs no token
    with pytest.raises(DeployError, match="FRIENDLI_TOKEN"):
        t.deploy(bundle, CONFIG, plan)
    assert fake.requests == []


def test_wait_times_out_with_the_last_status():
    class Stuck:
        def get_status(self, endpoint_id):
            return {"status": "INITIALIZING", "phase": "DOWNLOADING_MODEL"}

    now = [0.0]
    with pytest.raises(DeployError) as info:
        wait_until_running(Stuck(), "e1", timeout_s=60, interval_s=10, clock=lambda: now[0],
                           sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert "not RUNNING after 60 s" in info.value.message
    assert "DOWNLOADING_MODEL" in info.value.message and "timeout_s" in info.value.hint


def test_token_never_reaches_output_or_logs(weights_bundle, friendli_env, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    t = target(friendli_env, hf_repo="private/llava")
    bundle = Bundle.load(weights_bundle)
    with pytest.raises(DeployError) as info:
        t.deploy(bundle, CONFIG, t.plan(bundle, CONFIG))
    ok = target(friendli_env, endpoint_name="second")
    ok.deploy(bundle, CONFIG, ok.plan(bundle, CONFIG))
    captured = capsys.readouterr()
    assert any("mmship.friendli" == r.name for r in caplog.records)  # requests were logged...
    for text in (caplog.text, captured.out, captured.err, str(info.value)):
        assert friendli_env.token not in text  # ...but never the token


# --- deployments -----------------------------------------------------------------------


def test_list_status_sleep_wake_delete(friendli_env):
    first = friendli_env.add_endpoint(PROJECT, "alpha")
    friendli_env.add_endpoint(PROJECT, "beta", status="SLEEPING")
    friendli_env.add_endpoint("other-project", "gamma")
    t = target(friendli_env)
    listed = t.list_deployments()
    assert [d.name for d in listed] == ["beta", "alpha"]  # newest first, this project only
    assert t.status("alpha").details["endpoint_id"] == first
    assert t.status(first).name == "alpha"
    assert t.sleep("alpha").status == "SLEEPING"
    assert t.wake("alpha").status == "AWAKING"
    assert t.status("alpha").status == "RUNNING"
    assert t.delete("alpha").status == "deleted"
    assert first not in friendli_env.endpoints
    with pytest.raises(DeployError, match="no FriendliAI endpoint"):
        t.status("alpha")


def test_invoke_chat_with_an_image_and_embeddings(friendli_env):
    friendli_env.add_endpoint(PROJECT, "vlm")
    t = target(friendli_env)
    result = t.invoke("vlm", texts=["what is this?"], images=[png()])
    assert result.text == "I see 1 image(s) and read: what is this?"
    chat = next(r for r in friendli_env.requests if r["path"] == "/dedicated/v1/chat/completions")
    assert '"url":"data:image/png;base64,' in chat["body"].replace(" ", "")
    vectors = t.invoke("vlm", texts=["a", "bcd"], images=[], mode="embeddings").embeddings
    assert [len(v) for v in vectors] == [8, 8] and vectors[1][0] == 3.0


def test_invoke_refuses_raw_pixels_and_images_for_embeddings(friendli_env):
    friendli_env.add_endpoint(PROJECT, "vlm")
    t = target(friendli_env)
    with pytest.raises(Exception, match="not an encoded JPEG"):
        t.invoke("vlm", texts=["x"], images=[bytes(48)])
    with pytest.raises(Exception, match="text only"):
        t.invoke("vlm", texts=["x"], images=[png()], mode="embeddings")


def test_live_view_on_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr("mmship.core.cli.console.is_interactive", lambda: True)
    from mmship.plugins.targets.friendli.watch import StatusView

    states = iter([{"status": "INITIALIZING", "phase": "DOWNLOADING_MODEL"}, {"status": "RUNNING"}])

    class Client:
        def get_status(self, endpoint_id):
            return next(states)

    with StatusView("endpoint e1") as view:
        assert view.live is not None
        wait_until_running(Client(), "e1", timeout_s=5, interval_s=0, view=view)
    assert "endpoint e1: RUNNING" in capsys.readouterr().out
