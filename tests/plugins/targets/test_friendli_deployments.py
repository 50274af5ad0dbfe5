"""The friendli target's deployments: list, status, sleep, wake, restart, delete and invoke
against the spec-built fake, all scoped to the configured project and team."""

from __future__ import annotations

import io

import pytest

from mmship.core.errors import DeployError
from mmship.plugins.targets.friendli.mapping import FriendliSettings
from mmship.plugins.targets.friendli.target import FriendliTarget
from tests.plugins.targets.fixtures import PROJECT

pytestmark = pytest.mark.network


def target(fake, **settings):
    settings.setdefault("base_url", fake.url)
    settings.setdefault("request_timeout_s", 5)
    return FriendliTarget(FriendliSettings(**settings))


def png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_list_status_sleep_wake_delete(friendli_env):
    first = friendli_env.add_endpoint(PROJECT, "alpha")
    friendli_env.add_endpoint(PROJECT, "beta", status="SLEEPING")
    friendli_env.add_endpoint("other-project", "gamma")
    t = target(friendli_env)
    listed = t.list_deployments()
    assert [d.name for d in listed] == ["beta", "alpha"]  # newest first, this project only
    assert "wakes it" in listed[0].details["note"]
    assert t.status("alpha").details["endpoint_id"] == first
    assert t.status(first).name == "alpha"
    assert t.sleep("alpha").status == "SLEEPING"
    assert t.wake("alpha").status == "AWAKING"
    assert t.status("alpha").status == "RUNNING"
    assert t.delete("alpha").status == "deleted"
    assert t.status("alpha").status == "TERMINATING"  # FriendliAI takes a while to delete
    with pytest.raises(DeployError, match="no FriendliAI endpoint"):
        for _ in range(friendli_env.terminating_reads + 1):
            t.status("alpha")
    assert first not in friendli_env.endpoints


def test_delete_by_name_never_touches_another_projects_endpoint(friendli_env):
    theirs = friendli_env.add_endpoint("other-project", "alpha")
    t = target(friendli_env)
    with pytest.raises(DeployError, match="no FriendliAI endpoint with id or name 'alpha' in project"):
        t.delete("alpha")
    mine = friendli_env.add_endpoint(PROJECT, "alpha")
    theirs_newer = friendli_env.add_endpoint("other-project", "alpha")
    assert t.delete("alpha").details["endpoint_id"] == mine
    assert friendli_env.endpoints[theirs]["status"] == friendli_env.endpoints[theirs_newer]["status"] == "RUNNING"


def test_list_shows_only_the_configured_project_and_the_team_without_one(friendli_env, monkeypatch):
    mine = friendli_env.add_endpoint(PROJECT, "a")
    theirs = friendli_env.add_endpoint("other-project", "b")
    friendli_env.add_endpoint(PROJECT, "c", team="team-42")
    assert [d.details["endpoint_id"] for d in target(friendli_env).list_deployments()] == [mine]
    monkeypatch.delenv("FRIENDLI_PROJECT")
    assert {d.details["endpoint_id"] for d in target(friendli_env).list_deployments()} == {mine, theirs}
    assert [d.name for d in target(friendli_env, project_id=PROJECT, team="team-42").list_deployments()] == ["c"]


@pytest.fixture
def filter_ignored(friendli_env, monkeypatch):
    """A server (or proxy) that drops the ``project_id`` filter: the second safeguard must hold."""
    real = friendli_env.dedicatedListEndpoints
    monkeypatch.setattr(friendli_env, "dedicatedListEndpoints", lambda team, params, body: real(team, {**params, "project_id": ""}, body))
    return friendli_env


def test_scoping_holds_when_the_server_ignores_the_project_filter(filter_ignored):
    fake = filter_ignored
    theirs = fake.add_endpoint("other-project", "shared-name")
    t = target(fake)
    assert t.list_deployments() == []
    for op in (t.status, t.sleep, t.wake, t.delete):
        with pytest.raises(DeployError, match="no FriendliAI endpoint"):
            op("shared-name")
    with pytest.raises(DeployError) as info:
        t.delete(theirs)  # by id: refused, it is another project's
    assert "belongs to project other-project" in info.value.message and "project_id=other-project" in info.value.hint
    assert fake.endpoints[theirs]["status"] == "RUNNING"


def test_a_name_matching_several_live_endpoints_is_refused_with_the_ids(friendli_env):
    one = friendli_env.add_endpoint(PROJECT, "dup")
    two = friendli_env.add_endpoint(PROJECT, "dup", status="SLEEPING")
    t = target(friendli_env)
    for op in (t.status, t.sleep, t.delete):
        with pytest.raises(DeployError) as info:
            op("dup")
        assert one in info.value.message and two in info.value.message and "endpoint id" in info.value.hint
    assert friendli_env.endpoints[one]["status"] == "RUNNING" and friendli_env.endpoints[two]["status"] == "SLEEPING"
    assert t.delete(two).details["endpoint_id"] == two  # the id is unambiguous


def test_a_400_for_an_id_looking_name_falls_back_to_the_name(friendli_env):
    endpoint_id = friendli_env.add_endpoint(PROJECT, "my-chat")
    friendli_env.inject("GET", "/dedicated/beta/endpoint/my-chat", 400)
    assert target(friendli_env).status("my-chat").details["endpoint_id"] == endpoint_id


def test_names_with_path_characters_find_nothing_and_touch_nothing(friendli_env):
    victim = friendli_env.add_endpoint(PROJECT, "victim")
    t = target(friendli_env)
    for name in (f"x/../{victim}", f"{victim}?x=1", f"{victim}#frag", "..", "."):
        with pytest.raises(DeployError, match="no FriendliAI endpoint"):
            t.delete(name)
    assert friendli_env.endpoints[victim]["status"] == "RUNNING"


def test_restart_a_failed_or_terminated_endpoint(friendli_env):
    failed = friendli_env.add_endpoint(PROJECT, "broken", status="FAILED", error_code="WORKLOAD_INIT_GRPC_ERROR")
    friendli_env.add_endpoint(PROJECT, "broken")  # a newer, running one of the same name
    t = target(friendli_env)
    restarted = t.restart("broken")  # the FAILED one is the one a restart can mean
    assert restarted.details["endpoint_id"] == failed and restarted.status.startswith("INITIALIZING")
    stopped = friendli_env.add_endpoint(PROJECT, "stopped", status="TERMINATED")
    assert t.restart(stopped).status.startswith("INITIALIZING")
    with pytest.raises(DeployError) as info:
        t.restart(friendli_env.add_endpoint(PROJECT, "fine"))
    assert "400" in info.value.message


def test_invoke_chat_with_an_image_and_embeddings(friendli_env):
    friendli_env.add_endpoint(PROJECT, "vlm")
    t = target(friendli_env)
    result = t.invoke("vlm", texts=["what is this?"], images=[png()])
    assert result.text == "I see 1 image(s) and read: what is this?"
    chat = next(r for r in friendli_env.requests if r["path"] == "/dedicated/v1/chat/completions")
    assert '"url":"data:image/png;base64,' in chat["body"].replace(" ", "")
    vectors = t.invoke("vlm", texts=["a", "bcd"], images=[], mode="embeddings").embeddings
    assert [len(v) for v in vectors] == [8, 8] and vectors[1][0] == 3.0


def test_invoking_a_sleeping_endpoint_wakes_it(friendli_env):
    endpoint_id = friendli_env.add_endpoint(PROJECT, "sleepy", status="SLEEPING")
    t = target(friendli_env)
    assert t.invoke("sleepy", texts=["hi"], images=[]).text.endswith("read: hi")
    assert friendli_env.endpoints[endpoint_id]["status"] == "RUNNING"


def test_invoke_refuses_raw_pixels_and_images_for_embeddings(friendli_env):
    friendli_env.add_endpoint(PROJECT, "vlm")
    t = target(friendli_env)
    with pytest.raises(Exception, match="not an encoded JPEG"):
        t.invoke("vlm", texts=["x"], images=[bytes(48)])
    with pytest.raises(Exception, match="text only"):
        t.invoke("vlm", texts=["x"], images=[png()], mode="embeddings")
