"""The ray target: config mapping, and autoscaling on a real loopback Ray (its security:
test_ray_security.py)."""

from __future__ import annotations

import shutil
import tempfile

import httpx
import pytest

from mmship.core.bundle import Bundle
from mmship.core.config import DeployConfig
from mmship.plugins.targets.ray.cluster import LOOPBACK_ENV
from mmship.plugins.targets.ray.target import RaySettings, RayTarget, autoscaling_config
from tests.helpers.servers import free_port


def deploy_config(min_replicas: int, max_replicas: int, metrics=(), cooldown=None) -> DeployConfig:
    return DeployConfig.model_validate({
        "compute": {"min_replicas": min_replicas, "max_replicas": max_replicas},
        "autoscaling": {"metrics": list(metrics), "cooldown": cooldown},
        "model": {"name": "tiny-clip", "serving_params": {"precision": "int8", "max_batch_size": 16, "max_delay_ms": 5.0}},
    })


def test_autoscaling_is_mapped_from_the_deploy_config():
    config = deploy_config(1, 5, [{"type": "cpu_utilization", "threshold": "60%"}, {"type": "request_count", "threshold": 8}], cooldown="5m")
    scaling = autoscaling_config(config, RaySettings())
    assert scaling["min_replicas"] == 1 and scaling["max_replicas"] == 5
    assert scaling["target_ongoing_requests"] == 8.0
    assert scaling["downscale_delay_s"] == 300.0


def test_autoscaling_defaults_and_settings_override_the_config():
    scaling = autoscaling_config(DeployConfig.defaults("tiny"), RaySettings())
    assert (scaling["min_replicas"], scaling["max_replicas"]) == (1, 1)
    assert scaling["target_ongoing_requests"] == 2.0 and scaling["downscale_delay_s"] == 60.0
    config = deploy_config(1, 3, [{"type": "request_count", "threshold": 8}], cooldown=300)
    scaling = autoscaling_config(config, RaySettings(target_ongoing_requests=3, downscale_delay_s=10))
    assert scaling["target_ongoing_requests"] == 3 and scaling["downscale_delay_s"] == 10.0


def test_plan_lists_every_mapped_setting(tiny_clip_bundle):
    target = RayTarget(RaySettings(port=8123))
    plan = target.plan(Bundle.load(tiny_clip_bundle), deploy_config(2, 3))
    assert plan.settings["autoscaling.min_replicas"] == 2
    assert plan.settings["autoscaling.max_replicas"] == 3
    assert plan.settings["max_ongoing_requests"] >= 16
    assert "127.0.0.1:8123" in plan.summary


def test_replicas_get_the_scaled_jpeg_decode_setting(tiny_clip_bundle, tiny_siglip_bundle):
    from mmship.serving.settings import ServerSettings

    bundle, config = Bundle.load(tiny_clip_bundle), deploy_config(1, 1)
    for more in ([], [Bundle.load(tiny_siglip_bundle)]):
        for scaled in (False, True):
            target = RayTarget(RaySettings(jpeg_scaled_decode=scaled))
            target.more_bundles = more
            replica = {k: v for k, v in target._serving(bundle, config).items() if v is not None}
            assert ServerSettings(**replica).jpeg_scaled_decode is scaled


def test_look_back_must_exceed_the_metrics_interval():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="look_back_period_s"):
        RaySettings(look_back_period_s=5, metrics_interval_s=10)


@pytest.mark.network
def test_load_scales_one_replica_to_two(tiny_clip_bundle, tmp_path, monkeypatch):
    """Autoscaling from the deploy config: 1 replica at rest, 2 under sustained load."""
    import threading
    import time

    from mmship.plugins.targets.ray.cluster import stop_ray

    monkeypatch.setenv("HOME", str(tmp_path))
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", *LOOPBACK_ENV):  # start_ray sets them for the driver: undone after
        monkeypatch.delenv(key, raising=False)
    port = free_port()
    work_dir = tempfile.mkdtemp(prefix="mr-", dir="/tmp")
    target = RayTarget(RaySettings(
        port=port, work_dir=work_dir, num_cpus=0.5, blocking=False, threads=1, target_ongoing_requests=1,
        upscale_delay_s=0.5, look_back_period_s=1.0, metrics_interval_s=0.25,
    ))
    bundle = Bundle.load(tiny_clip_bundle)
    config = deploy_config(1, 2)
    try:
        deployment = target.start(bundle, config, target.plan(bundle, config), timeout_s=180)

        def running() -> int:
            replicas = target.status(deployment.name).details["replicas"]
            return sum(states.get("RUNNING", 0) for states in replicas.values())

        assert running() == 1
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(timeout=60) as client:
                while not stop.is_set():
                    client.post(f"{deployment.url}/embed", json={"texts": ["a photo of a cat"] * 8})

        workers = [threading.Thread(target=load) for _ in range(8)]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 60
        try:
            while running() < 2 and time.monotonic() < deadline:
                time.sleep(0.5)
            scaled = running()
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=60)
        assert scaled == 2
    finally:
        stop_ray()
        shutil.rmtree(work_dir, ignore_errors=True)


def test_plan_of_several_bundles_names_each_precision(tiny_clip_bundle, tiny_siglip_bundle):
    target = RayTarget(RaySettings())
    clip, siglip = Bundle.load(tiny_clip_bundle), Bundle.load(tiny_siglip_bundle)
    target.more_bundles = [siglip]
    plan = target.plan(clip, DeployConfig.defaults("x"))
    assert f"serving {clip.manifest.name}, {siglip.manifest.name}" in plan.summary
    assert plan.settings[f"precision.{clip.manifest.name}"] == clip.manifest.serving_params.precision
    assert plan.settings[f"precision.{siglip.manifest.name}"] == siglip.manifest.serving_params.precision
    assert "serving.precision" not in plan.settings, "one precision for all would hide each model's"


@pytest.mark.network
def test_several_bundles_are_one_application(tiny_clip_bundle, tiny_siglip_bundle, tmp_path, monkeypatch):
    """Two bundles deployed together: one app on one route prefix, each model by its name."""
    from mmship.plugins.targets.ray.cluster import stop_ray

    monkeypatch.setenv("HOME", str(tmp_path))
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", *LOOPBACK_ENV):
        monkeypatch.delenv(key, raising=False)
    work_dir = tempfile.mkdtemp(prefix="mr-", dir="/tmp")
    target = RayTarget(RaySettings(port=free_port(), work_dir=work_dir, num_cpus=0.5, blocking=False, threads=1))
    clip, siglip = Bundle.load(tiny_clip_bundle), Bundle.load(tiny_siglip_bundle)
    target.more_bundles = [siglip]
    config = DeployConfig.defaults(clip.manifest.name)
    try:
        deployment = target.start(clip, config, target.plan(clip, config), timeout_s=180)
        names = [clip.manifest.name, siglip.manifest.name]
        assert httpx.get(f"{deployment.url}/v2", timeout=30).json()["models"] == names
        for name in names:
            answer = httpx.post(f"{deployment.url}/embed", json={"texts": ["a cat"], "model": name}, timeout=60)
            assert answer.status_code == 200 and answer.json()["model"] == name
        index = httpx.post(f"{deployment.url}/v2/repository/index", timeout=30).json()
        assert [m["name"] for m in index] == names and {m["state"] for m in index} == {"READY"}
    finally:
        stop_ray()
        shutil.rmtree(work_dir, ignore_errors=True)
