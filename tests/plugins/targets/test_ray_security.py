"""The ray target does not open the machine.

One local deployment for the module (2 replicas on a loopback Ray, ~20 s), started the way
a user would with tokens in their environment, then looked at from outside: every socket
of every Ray process (GCS, raylet, workers, replicas, agents), the environment of each of
those processes, a client without the cluster's token, and the HTTP API without the key.
The plan-time refusals need no Ray.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from mmship.core.bundle import Bundle
from mmship.core.config import DeployConfig
from mmship.core.errors import DeployError
from mmship.plugins.targets.ray.target import RaySettings, RayTarget
from tests.helpers.servers import free_port

SECRETS = {"FRIENDLI_TOKEN": "flp_ray-test-secret", "HF_TOKEN": "hf_ray-test-secret", "AWS_SECRET_ACCESS_KEY": "aws-ray-secret"}
API_KEY = "replica-key-7f3a9c"
RAY_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER",
           "RAY_USAGE_STATS_ENABLED", "RAY_DISABLE_DOCKER_CPU_WARNING")


def deploy_config(replicas: int) -> DeployConfig:
    return DeployConfig.model_validate({
        "compute": {"min_replicas": replicas, "max_replicas": replicas},
        "model": {"name": "tiny-clip", "serving_params": {"max_batch_size": 8}},
    })


@dataclass
class RayRun:
    url: str
    port: int
    gcs_address: str
    target: RayTarget
    name: str


#: Children of the test process that existed before Ray started (servers other test
#: modules keep for the session): not Ray's.
_BEFORE: set[int] = set()


def ray_processes() -> list[psutil.Process]:
    """Every process this test process started, at any depth, since Ray started: Ray's
    GCS, raylet, workers, replicas, agents."""
    return [p for p in psutil.Process().children(recursive=True) if p.pid not in _BEFORE]


def _still_running(timeout_s: float = 20.0) -> list[psutil.Process]:
    """Ray processes still running after shutdown, given ``timeout_s`` to exit."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [p for p in ray_processes() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


@pytest.fixture(scope="module")
def secured_ray(tiny_clip_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayRun]:
    import ray

    from mmship.plugins.targets.ray.cluster import stop_ray

    _BEFORE.clear()
    _BEFORE.update(p.pid for p in psutil.Process().children(recursive=True))
    patch = pytest.MonkeyPatch()
    patch.setenv("HOME", str(tmp_path_factory.mktemp("ray-home")))  # no ~/.ray/auth_token to fall back on
    for key in RAY_ENV:
        patch.delenv(key, raising=False)
    for name, value in SECRETS.items():
        patch.setenv(name, value)
    patch.setenv("MMSHIP_API_KEY", API_KEY)
    work_dir = tempfile.mkdtemp(prefix="mr-", dir="/tmp")  # Ray's socket paths must stay short
    port = free_port()
    target = RayTarget(RaySettings(port=port, work_dir=work_dir, num_cpus=0.5, blocking=False, threads=1))
    bundle = Bundle.load(tiny_clip_bundle)
    config = deploy_config(2)
    try:
        deployment = target.start(bundle, config, target.plan(bundle, config), timeout_s=180)
        gcs = ray.get_runtime_context().gcs_address
        yield RayRun(deployment.url, port, gcs, target, deployment.name)
    finally:
        stop_ray()
        shutil.rmtree(work_dir, ignore_errors=True)
        patch.undo()
    left = _still_running()
    assert left == [], f"Ray left processes running: {[(p.pid, p.name(), p.cmdline()[:3]) for p in left]}"


@pytest.mark.network
def test_two_replicas_serve_embed_and_require_the_key(secured_ray: RayRun):
    url = f"{secured_ray.url}/embed"
    denied = httpx.post(url, json={"texts": ["a photo"]}, timeout=60)
    assert denied.status_code == 401 and "API key" in denied.text
    answers = [httpx.post(url, json={"texts": [f"a photo {i}"]}, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60)
               for i in range(6)]
    assert all(a.status_code == 200 for a in answers), answers[0].text
    assert len(answers[0].json()["text_embeds"][0]) == answers[0].json()["dim"]
    status = secured_ray.target.status(secured_ray.name)
    assert sum(states.get("RUNNING", 0) for states in status.details["replicas"].values()) == 2


@pytest.mark.network
def test_every_ray_listener_is_on_loopback(secured_ray: RayRun):
    """All bound sockets of every Ray process, not only Serve's HTTP proxy."""
    sockets, names = [], set()
    for process in ray_processes():
        try:
            connections = process.net_connections(kind="inet")
            name = process.name()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        for c in connections:
            if c.status == psutil.CONN_LISTEN or (c.type == 2 and not c.raddr):  # TCP listeners, unconnected UDP
                sockets.append((name, c.laddr.ip, c.laddr.port))
                names.add(name)
    assert {"gcs_server", "raylet"} <= names, names
    assert any(port == secured_ray.port for _, _, port in sockets)
    off_loopback = [s for s in sockets if s[1] not in ("127.0.0.1", "::1", "::ffff:127.0.0.1")]
    assert off_loopback == [], f"Ray listens off loopback: {off_loopback}"
    ss = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout.split("\n")
    ours = {port for _, _, port in sockets}
    seen = [line.split()[3] for line in ss if line.strip() and int(line.split()[3].rsplit(":", 1)[1]) in ours]
    assert seen and all(addr.rsplit(":", 1)[0] in ("127.0.0.1", "[::1]", "[::ffff:127.0.0.1]") for addr in seen), seen


@pytest.mark.network
def test_no_ray_process_holds_the_users_tokens(secured_ray: RayRun):
    environments = []
    for process in ray_processes():
        try:
            environments.append((process.name(), process.environ()))
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    assert len(environments) >= 4
    leaked = sorted({(name, var) for name, env in environments for var, value in env.items()
                     if value in (*SECRETS.values(), API_KEY)})
    assert leaked == [], f"secrets in Ray processes: {leaked}"
    assert any(env.get("RAY_AUTH_MODE") == "token" for name, env in environments if name == "gcs_server")


def connect(gcs_address: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A separate process that talks to the GCS as any client does (Ray's GcsClient) and
    lists its keys: what someone on the machine or network would try first."""
    code = (
        "from ray._raylet import GcsClient\n"
        f"keys = GcsClient(address={gcs_address!r}).internal_kv_keys(b'', namespace=None, timeout=10)\n"
        "print('CONNECTED', len(keys))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.network
def test_a_client_without_the_token_is_refused(secured_ray: RayRun, tmp_path: Path):
    import os

    base = {k: v for k, v in os.environ.items() if k not in RAY_ENV}
    base["HOME"] = str(tmp_path)  # no token file either
    no_auth = connect(secured_ray.gcs_address, base)
    assert no_auth.returncode != 0 and "CONNECTED" not in no_auth.stdout
    assert "InvalidAuthToken" in no_auth.stderr, no_auth.stderr[-2000:]
    wrong = connect(secured_ray.gcs_address, {**base, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64})
    assert wrong.returncode != 0 and "CONNECTED" not in wrong.stdout
    assert "InvalidAuthToken" in wrong.stderr, wrong.stderr[-2000:]
    right = connect(secured_ray.gcs_address, {**base, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.environ["RAY_AUTH_TOKEN"]})
    assert right.returncode == 0 and "CONNECTED" in right.stdout, right.stderr[-2000:]


# --- plan-time refusals (no Ray started) -------------------------------------------


@pytest.fixture
def bundle(graphs_bundle: Path) -> Bundle:
    return Bundle.load(graphs_bundle)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.setenv("HOME", str(tmp_path))
    for key in (*RAY_ENV, "MMSHIP_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "my-host.example"])
def test_a_host_off_loopback_without_an_api_key_is_refused(bundle, clean_env, host):
    with pytest.raises(DeployError) as info:
        RayTarget(RaySettings(host=host)).plan(bundle, deploy_config(1))
    assert f"refusing to serve Ray replicas on {host} without an API key" in info.value.message
    assert "MMSHIP_API_KEY" in info.value.hint
    clean_env.setenv("MMSHIP_API_KEY", API_KEY)
    plan = RayTarget(RaySettings(host=host)).plan(bundle, deploy_config(1))
    assert plan.settings["http_auth"] == "API key from MMSHIP_API_KEY"
    assert API_KEY not in str(plan.settings) + plan.summary
    clean_env.setenv("MMSHIP_API_KEY", "  ")
    with pytest.raises(DeployError, match="set but empty"):
        RayTarget(RaySettings(host=host)).plan(bundle, deploy_config(1))


def test_insecure_is_said_in_the_plan(bundle, clean_env):
    plan = RayTarget(RaySettings(host="0.0.0.0", insecure=True)).plan(bundle, deploy_config(1))
    assert plan.settings["http_auth"].startswith("NONE on 0.0.0.0")
    local = RayTarget(RaySettings()).plan(bundle, deploy_config(1))
    assert "every Ray port on 127.0.0.1" in local.settings["ray_auth"]


def test_joining_a_cluster_needs_token_auth_or_an_explicit_opt_out(bundle, clean_env, tmp_path, capsys):
    address = "ray://head.example:10001"
    with pytest.raises(DeployError) as info:
        RayTarget(RaySettings(address=address)).plan(bundle, deploy_config(1))
    assert "without token authentication" in info.value.message and "RAY_AUTH_MODE=token" in info.value.hint
    clean_env.setenv("RAY_AUTH_MODE", "token")
    with pytest.raises(DeployError):  # the mode without a token is not enough
        RayTarget(RaySettings(address=address)).plan(bundle, deploy_config(1))
    clean_env.setenv("RAY_AUTH_TOKEN", "cluster-token")
    assert RayTarget(RaySettings(address=address)).plan(bundle, deploy_config(1)).settings["ray_auth"].startswith("token")
    clean_env.delenv("RAY_AUTH_TOKEN")
    token_file = tmp_path / "tok"
    token_file.write_text("t")
    clean_env.setenv("RAY_AUTH_TOKEN_PATH", str(token_file))
    assert RayTarget(RaySettings(address=address)).plan(bundle, deploy_config(1)).settings["ray_auth"].startswith("token")
    clean_env.delenv("RAY_AUTH_MODE")
    plan = RayTarget(RaySettings(address=address, allow_unauthenticated_cluster=True)).plan(bundle, deploy_config(1))
    assert "Ray's own security applies" in plan.settings["ray_auth"]


def test_the_deploy_guard_sees_a_listener_off_loopback():
    """check_loopback_only (run after Ray starts and after the app runs) looks at every
    socket of every child process: a child listening on 0.0.0.0 is reported by name."""
    from mmship.plugins.targets.ray.cluster import listeners_off_loopback

    code = ("import socket, time\n"
            "s = socket.socket(); s.bind(('0.0.0.0', 0)); s.listen(1)\n"
            "print(s.getsockname()[1], flush=True); time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        port = int(child.stdout.readline())
        assert any(entry.endswith(f" 0.0.0.0:{port}") for entry in listeners_off_loopback())
        assert not any(entry.endswith(f":{port}") for entry in listeners_off_loopback(allowed_ports={port}))
    finally:
        child.kill()
        child.wait()
