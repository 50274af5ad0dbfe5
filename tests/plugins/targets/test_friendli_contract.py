"""The contract: every request mmship builds and every answer the fake gives, checked
against FriendliAI's published OpenAPI spec (``friendli_openapi.yaml``, commit in its header).

The requests are captured from mmship's real client with an httpx MockTransport (no fake
involved), so the check does not depend on the fake; the fake's answers are checked by the
same :class:`Contract`, so the fake cannot drift from the spec either.
"""

from __future__ import annotations

import base64
import json
import re

import httpx

from mmship.core.bundle import Bundle
from mmship.core.config import DeployConfig
from mmship.plugins.targets.friendli.client import FriendliClient
from mmship.plugins.targets.friendli.invoke import chat_body, embeddings_body
from mmship.plugins.targets.friendli.mapping import INSTANCE_OPTIONS, FriendliSettings
from mmship.plugins.targets.friendli.target import FriendliTarget
from mmship.plugins.targets.friendli.watch import ERROR_FIXES
from tests.plugins.targets.fake_friendli import DEFAULT_TEAM
from tests.plugins.targets.friendli_contract import SPEC_PATH, contract

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
STATUS = {"status": "RUNNING", "createdAt": "2026-01-01T00:00:00Z"}


class Recorder:
    """An httpx transport that records requests and answers like the API would (shapes only)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "GET" and request.url.path == "/dedicated/beta/endpoint":
            page = {"data": {"e1": STATUS}, "nextCursor": None if "cursor" in request.url.params else "c2"}
            return httpx.Response(200, json=page)
        return httpx.Response(200, json=STATUS)

    def problems(self) -> list[str]:
        found = []
        for r in self.requests:
            query = list(httpx.QueryParams(r.url.query).multi_items())
            found += contract().request_problems(r.method, r.url.raw_path.split(b"?")[0].decode(), query, r.headers, r.content)
        return found


def recording_client(team: str | None = "team-7") -> tuple[FriendliClient, Recorder]:
    recorder = Recorder()
    client = FriendliClient("flp_contract", "https://api.friendli.ai", team=team, transport=httpx.MockTransport(recorder),
                            retries=0)
    return client, recorder


def test_the_spec_copy_names_its_source_commit():
    header = "\n".join(SPEC_PATH.read_text(encoding="utf-8").splitlines()[:6])
    assert "github.com/friendliai/friendli-openapi" in header
    assert re.search(r"commit [0-9a-f]{40}\b", header)


# --- requests mmship builds ---------------------------------------------------------------


def test_every_endpoint_call_matches_the_spec():
    client, recorder = recording_client()
    with client:
        client.list_endpoints("proj-1")  # two pages: the cursor travels too
        client.list_endpoints(None)
        for call in (client.get_endpoint, client.get_status, client.delete_endpoint, client.sleep_endpoint,
                     client.wake_endpoint, client.restart_endpoint):
            call("ep-1")
    assert recorder.problems() == []
    listed = [r for r in recorder.requests if r.url.path == "/dedicated/beta/endpoint"]
    assert listed[0].url.params["project_id"] == "proj-1"
    assert listed[1].url.params["cursor"] == "c2"
    assert "project_id" not in listed[2].url.params  # no project: the whole team
    assert all(r.headers["x-friendli-team"] == "team-7" for r in recorder.requests)


def test_the_create_request_matches_the_spec_with_every_setting(weights_bundle):
    settings = FriendliSettings(
        project_id="proj-1", hf_revision="abc123", max_batch_size=256, max_token_count=4096, max_input_length=2048,
        enable_content_logging=False, version_comment="from mmship", instance_type="b200-x8",
    )
    config = DeployConfig.model_validate(
        {"compute": {"min_replicas": 1, "max_replicas": 10}, "autoscaling": {"cooldown": 600}, "model": {"name": "chat"}}
    )
    body = FriendliTarget(settings).plan(Bundle.load(weights_bundle), config).body
    client, recorder = recording_client(team=None)
    with client:
        client.create_endpoint(body)
    assert recorder.problems() == []
    assert set(body["advanced"]) == {"max_batch_size", "max_token_count", "max_input_length", "enable_content_logging",
                                      "tokenizer_add_special_tokens", "tokenizer_skip_special_tokens"}


def test_inference_requests_match_the_spec():
    client, recorder = recording_client()
    with client:
        client.chat_completions(chat_body("ep-1", "what is this?", [PNG, PNG], max_tokens=32))
        client.chat_completions(chat_body("ep-1", "text only", []))
        client.embeddings(embeddings_body("ep-1", ["one"]))
        client.embeddings(embeddings_body("ep-1", ["one", "two"]))
    assert recorder.problems() == []


def test_the_checker_has_teeth():
    """What the real server would silently ignore or reject is reported."""
    c = contract()
    auth = {"Authorization": "Bearer x"}
    assert "'projectId' is not declared" in " ".join(c.request_problems("GET", "/dedicated/beta/endpoint", [("projectId", "p")], auth, b""))
    assert c.request_problems("GET", "/dedicated/beta/endpoint", [("limit", "101")], auth, b"")
    assert c.request_problems("GET", "/dedicated/beta/endpoint", [], {}, b"")  # no bearer token
    assert c.request_problems("GET", "/dedicated/beta/endpoints", [], auth, b"")  # no such path
    assert c.request_problems("GET", "/dedicated/beta/endpoint/e1", [], {**auth, "X-Friendli-Project": "p"}, b"")
    body = {"projectId": "p", "name": "n", "instanceOptionId": "x", "hfModelRepo": "o/m",
            "advanced": {"tokenizer_add_special_tokens": False, "tokenizer_skip_special_tokens": True}}
    assert c.request_problems("POST", "/dedicated/beta/endpoint", [], auth, json.dumps(body).encode()) == []
    for bad in ({**body, "minReplicas": 0}, {**body, "autoscalingPolicy": {"maxReplica": 11}}, {**body, "advanced": {}}):
        assert c.request_problems("POST", "/dedicated/beta/endpoint", [], auth, json.dumps(bad).encode()), bad
    status = "/dedicated/beta/endpoint/e1/status"
    assert c.response_problems("GET", status, 200, json.dumps(STATUS).encode(), "application/json") == []
    for bad_answer in ({"status": "RUNNING"}, {**STATUS, "name": "x"}, {**STATUS, "status": "DEPLOYED"}):
        assert c.response_problems("GET", status, 200, json.dumps(bad_answer).encode(), "application/json"), bad_answer
    assert c.response_problems("GET", status, 409, b"{}", "application/json")  # not a documented answer


# --- what mmship knows, against the spec ---------------------------------------------------


def test_the_instance_table_is_the_documented_one():
    documented = contract().instance_options
    assert len(documented) == 16
    assert {oid: text for oid, text in INSTANCE_OPTIONS.values()} == documented


def test_every_documented_error_code_has_a_fix():
    assert set(contract().enum("InferenceDeploymentErrorCode")) <= set(ERROR_FIXES)


def test_every_documented_status_is_classified_once():
    from mmship.plugins.targets.friendli.watch import DEPLOYED, GONE, IN_PROGRESS, RESTARTABLE

    statuses = set(contract().enum("InferenceDeploymentStatus"))
    groups = [DEPLOYED, GONE, IN_PROGRESS, frozenset({"FAILED"})]
    assert set().union(*groups) == statuses
    assert sum(len(g) for g in groups) == len(statuses)
    assert RESTARTABLE <= statuses


# --- the fake's answers --------------------------------------------------------------------


def call(fake, method, path, *, team=None, **kwargs):
    headers = {"Authorization": f"Bearer {fake.token}"}
    if team:
        headers["X-Friendli-Team"] = team
    return httpx.request(method, f"{fake.url}{path}", headers=headers, timeout=5, **kwargs)


def create_body(**changes):
    body = {"projectId": "p1", "name": "n", "instanceOptionId": "ShbPuOs4tfGb", "hfModelRepo": "org/m",
            "advanced": {"tokenizer_add_special_tokens": False, "tokenizer_skip_special_tokens": True}}
    return {**body, **changes}


def test_the_fake_accepts_what_the_spec_documents(fake):
    for option in contract().instance_options:
        assert call(fake, "POST", "/dedicated/beta/endpoint", json=create_body(instanceOptionId=option)).status_code == 200
    advanced = {"tokenizer_add_special_tokens": True, "tokenizer_skip_special_tokens": False, "max_batch_size": 384,
                "max_token_count": 8192, "enable_content_logging": None, "max_input_length": 4096, "max_context_length": 8192,
                "queue_timeout_ms": 500, "queue_backpressure_metric_kind": "TTFT_MS", "queue_backpressure_metric_threshold": 2.5}
    answer = call(fake, "POST", "/dedicated/beta/endpoint",
                  json=create_body(advanced=advanced, simplescale={"replicas": 2}, hfModelRepoRevision="v1", initialVersionComment="c"))
    assert answer.status_code == 200 and answer.json()["status"] == "INITIALIZING"
    running = fake.add_endpoint("p1", "chat")
    chat = {"model": running, "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}, {"type": "text", "text": "hi"}]}]}
    assert call(fake, "POST", "/dedicated/v1/chat/completions", json=chat).json()["choices"][0]["message"]["content"].startswith("I see 1")
    tokens = call(fake, "POST", "/dedicated/v1/embeddings", json={"model": running, "tokens": [1, 2, 3]})
    assert tokens.status_code == 200 and len(tokens.json()["data"]) == 1


def test_the_fake_refuses_as_documented(fake):
    def validation_error(answer):
        assert answer.status_code == 422
        assert contract().schema_errors("HTTPValidationError", answer.json()) == []
        return answer.json()["detail"]

    detail = validation_error(call(fake, "POST", "/dedicated/beta/endpoint", json={"name": "x"}))
    assert ["body", "projectId"] in [d["loc"] for d in detail]
    detail = validation_error(call(fake, "POST", "/dedicated/beta/endpoint", json=create_body(instanceOptionId="nope")))
    assert detail[0]["loc"] == ["body", "instanceOptionId"]
    validation_error(call(fake, "GET", "/dedicated/beta/endpoint", params={"limit": 500}))
    validation_error(call(fake, "POST", "/dedicated/v1/embeddings", json={"model": fake.add_endpoint("p1", "e")}))
    assert call(fake, "GET", "/dedicated/beta/endpoint/nope/status").status_code == 404
    assert call(fake, "PUT", f"/dedicated/beta/endpoint/{fake.add_endpoint('p1', 'r')}/restart").status_code == 400
    fake.take_violations()  # the bad requests above were sent on purpose


def test_the_fake_scopes_by_team_and_by_project_id(fake):
    mine = fake.add_endpoint("p1", "a")
    other_project = fake.add_endpoint("p2", "a")
    other_team = fake.add_endpoint("p1", "a", team="team-42")
    assert set(call(fake, "GET", "/dedicated/beta/endpoint", params={"project_id": "p1"}).json()["data"]) == {mine}
    assert set(call(fake, "GET", "/dedicated/beta/endpoint").json()["data"]) == {mine, other_project}
    # an undeclared parameter is ignored, as FriendliAI's server does: the whole team is listed
    assert set(call(fake, "GET", "/dedicated/beta/endpoint", params={"projectId": "p1"}).json()["data"]) == {mine, other_project}
    assert fake.take_violations()  # ...and recorded as a contract violation
    assert call(fake, "GET", f"/dedicated/beta/endpoint/{other_team}").status_code == 404
    assert call(fake, "GET", f"/dedicated/beta/endpoint/{other_team}", team="team-42").json()["teamId"] == "team-42"
    assert call(fake, "GET", f"/dedicated/beta/endpoint/{mine}").json()["teamId"] == DEFAULT_TEAM


def test_the_fake_deletes_slowly_and_wakes_on_request(fake):
    doomed = fake.add_endpoint("p1", "d")
    assert call(fake, "DELETE", f"/dedicated/beta/endpoint/{doomed}").status_code == 200
    seen = [call(fake, "GET", f"/dedicated/beta/endpoint/{doomed}/status") for _ in range(fake.terminating_reads + 1)]
    assert [r.json()["status"] for r in seen[:-1]] == ["TERMINATING"] * fake.terminating_reads
    assert seen[-1].status_code == 404
    sleeper = fake.add_endpoint("p1", "s", status="SLEEPING")
    answer = call(fake, "POST", "/dedicated/v1/embeddings", json={"model": sleeper, "input": "wake up"})
    assert answer.status_code == 200
    assert call(fake, "GET", f"/dedicated/beta/endpoint/{sleeper}/status").json()["status"] == "RUNNING"


def test_every_answer_of_a_whole_lifecycle_matches_the_spec(fake):
    created = call(fake, "POST", "/dedicated/beta/endpoint", json=create_body(hfModelRepo="private/m"))
    (endpoint_id,) = fake.endpoints
    assert created.status_code == 200
    states = [call(fake, "GET", f"/dedicated/beta/endpoint/{endpoint_id}/status").json() for _ in range(2)]
    assert states[-1]["status"] == "FAILED" and states[-1]["errorCode"] == "WORKLOAD_INIT_CANNOT_ACCESS_REPO_ERROR"
    fake.endpoints[endpoint_id]["repo"] = "org/m"  # the user fixed the repo's access
    assert call(fake, "PUT", f"/dedicated/beta/endpoint/{endpoint_id}/restart").json()["status"] == "INITIALIZING"
    while call(fake, "GET", f"/dedicated/beta/endpoint/{endpoint_id}/status").json()["status"] != "RUNNING":
        pass
    for op, expected in (("sleep", "SLEEPING"), ("wake", "AWAKING"), ("terminate", "TERMINATED"), ("restart", "INITIALIZING")):
        assert call(fake, "PUT", f"/dedicated/beta/endpoint/{endpoint_id}/{op}").json()["status"] == expected
    assert call(fake, "GET", f"/dedicated/beta/endpoint/{endpoint_id}").json()["name"] == "n"
    assert call(fake, "GET", "/dedicated/beta/endpoint", params={"project_id": "p1", "limit": 1}).json()["nextCursor"] is None
    assert call(fake, "DELETE", f"/dedicated/beta/endpoint/{endpoint_id}").json() == {}
    assert fake.violations == []  # every answer above was checked against the spec as it was sent
