"""The friendli target: preflight, deploy/poll/fail against the fake API, lost creates,
states, token secrecy. (``test_friendli_mapping.py`` covers the plan's mapping and the
settings; ``test_friendli_deployments.py`` list/status/sleep/wake/restart/delete/invoke.)"""

from __future__ import annotations

import logging

import pytest

from mmship.core.bundle import Bundle
from mmship.core.errors import DeployError
from mmship.plugins.targets.friendli.watch import ERROR_FIXES, wait_until_running
from tests.plugins.targets.fixtures import PROJECT
from tests.plugins.targets.friendli_setup import CONFIG, target

pytestmark = pytest.mark.network


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
    existing = friendli_env.add_endpoint(PROJECT, "vlm-chat", status="SLEEPING")
    t = target(friendli_env)
    bundle = Bundle.load(weights_bundle)
    with pytest.raises(DeployError) as info:
        t.deploy(bundle, CONFIG, t.plan(bundle, CONFIG))
    assert f"{existing} (SLEEPING)" in info.value.message and "endpoint_name" in info.value.hint
    assert not any(r["method"] == "POST" for r in friendli_env.requests)


def deploy(fake, **settings):
    t = target(fake, **settings)
    return t.deploy(BUNDLE[0], CONFIG, t.plan(BUNDLE[0], CONFIG))


BUNDLE: list[Bundle] = []


@pytest.fixture
def bundle(weights_bundle):
    BUNDLE[:] = [Bundle.load(weights_bundle)]
    return BUNDLE[0]


def test_a_terminating_endpoint_does_not_hold_its_name(bundle, friendli_env):
    old = friendli_env.add_endpoint(PROJECT, "vlm-chat")
    friendli_env.endpoints[old].update(status="TERMINATING", ticks=99)
    gone = friendli_env.add_endpoint(PROJECT, "vlm-chat", status="TERMINATED")
    deployment = deploy(friendli_env)
    assert deployment.status == "RUNNING" and deployment.details["endpoint_id"] not in (old, gone)


def test_a_name_used_only_in_another_project_does_not_block(bundle, friendli_env):
    other = friendli_env.add_endpoint("someone-elses-project", "vlm-chat")
    deployment = deploy(friendli_env)
    assert deployment.status == "RUNNING" and deployment.details["endpoint_id"] != other
    assert friendli_env.endpoints[other]["status"] == "RUNNING"


@pytest.mark.parametrize("lose", [{"status": 500}, {"status": 502}, {"delay_s": 1.0}])
def test_a_create_whose_answer_is_lost_is_found_by_name(bundle, friendli_env, capsys, lose):
    """The API created the endpoint (it bills) but the answer never arrived: mmship finds it, once."""
    friendli_env.lose_answer("POST", "/dedicated/beta/endpoint", **lose)
    deployment = deploy(friendli_env, request_timeout_s=0.3)
    (endpoint_id,) = friendli_env.endpoints
    assert deployment.details["endpoint_id"] == endpoint_id and deployment.status == "RUNNING"
    assert len([r for r in friendli_env.requests if r["method"] == "POST"]) == 1  # never created twice
    assert "answer to the create request was lost" in capsys.readouterr().err


def test_a_lost_create_that_did_not_happen_says_to_look_before_retrying(bundle, friendli_env):
    friendli_env.inject("POST", "/dedicated/beta/endpoint", 500)  # refused before acting: nothing was created
    with pytest.raises(DeployError) as info:
        deploy(friendli_env)
    assert "was lost" in info.value.message and "may still appear" in info.value.message
    assert "deployments list" in info.value.hint
    assert friendli_env.endpoints == {}
    assert len([r for r in friendli_env.requests if r["method"] == "GET" and r["path"] == "/dedicated/beta/endpoint"]) == 4


def test_a_rejected_create_is_not_looked_up(bundle, friendli_env):
    with pytest.raises(DeployError) as info:
        deploy(friendli_env, instance_option_id="NOT-AN-OPTION")
    assert "422" in info.value.message and "instanceOptionId" in info.value.message
    assert [r["method"] for r in friendli_env.requests].count("GET") == 1  # the name check only


class Sequence:
    """A client whose status answers follow a script, and a clock that sleeping moves."""

    def __init__(self, *statuses):
        self.statuses = list(statuses)
        self.now = 0.0
        self.slept: list[float] = []

    def get_status(self, endpoint_id):
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds

    def wait(self, timeout_s=1800, interval_s=10):
        return wait_until_running(self, "e1", timeout_s=timeout_s, interval_s=interval_s, sleep=self.sleep, clock=self.clock)


@pytest.mark.parametrize("final", ["RUNNING", "READY", "SLEEPING"])
def test_deployed_states_end_the_wait(final):
    client = Sequence({"status": "INITIALIZING", "phase": "ENGINE_INITIALIZING"}, {"status": "UPDATING"}, {"status": final})
    assert client.wait()["status"] == final and client.slept == [10, 10]


@pytest.mark.parametrize("state", ["AWAKING", "STOPPING", "UNKNOWN", "UPDATING"])
def test_changing_states_keep_the_wait_going(state):
    client = Sequence({"status": state}, {"status": state}, {"status": "RUNNING"})
    assert client.wait()["status"] == "RUNNING" and len(client.slept) == 2


@pytest.mark.parametrize("state, restart", [("FAILED", True), ("TERMINATED", True), ("TERMINATING", False)])
def test_failed_and_terminated_offer_a_restart(state, restart):
    with pytest.raises(DeployError) as info:
        Sequence({"status": state, "errorCode": "WORKLOAD_INIT_GRPC_ERROR"}).wait()
    assert ("mmship deployments restart e1 --target friendli" in info.value.hint) == restart


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
    assert "not deployed (RUNNING, READY or SLEEPING) after 60 s" in info.value.message
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
