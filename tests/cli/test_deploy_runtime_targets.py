"""`mmship deploy` with the runtime targets: local (detached, then `mmship stop`) and ray."""

from __future__ import annotations

import httpx
import pytest

from mmship.core.cli.app import main
from tests.helpers.servers import free_port


@pytest.fixture(autouse=True)
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("MMSHIP_HOME", str(tmp_path / "home"))


@pytest.mark.network
def test_deploy_local_detached_then_stop(tiny_clip_bundle, capsys):
    port = free_port()
    args = ["deploy", str(tiny_clip_bundle), "--target", "local", "--set", "detach=true",
            "--set", f"port={port}", "--set", "deployment_name=tiny"]
    try:
        assert main(args) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert f"--port {port}" in out and "running" in out
        assert httpx.post(f"http://127.0.0.1:{port}/embed", json={"texts": ["a cat"]}).status_code == 200
        assert main(["deployments", "list", "--target", "local"]) == 0
        assert "tiny" in capsys.readouterr().out
    finally:
        assert main(["stop", "tiny"]) == 0
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=2)
    assert main(["stop", "tiny"]) == 1
    assert "no local deployment called 'tiny'" in capsys.readouterr().err


def test_deploy_ray_dry_run_prints_the_mapped_plan(tiny_clip_bundle, tmp_path, capsys):
    config = tmp_path / "deploy_config.yaml"
    config.write_text(
        "compute: {instance_type: cpu.medium, min_replicas: 2, max_replicas: 4}\n"
        "model: {name: tiny, serving_params: {max_batch_size: 16}}\n"
        "autoscaling:\n  metrics: [{type: request_count, threshold: 6}]\n  cooldown: 120\n"
        "target: {name: ray, port: 8123}\n"
    )
    assert main(["deploy", str(tiny_clip_bundle), "--config", str(config), "--dry-run"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    for expected in ("autoscaling.min_replicas", "autoscaling.max_replicas", "target_ongoing_requests", "downscale_delay_s", "8123"):
        assert expected in out


def test_checkpoint_bundles_are_refused_by_graph_targets(tmp_path, capsys):
    from tests.plugins.targets.bundles import make_weights_bundle

    bundle = make_weights_bundle(tmp_path / "vlm-bundle")
    for target in ("local", "ray"):
        assert main(["deploy", str(bundle), "--target", target, "--dry-run"]) == 1
        err = capsys.readouterr().err
        assert "friendli" in err
