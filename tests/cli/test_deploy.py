"""``mmship deploy`` / ``mmship deployments`` against the fake FriendliAI API on 127.0.0.1:
the whole deploy -> status -> invoke -> sleep/wake -> delete cycle, errors and exit codes,
and the token kept out of every output and log."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from mmship.core.cli.app import main
from tests.plugins.targets.fixtures import PROJECT

pytestmark = pytest.mark.network


def fast(fake) -> list[str]:
    """Settings that point at the fake API and poll without waiting."""
    return ["--set", f"base_url={fake.url}", "--set", "poll_interval_s=0.001", "--set", "timeout_s=10",
            "--set", "request_timeout_s=5"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def image_file(tmp_path: Path) -> Path:
    from PIL import Image

    path = tmp_path / "cat.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 10)).save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue())
    return path


def test_full_cycle_deploy_status_invoke_sleep_wake_delete(weights_bundle, friendli_env, capsys, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    fake = friendli_env
    outputs = []

    code, out, err = run(capsys, "deploy", weights_bundle, "--target", "friendli", "--set", "endpoint_name=vlm-chat", *fast(fake))
    outputs += [out, err]
    assert code == 0, err
    assert "plan (friendli)" in out and "hfModelRepo" in out and "org/tiny-llava" in out
    assert "autoscalingPolicy.maxReplica" in out
    for phase in ("DOWNLOADING_MODEL", "ENGINE_INITIALIZING"):
        assert phase in out
    assert "deployed vlm-chat: RUNNING" in out
    (endpoint_id,) = fake.endpoints

    code, out, err = run(capsys, "deployments", "status", "vlm-chat", "--target", "friendli", *fast(fake))
    outputs += [out, err]
    assert code == 0 and "RUNNING" in out and endpoint_id in out

    code, out, err = run(capsys, "deployments", "invoke", "vlm-chat", "--target", "friendli", "--image", image_file(tmp_path),
                         "--text", "what is in the picture?", *fast(fake))
    outputs += [out, err]
    assert code == 0, err
    assert "I see 1 image(s) and read: what is in the picture?" in out
    chat = [r for r in fake.requests if r["path"] == "/dedicated/v1/chat/completions"][-1]
    assert "data:image/jpeg;base64," in chat["body"] and f'"model":"{endpoint_id}"' in chat["body"].replace(" ", "")

    code, out, err = run(capsys, "deployments", "invoke", endpoint_id, "--target", "friendli", "--mode", "embeddings",
                         "--text", "hello", *fast(fake))
    outputs += [out, err]
    assert code == 0 and "embedding 0: dim 8" in out

    code, out, err = run(capsys, "deployments", "list", "--target", "friendli", *fast(fake))
    outputs += [out, err]
    assert code == 0 and "vlm-chat" in out and "deployments (1)" in out

    for op, status in (("sleep", "SLEEPING"), ("wake", "AWAKING")):
        code, out, err = run(capsys, "deployments", op, "vlm-chat", "--target", "friendli", *fast(fake))
        outputs += [out, err]
        assert code == 0 and status in out

    code, out, err = run(capsys, "deployments", "delete", "vlm-chat", "--target", "friendli", *fast(fake))
    outputs += [out, err]
    assert code == 0 and "deleted" in out and fake.endpoints[endpoint_id]["status"] == "TERMINATING"

    code, out, err = run(capsys, "deployments", "status", "vlm-chat", "--target", "friendli", *fast(fake))
    outputs += [out, err]
    assert code == 0 and "TERMINATING" in out  # FriendliAI takes a while to delete

    for _ in range(fake.terminating_reads):
        code, out, err = run(capsys, "deployments", "status", "vlm-chat", "--target", "friendli", *fast(fake))
        outputs += [out, err]
    assert code == 1 and "no FriendliAI endpoint" in err and "Fix:" in err and fake.endpoints == {}

    for text in (*outputs, caplog.text):
        assert fake.token not in text


def test_dry_run_prints_the_plan_and_calls_nothing(weights_bundle, friendli_env, capsys):
    code, out, _ = run(capsys, "deploy", weights_bundle, "--target", "friendli", "--dry-run", *fast(friendli_env))
    assert code == 0
    assert "dry run" in out and "instanceOptionId" in out and PROJECT in out
    assert friendli_env.requests == []


def test_clip_style_bundle_is_refused_unless_forced(graphs_bundle, friendli_env, capsys):
    code, _, err = run(capsys, "deploy", graphs_bundle, "--target", "friendli", *fast(friendli_env))
    assert code == 1
    assert "FriendliAI cannot serve" in err and "--target triton" in err and "--target local" in err
    assert friendli_env.requests == []
    code, out, err = run(capsys, "deploy", graphs_bundle, "--target", "friendli", "--force", *fast(friendli_env))
    assert code == 0, err and "RUNNING" in out


def test_failed_endpoint_exits_1_with_code_and_fix(weights_bundle, friendli_env, capsys):
    code, out, err = run(capsys, "deploy", weights_bundle, "--target", "friendli", "--hf-repo", "private/llava", *fast(friendli_env))
    assert code == 1
    assert "WORKLOAD_INIT_CANNOT_ACCESS_REPO_ERROR" in err
    assert "integrate your HF token in Friendli Suite" in err
    assert friendli_env.token not in out + err


def test_missing_token_exits_1_with_fix(weights_bundle, fake, capsys, monkeypatch):
    monkeypatch.setenv("FRIENDLI_PROJECT", PROJECT)
    code, _, err = run(capsys, "deploy", weights_bundle, "--target", "friendli", *fast(fake))
    assert code == 1 and "FRIENDLI_TOKEN" in err and "export FRIENDLI_TOKEN" in err
    assert fake.requests == []


def test_wrong_token_exits_1_and_is_redacted(weights_bundle, fake, capsys, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "flp_WRONG_cli_secret_55555"
    monkeypatch.setenv("FRIENDLI_TOKEN", secret)
    monkeypatch.setenv("FRIENDLI_PROJECT", PROJECT)
    code, out, err = run(capsys, "deploy", weights_bundle, "--target", "friendli", *fast(fake))
    assert code == 1 and "401" in err and "invalid token ***" in err
    assert secret not in out + err + caplog.text


def test_unknown_target_suggests_the_close_name(weights_bundle, capsys):
    code, _, err = run(capsys, "deploy", weights_bundle, "--target", "friendly")
    assert code == 1 and "did you mean 'friendli'" in err and "triton" in err


def test_no_target_names_the_choices(weights_bundle, capsys):
    code, _, err = run(capsys, "deploy", weights_bundle)
    assert code == 1 and "--target" in err and "friendli" in err


def test_invalid_settings_are_reported_without_values(weights_bundle, capsys):
    code, _, err = run(capsys, "deploy", weights_bundle, "--target", "friendli", "--set", "tokenn=flp_do_not_print",
                       "--set", "retries=many")
    assert code == 1
    assert "invalid settings for target 'friendli'" in err and "FRIENDLI_TOKEN" in err
    assert "flp_do_not_print" not in err
    code, _, err = run(capsys, "deploy", weights_bundle, "--target", "friendli", "--set", "colour=blue")
    assert code == 1 and "colour" in err and "project_id" in err


def test_options_a_target_does_not_take(weights_bundle, tmp_path, capsys):
    code, _, err = run(capsys, "deploy", weights_bundle, "--target", "friendli", "--out", tmp_path / "x")
    assert code == 1 and "takes no --out" in err


def test_local_bundle_needs_hf_repo_then_deploys(vlm_bundle, friendli_env, capsys):
    code, _, err = run(capsys, "deploy", vlm_bundle, "--target", "friendli", *fast(friendli_env))
    assert code == 1 and "--hf-repo" in err and "huggingface-cli upload" in err
    code, out, err = run(capsys, "deploy", vlm_bundle, "--target", "friendli", "--hf-repo", "me/tiny-llava", *fast(friendli_env))
    assert code == 0, err
    assert "me/tiny-llava" in out and "RUNNING" in out


def test_tampered_bundle_is_refused(weights_bundle, tmp_path, capsys):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(weights_bundle, copy)
    (copy / "hf" / "config.json").write_text("{}")
    code, _, err = run(capsys, "deploy", copy, "--target", "friendli")
    assert code == 1 and "checksum" in err


def test_operations_a_target_does_not_support(capsys):
    code, _, err = run(capsys, "deployments", "sleep", "x", "--target", "triton")
    assert code == 1 and "does not support `deployments sleep`" in err and "friendli" in err


def test_deploy_with_a_config_file(weights_bundle, friendli_env, tmp_path, capsys):
    config = tmp_path / "deploy_config.yaml"
    config.write_text(f"""
runtime: {{framework: pytorch, version: "1.12"}}
compute: {{instance_type: gpu.large, min_replicas: 1, max_replicas: 5}}
model:
  name: vlm-chat
  path: {weights_bundle}
  serving_params: {{default_batch_size: 4, max_batch_size: 8}}
autoscaling:
  metrics: [{{type: cpu_utilization, threshold: 60%}}, {{type: memory_utilization, threshold: 70%}}]
  cooldown: 300
target:
  name: friendli
  project_id: {PROJECT}
  base_url: {friendli_env.url}
  poll_interval_s: 0.001
""")
    code, _, err = run(capsys, "deploy", weights_bundle, "--config", config)
    assert code == 0, err
    body = next(r for r in friendli_env.requests if r["method"] == "POST")["body"].replace(" ", "")
    assert '"autoscalingPolicy":{"minReplica":1,"maxReplica":5,"cooldownPeriod":300}' in body
    assert '"instanceOptionId":"LnK1wTaKc7WO"' in body
    assert "max_batch_size" not in body  # the ONNX serving batch (8) is not FriendliAI's batch cap


def test_mmship_invoke_a_friendli_endpoint_by_url(weights_bundle, friendli_env, capsys, tmp_path, monkeypatch):
    fake = friendli_env
    code, out, err = run(capsys, "deploy", weights_bundle, "--target", "friendli", "--set", "endpoint_name=vlm-url", *fast(fake))
    assert code == 0, err
    (endpoint_id,) = fake.endpoints
    monkeypatch.setenv("FRIENDLI_BASE_URL", fake.url)
    code, out, err = run(capsys, "invoke", f"friendli://{endpoint_id}", "--image", image_file(tmp_path), "--text", "what is this?")
    assert code == 0, err
    assert "I see 1 image(s) and read: what is this?" in out
    code, out, err = run(capsys, "invoke", f"friendli://{endpoint_id}", "--protocol", "embeddings", "--text", "hello")
    assert code == 0 and "embedding 0: dim 8" in out
    code, out, err = run(capsys, "invoke", f"friendli://{endpoint_id}", "--protocol", "v2", "--text", "hello")
    assert code == 1 and "chat or embeddings" in err
    assert fake.token not in out + err


def test_the_plan_says_what_the_replicas_bill(weights_bundle, friendli_env, capsys):
    code, out, _ = run(capsys, "deploy", weights_bundle, "--target", "friendli", "--dry-run", *fast(friendli_env))
    assert code == 0 and "minReplica 0" in out and "sleeps" in out
    code, out, _ = run(capsys, "deploy", weights_bundle, "--target", "friendli", "--dry-run", "--set", "max_batch_size=256",
                       *fast(friendli_env))
    assert code == 0 and "advanced.max_batch_size" in out and "256" in out


def test_mmship_invoke_friendli_reads_friendli_team(friendli_env, capsys, monkeypatch):
    fake = friendli_env
    endpoint_id = fake.add_endpoint(PROJECT, "team-chat", team="team-42")
    monkeypatch.setenv("FRIENDLI_BASE_URL", fake.url)
    code, _, err = run(capsys, "invoke", f"friendli://{endpoint_id}", "--text", "hi")
    assert code == 1 and f"no FriendliAI endpoint with id or name '{endpoint_id}'" in err  # not in the token's own team
    monkeypatch.setenv("FRIENDLI_TEAM", "team-42")
    code, out, err = run(capsys, "invoke", f"friendli://{endpoint_id}", "--text", "hi")
    assert code == 0, err
    assert "read: hi" in out
    assert fake.requests[-1]["headers"]["x-friendli-team"] == "team-42"


def test_deployments_delete_never_deletes_another_projects_endpoint(friendli_env, capsys):
    theirs = friendli_env.add_endpoint("other-project", "shared")
    code, _, err = run(capsys, "deployments", "delete", "shared", "--target", "friendli", *fast(friendli_env))
    assert code == 1 and f"no FriendliAI endpoint with id or name 'shared' in project {PROJECT}" in err
    assert friendli_env.endpoints[theirs]["status"] == "RUNNING"


def test_deployments_restart(friendli_env, capsys):
    failed = friendli_env.add_endpoint(PROJECT, "broken", status="FAILED", error_code="INFERENCE_ENGINE_UNKNOWN_ERROR")
    code, out, err = run(capsys, "deployments", "restart", "broken", "--target", "friendli", *fast(friendli_env))
    assert code == 0, err
    assert "INITIALIZING" in out and failed in out


def test_failed_deploy_offers_restart(weights_bundle, friendli_env, capsys):
    code, _, err = run(capsys, "deploy", weights_bundle, "--target", "friendli", "--hf-repo", "oom/llava", *fast(friendli_env))
    assert code == 1 and "mmship deployments restart" in err


def test_a_token_with_a_newline_is_refused_and_never_printed(weights_bundle, fake, capsys, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("FRIENDLI_TOKEN", "flp_Qz7line\nWv9rest")
    monkeypatch.setenv("FRIENDLI_PROJECT", PROJECT)
    code, out, err = run(capsys, "deploy", weights_bundle, "--target", "friendli", *fast(fake))
    assert code == 1 and "FRIENDLI_TOKEN contains a control character at position 11" in err
    for part in ("Qz7line", "Wv9rest"):
        assert part not in out + err + caplog.text
    assert fake.requests == []


def test_the_token_is_not_sent_over_plain_http_to_another_host(weights_bundle, friendli_env, capsys):
    code, _, err = run(capsys, "deploy", weights_bundle, "--target", "friendli", "--set", "base_url=http://api.example.com")
    assert code == 1 and "plain http" in err and "base_url" in err
    assert friendli_env.requests == []


def test_mmship_invoke_refuses_a_base_url_the_token_must_not_go_to(friendli_env, capsys, monkeypatch):
    monkeypatch.setenv("FRIENDLI_BASE_URL", "http://api.example.com")
    code, out, err = run(capsys, "invoke", "friendli://ep-1", "--text", "hi")
    assert code == 1 and "$FRIENDLI_BASE_URL: base_url uses plain http" in err and "Fix:" in err
    assert friendli_env.requests == []


def test_mmship_invoke_refuses_a_timeout_that_is_not_positive(friendli_env, capsys, monkeypatch):
    monkeypatch.setenv("FRIENDLI_BASE_URL", friendli_env.url)
    code, _, err = run(capsys, "invoke", "friendli://ep-1", "--text", "hi", "--timeout", "0")
    assert code == 1 and "--timeout must be above 0 seconds, got 0" in err
    assert friendli_env.requests == []
