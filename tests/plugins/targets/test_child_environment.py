"""Processes mmship starts get an allow-listed environment: the parent's tokens stay in the
parent, and the API key goes only to the server that enforces it. Checked on the real
children (their /proc/PID/environ) of a detached local deployment and of the bench's
served bundle, with tokens planted in the parent's environment."""

from __future__ import annotations

from pathlib import Path

import httpx
import psutil
import pytest

from mmship.core.bundle import Bundle
from mmship.core.config import DeployConfig
from mmship.plugins.targets.local import LocalSettings, LocalTarget
from mmship.serving.process import free_port, served_bundle

SECRETS = {
    "FRIENDLI_TOKEN": "flp_friendli-secret",
    "HF_TOKEN": "hf_hub-secret",
    "HUGGING_FACE_HUB_TOKEN": "hf_other-secret",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "GITHUB_TOKEN": "ghp_secret",
    "MMSHIP_FRIENDLI_TOKEN_BACKUP": "prefix-allowed-but-secret",
    "DATABASE_URL": "postgres://user:pw@db/x",
}


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    return SECRETS


def server_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "serve" in p.cmdline() and "mmship" in p.cmdline()]


def assert_clean(environ: dict[str, str], api_key: str | None) -> None:
    leaked = sorted(name for name, value in environ.items() if value in SECRETS.values())
    assert leaked == [], f"secrets reached the child: {leaked}"
    assert environ.get("MMSHIP_API_KEY") == api_key
    assert environ["OMP_NUM_THREADS"] == "1" and environ["LC_ALL"] == "C.UTF-8" and "PATH" in environ


def test_the_allow_list():
    from mmship.child_env import child_environment, looks_secret

    parent = {**SECRETS, "PATH": "/bin", "MMSHIP_HOME": "/h", "MMSHIP_API_KEY": "k", "CUDA_VISIBLE_DEVICES": "0",
              "HF_HUB_OFFLINE": "1", "RANDOM_APP_SETTING": "x", "LD_PRELOAD": "/evil.so"}
    env = child_environment(environ=parent)
    assert env == {"PATH": "/bin", "MMSHIP_HOME": "/h", "CUDA_VISIBLE_DEVICES": "0", "HF_HUB_OFFLINE": "1"}
    assert child_environment({"MMSHIP_API_KEY": "k"}, environ=parent)["MMSHIP_API_KEY"] == "k"
    extra = child_environment(environ={**parent, "MMSHIP_CHILD_ENV": "RANDOM_APP_SETTING, DATABASE_URL"})
    assert extra["RANDOM_APP_SETTING"] == "x" and extra["DATABASE_URL"] == SECRETS["DATABASE_URL"]
    assert all(looks_secret(name) for name in ("FRIENDLI_TOKEN", "hf_token", "MMSHIP_API_KEY", "AWS_SECRET_ACCESS_KEY"))


@pytest.mark.network
def test_a_detached_local_server_gets_no_parent_tokens_and_only_its_key(tiny_clip_bundle: Path, tmp_path, monkeypatch, planted):
    monkeypatch.setenv("MMSHIP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MMSHIP_API_KEY", "the-server-key-0123456789")
    port = free_port()
    target = LocalTarget(LocalSettings(port=port, detach=True, deployment_name="envcheck", ready_timeout_s=120))
    bundle = Bundle.load(tiny_clip_bundle)
    config = DeployConfig.defaults(bundle.manifest.name)
    deployment = target.deploy(bundle, config, target.plan(bundle, config))
    try:
        child = psutil.Process(deployment.details["pid"])
        assert_clean(child.environ(), api_key="the-server-key-0123456789")
        url = f"http://127.0.0.1:{port}/embed"
        assert httpx.post(url, json={"texts": ["a cat"]}, timeout=30).status_code == 401
        answer = httpx.post(url, json={"texts": ["a cat"]}, headers={"Authorization": "Bearer the-server-key-0123456789"}, timeout=30)
        assert answer.status_code == 200
    finally:
        target.delete("envcheck")


@pytest.mark.network
def test_the_bench_served_bundle_gets_no_parent_tokens(tiny_clip_bundle: Path, monkeypatch, planted):
    monkeypatch.setenv("MMSHIP_API_KEY", "parent-key-for-something-else")
    with served_bundle(tiny_clip_bundle, timeout_s=120) as url:
        (child,) = server_children()
        assert_clean(child.environ(), api_key=None)  # the key is not this child's to hold
        assert httpx.get(f"{url}/v2/health/ready", timeout=10).status_code == 200
    with served_bundle(tiny_clip_bundle, timeout_s=120, api_key="bench-key-0123456789ab") as url:
        (child,) = server_children()
        assert_clean(child.environ(), api_key="bench-key-0123456789ab")
        assert httpx.post(f"{url}/embed", json={"texts": ["a"]}, timeout=30).status_code == 401
    assert server_children() == []


def test_a_short_key_is_refused_before_the_detached_child_starts(tiny_clip_bundle: Path, tmp_path, monkeypatch):
    """The child server would exit on a key it refuses; the deploy says why itself."""
    from mmship.core.bundle import Bundle
    from mmship.core.config import DeployConfig
    from mmship.core.errors import MmshipError
    from mmship.plugins.targets.local import LocalSettings, LocalTarget

    monkeypatch.setenv("MMSHIP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MMSHIP_API_KEY", "short")
    bundle = Bundle.load(tiny_clip_bundle)
    target = LocalTarget(LocalSettings(detach=True, port=free_port(), deployment_name="shortkey"))
    config = DeployConfig.defaults(bundle.manifest.name)
    with pytest.raises(MmshipError, match="5 characters; keys need 16"):
        target.deploy(bundle, config, target.plan(bundle, config))
    assert not (tmp_path / "home" / "deployments" / "shortkey.log").exists()
