"""`mmship serve` as a real process: graceful drain on SIGTERM, memory log, local target."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from mmship.serving.process import free_port, wait_ready

pytestmark = pytest.mark.network


def _arrived(url: str) -> int:
    """/embed requests admitted so far: those in flight plus those answered."""
    count = 0.0
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("mmship_admission_inflight ") or (
            line.startswith("mmship_requests_total{") and 'route="/embed"' in line and 'status="200"' in line
        ):
            count += float(line.rsplit(" ", 1)[1])
    return int(count)


def test_sigterm_drains_requests_in_flight(tiny_clip_bundle, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    memory_csv = tmp_path / "memory.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmship", "serve", str(tiny_clip_bundle), "--port", str(port),
         "--max-delay-ms", "1500", "--max-batch-size", "64", "--memory-log", "0.2", "--memory-log-file", str(memory_csv),
         "--latency-budget-ms", "30000"],  # draining is tested here, not admission (test_admission*.py)
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(url, proc, timeout_s=90)
        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(httpx.post, f"{url}/embed", json={"texts": [f"text {i}"]}, timeout=30) for i in range(6)]
            # All six arrived (answered, or waiting in the batcher: max delay 1.5 s once it is
            # busy); a fixed sleep was too short on a loaded machine, where the clients took
            # longer to connect.
            deadline = time.monotonic() + 20
            while _arrived(url) < 6:
                assert time.monotonic() < deadline, "the six requests never reached the server"
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            codes = [f.result().status_code for f in futures]
        assert codes == [200] * 6
        # uvicorn drains, then re-raises the SIGTERM it caught so the exit reads as one
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    rows = memory_csv.read_text().splitlines()
    assert rows[0] == "timestamp,rss_bytes" and len(rows) >= 2
    assert int(rows[1].split(",")[1]) > 10_000_000


def test_local_target_detached_deploy_and_stop(tiny_clip_bundle, tmp_path, monkeypatch):
    from mmship.core.bundle import Bundle
    from mmship.core.config import DeployConfig
    from mmship.plugins.targets.local import LocalSettings, LocalTarget

    monkeypatch.setenv("MMSHIP_HOME", str(tmp_path / "home"))
    port = free_port()
    target = LocalTarget(LocalSettings(port=port, detach=True, deployment_name="tiny", ready_timeout_s=120))
    bundle = Bundle.load(tiny_clip_bundle)
    config = DeployConfig.defaults(bundle.manifest.name)
    plan = target.plan(bundle, config)
    assert f"--port {port}" in plan.settings["command"]
    deployment = target.deploy(bundle, config, plan)
    try:
        assert deployment.status == "running"
        assert httpx.post(f"{deployment.url}/embed", json={"texts": ["hello"]}).status_code == 200
        assert [d.name for d in target.list_deployments()] == ["tiny"]
        assert target.status("tiny").status == "running"
    finally:
        stopped = target.delete("tiny")
    assert stopped.status == "deleted"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{deployment.url}/v2/health/live", timeout=2)
    assert target.list_deployments() == []
