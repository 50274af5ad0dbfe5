"""A fake FriendliAI Dedicated Endpoints API on 127.0.0.1, built from FriendliAI's spec.

Everything the fake knows about the API comes from ``friendli_openapi.yaml`` (FriendliAI's
published OpenAPI spec, see :mod:`.friendli_contract`), never from mmship's client:

* routing: a request goes to the spec operation its method and path match (``operationId``);
  unknown paths answer 404, and operations the fake does not implement answer 400;
* checking: each request is validated against the spec and answered 422 with the spec's
  ``HTTPValidationError`` body where the real server rejects it; what the real server
  silently ignores (an undeclared query parameter such as ``projectId``, an undeclared body
  field) is honoured the same way (ignored) and recorded in :attr:`FakeFriendli.violations`,
  as is every answer the fake gives that breaks the spec. The test fixture fails a test that
  leaves violations behind;
* values: the documented instance ids (parsed from the ``instanceOptionId`` description),
  statuses, phases, error codes and defaults (``AutoscalingPolicy``: minReplica 0,
  maxReplica 1, cooldown 300; list ``limit`` 20, ``project_id`` '' = the whole team).

Scoping: the token belongs to :data:`DEFAULT_TEAM`; ``X-Friendli-Team`` selects another team,
and an endpoint is visible only to requests of its team. The list filters by ``project_id``.

Lifecycle: each ``GET .../status`` of an INITIALIZING endpoint advances one documented phase,
then RUNNING. Repos starting with ``private/`` fail at DOWNLOADING_MODEL with
WORKLOAD_INIT_CANNOT_ACCESS_REPO_ERROR, ``oom/`` at ENGINE_INITIALIZING with
INFERENCE_ENGINE_MEMORY_ERROR. A delete leaves the endpoint TERMINATING for
``terminating_reads`` observations (list, spec or status), then it is gone. sleep/wake/
restart/terminate move between the documented states (restart: FAILED or TERMINATED only),
and a chat or embeddings request to a SLEEPING endpoint wakes it. ``inject`` answers the next
matching requests with a fault before the API acts (429/503 with Retry-After);
``lose_answer`` lets the API act, then loses the answer (a 5xx, or an answer slower than the
client's timeout). A wrong token is echoed in the 401 body, so tests can prove mmship redacts it.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import re
import socket
import threading
import time
import uuid
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.plugins.targets.friendli_contract import Operation, contract

TOKEN = "flp_FAKE_SECRET_c0ffee_0123456789"
DEFAULT_TEAM = "team-default"
#: What the engine uses when ``advanced.max_batch_size`` is not sent (the spec only says "an integer").
ENGINE_BATCH = 256
FAILURES = {"private/": ("DOWNLOADING_MODEL", "WORKLOAD_INIT_CANNOT_ACCESS_REPO_ERROR"),
            "oom/": ("ENGINE_INITIALIZING", "INFERENCE_ENGINE_MEMORY_ERROR")}
SERVING = ("RUNNING", "READY")


class Refusal(Exception):
    """An error answer: ``status`` and the ``detail`` of its body."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(str(detail))
        self.status, self.detail = status, detail


def invalid(loc: list[Any], msg: str, kind: str = "value_error") -> Refusal:
    """A 422 in the spec's ``HTTPValidationError`` shape."""
    return Refusal(422, [{"loc": loc, "msg": msg, "type": kind}])


def _stamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeFriendli:
    """The fake API's state and its Starlette app; ``start()`` serves it on loopback."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.contract = contract()
        self.phases = self.contract.phases
        self.lock = threading.Lock()
        self.reset()
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])])
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.url = ""

    def reset(self) -> None:
        """Forget endpoints, recorded requests, injected faults and violations."""
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.injected: list[tuple[str, str, int, dict[str, str]]] = []
        self.lost: list[tuple[str, str, int, float | None]] = []
        self.violations: list[str] = []
        self.counter = 0
        self.terminating_reads = 3

    def take_violations(self) -> list[str]:
        """The recorded contract violations, cleared."""
        found, self.violations = self.violations, []
        return found

    def inject(self, method: str, path_prefix: str, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` matching requests with ``status`` before the API acts."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.injected += [(method, path_prefix, status, headers)] * times

    def lose_answer(self, method: str, path_prefix: str, *, status: int = 500, delay_s: float | None = None, times: int = 1) -> None:
        """Let the next ``times`` matching requests act, then answer ``status`` instead (or
        the real answer after ``delay_s`` seconds)."""
        self.lost += [(method, path_prefix, status, delay_s)] * times

    def add_endpoint(self, project: str, name: str, status: str = "RUNNING", repo: str = "org/model",
                     team: str = DEFAULT_TEAM, error_code: str | None = None) -> str:
        """Create an endpoint directly (for list/status tests)."""
        with self.lock:
            return self._new_endpoint(team, project, name, status, repo, {}, error_code)

    def _new_endpoint(self, team: str, project: str, name: str, status: str, repo: str, body: dict[str, Any],
                      error_code: str | None = None) -> str:
        self.counter += 1
        endpoint_id = f"ep{self.counter:03d}{uuid.uuid4().hex[:6]}"
        self.endpoints[endpoint_id] = {
            "id": endpoint_id, "name": name, "projectId": project, "teamId": team, "status": status,
            "phase": None, "errorCode": error_code, "repo": repo, "body": body, "step": 0, "ticks": 0,
            "createdAt": _stamp(1_767_225_600 + self.counter), "updatedAt": _stamp(time.time()),
        }
        return endpoint_id

    # --- the spec's objects ---------------------------------------------------------------

    def status_of(self, e: dict[str, Any]) -> dict[str, Any]:
        """A ``DedicatedEndpointStatus``."""
        out = {"status": e["status"], "createdAt": e["createdAt"], "updatedAt": e["updatedAt"]}
        if e["phase"]:
            out["phase"] = e["phase"]
        if e["errorCode"]:
            out["errorCode"] = e["errorCode"]
        return out

    def spec_of(self, e: dict[str, Any]) -> dict[str, Any]:
        """A ``DedicatedEndpointSpec``."""
        body = e["body"]
        policy = body.get("autoscalingPolicy") or {}
        if body.get("simplescale"):
            low = high = body["simplescale"]["replicas"]
        else:
            low = policy.get("minReplica", self.contract.default("AutoscalingPolicy", "minReplica"))
            high = policy.get("maxReplica", self.contract.default("AutoscalingPolicy", "maxReplica"))
        option = self.contract.instance_options.get(body.get("instanceOptionId", ""), "1x NVIDIA A100 80GB")
        count, _, gpu = option.partition("x ")
        advanced = body.get("advanced", {})
        replicas = 0 if e["status"] == "SLEEPING" else max(low, 1 if e["status"] in SERVING else 0)
        return {
            "name": e["name"], "gpuType": gpu, "numGpu": int(count), "projectId": e["projectId"],
            "creatorId": "user-fake", "teamId": e["teamId"], "autoscalingMin": low, "autoscalingMax": high,
            "autoscalingCooldown": policy.get("cooldownPeriod", self.contract.default("AutoscalingPolicy", "cooldownPeriod")),
            "maxBatchSize": advanced.get("max_batch_size") or ENGINE_BATCH,
            "maxInputLength": advanced.get("max_input_length"),
            "tokenizerSkipSpecialTokens": advanced.get("tokenizer_skip_special_tokens", True),
            "tokenizerAddSpecialTokens": advanced.get("tokenizer_add_special_tokens", False),
            "currReplicaCnt": replicas, "desiredReplicaCnt": replicas,
        }

    # --- state ----------------------------------------------------------------------------

    def _observe(self, endpoint_id: str, team: str) -> dict[str, Any] | None:
        """The endpoint if ``team`` can see it; a TERMINATING one is gone after enough reads."""
        e = self.endpoints.get(endpoint_id)
        if e is None or e["teamId"] != team:
            return None
        if e["status"] == "TERMINATING":
            e["ticks"] -= 1
            if e["ticks"] < 0:
                del self.endpoints[endpoint_id]
                return None
        return e

    def _visible(self, endpoint_id: str, team: str) -> dict[str, Any]:
        e = self._observe(endpoint_id, team)
        if e is None:
            raise Refusal(404, f"endpoint {endpoint_id} not found")
        return e

    def _move(self, e: dict[str, Any], status: str, phase: str | None = None, error: str | None = None) -> dict[str, Any]:
        e.update(status=status, phase=phase, errorCode=error, updatedAt=_stamp(time.time()))
        return self.status_of(e)

    def _advance(self, e: dict[str, Any]) -> None:
        if e["status"] == "AWAKING":
            self._move(e, "RUNNING")
        if e["status"] != "INITIALIZING":
            return
        e["step"] += 1
        if e["step"] >= len(self.phases):
            self._move(e, "RUNNING")
            return
        phase = self.phases[e["step"]]
        failure = next((f for prefix, f in FAILURES.items() if e["repo"].startswith(prefix)), None)
        if failure is not None and failure[0] == phase:
            self._move(e, "FAILED", phase, failure[1])
        else:
            self._move(e, "INITIALIZING", phase)

    # --- operations (by operationId) ------------------------------------------------------

    def dedicatedCreateEndpoint(self, team: str, params: dict[str, Any], body: dict[str, Any]) -> Any:
        if body["instanceOptionId"] not in self.contract.instance_options:
            raise invalid(["body", "instanceOptionId"], f"unknown instance option {body['instanceOptionId']!r}")
        endpoint_id = self._new_endpoint(team, body["projectId"], body["name"], "INITIALIZING", body["hfModelRepo"], body)
        return self._move(self.endpoints[endpoint_id], "INITIALIZING", self.phases[0])

    def dedicatedListEndpoints(self, team: str, params: dict[str, Any], body: Any) -> Any:
        project, limit = params["project_id"], params["limit"]  # documented defaults: '' (the whole team), 20
        ids = [i for i in list(self.endpoints) if (not project or self.endpoints[i]["projectId"] == project)
               and self._observe(i, team) is not None]
        start = int(params.get("cursor") or 0)
        page = ids[start:start + limit]
        more = start + limit < len(ids)
        return {"data": {i: self.status_of(self.endpoints[i]) for i in page}, "nextCursor": str(start + limit) if more else None}

    def dedicatedGetEndpoint(self, team: str, params: dict[str, Any], body: Any) -> Any:
        return self.spec_of(self._visible(params["endpoint_id"], team))

    def dedicatedGetEndpointStatus(self, team: str, params: dict[str, Any], body: Any) -> Any:
        e = self._visible(params["endpoint_id"], team)
        self._advance(e)
        return self.status_of(e)

    def dedicatedDeleteEndpoint(self, team: str, params: dict[str, Any], body: Any) -> Any:
        e = self._visible(params["endpoint_id"], team)
        e["ticks"] = self.terminating_reads
        self._move(e, "TERMINATING")
        return {}

    def _transition(self, team: str, params: dict[str, Any], allowed: tuple[str, ...], to: str, keep: tuple[str, ...] = ()) -> Any:
        e = self._visible(params["endpoint_id"], team)
        if e["status"] in keep:
            return self.status_of(e)
        if e["status"] not in allowed:
            raise Refusal(400, f"endpoint {e['id']} is {e['status']}")
        if to == "INITIALIZING":
            e["step"] = 0
            return self._move(e, to, self.phases[0])
        return self._move(e, to)

    def dedicatedSleepEndpoint(self, team: str, params: dict[str, Any], body: Any) -> Any:
        return self._transition(team, params, ("RUNNING", "READY", "AWAKING"), "SLEEPING", keep=("SLEEPING",))

    def dedicatedWakeEndpoint(self, team: str, params: dict[str, Any], body: Any) -> Any:
        return self._transition(team, params, ("SLEEPING",), "AWAKING", keep=("AWAKING", *SERVING))

    def dedicatedRestartEndpoint(self, team: str, params: dict[str, Any], body: Any) -> Any:
        return self._transition(team, params, ("FAILED", "TERMINATED"), "INITIALIZING")

    def dedicatedTerminateEndpoint(self, team: str, params: dict[str, Any], body: Any) -> Any:
        states = [s for s in self.contract.enum("InferenceDeploymentStatus") if s not in ("TERMINATING", "TERMINATED")]
        return self._transition(team, params, tuple(states), "TERMINATED")

    def _serving(self, team: str, model: str) -> dict[str, Any]:
        e = self._observe(model, team)
        if e is None:
            raise invalid(["body", "model"], f"no endpoint {model!r} in this team")
        if e["status"] == "SLEEPING":  # a request wakes a sleeping endpoint
            self._move(e, "RUNNING")
        if e["status"] not in SERVING:
            raise invalid(["body", "model"], f"endpoint {model} is {e['status']}, not serving")
        return e

    def dedicatedChatComplete(self, team: str, params: dict[str, Any], body: dict[str, Any]) -> Any:
        self._serving(team, body["model"])
        content = body["messages"][-1].get("content") or ""
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        images = 0
        for i, part in enumerate(parts):
            if part.get("type") == "image_url":
                url = part["image_url"]["url"]
                if url.startswith("data:"):
                    match = re.fullmatch(r"data:image/[\w.+-]+;base64,([A-Za-z0-9+/=]+)", url)
                    try:
                        base64.b64decode(match.group(1) if match else "!", validate=True)
                    except ValueError:
                        raise invalid(["body", "messages", len(body["messages"]) - 1, "content", i, "image_url", "url"],
                                      "not a base64 image data URI") from None
                images += 1
        text = " ".join(p["text"] for p in parts if p.get("type") == "text")
        self.counter += 1
        return {
            "id": f"chatcmpl-{self.counter}", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f"I see {images} image(s) and read: {text}"}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    def dedicatedEmbeddings(self, team: str, params: dict[str, Any], body: dict[str, Any]) -> Any:
        self._serving(team, body["model"])
        if body.get("input") is None and body.get("tokens") is None:
            raise invalid(["body"], "Either `input` or `tokens` field is required.")
        given = body.get("input")
        items: list[Any] = [given] if isinstance(given, str) else list(given) if given is not None else [body["tokens"]]
        data = [{"object": "embedding", "index": i, "embedding": [float(len(t) + k) for k in range(8)]} for i, t in enumerate(items)]
        self.counter += 1
        return {"id": f"emb-{self.counter}", "object": "list", "created": int(time.time()), "model": body["model"],
                "data": data, "usage": {"prompt_tokens": len(items), "completion_tokens": 0, "total_tokens": len(items)}}

    # --- HTTP -----------------------------------------------------------------------------

    def _take(self, queue: list[Any], method: str, path: str) -> Any:
        for i, item in enumerate(queue):
            if item[0] == method and path.startswith(item[1]):
                return queue.pop(i)
        return None

    async def _handle(self, request: Request) -> Response:
        method, raw_path = request.method, request.scope["raw_path"].decode("ascii")
        query, body = list(request.query_params.multi_items()), await request.body()
        self.requests.append({"method": method, "path": request.url.path, "raw_path": raw_path, "query": dict(query),
                              "headers": dict(request.headers), "body": body.decode("utf-8", "replace")})
        fault = self._take(self.injected, method, request.url.path)
        if fault is not None:
            return JSONResponse({"detail": f"injected {fault[2]}"}, status_code=fault[2], headers=fault[3])
        self.violations += self.contract.request_problems(method, raw_path, query, request.headers, body)
        status, payload = self._answer(method, raw_path, query, request.headers, body)
        lost = self._take(self.lost, method, request.url.path) if status < 400 else None
        if lost is not None and lost[3] is None:
            return JSONResponse({"detail": "answer lost"}, status_code=lost[2])
        if lost is not None:
            await asyncio.sleep(lost[3])
        data = json.dumps(payload).encode()
        if status != 401:  # 401 is the bearer scheme's answer; the spec lists no body for it
            self.violations += self.contract.response_problems(method, raw_path, status, data, "application/json")
        return Response(data, status_code=status, media_type="application/json")

    def _answer(self, method: str, raw_path: str, query: list[tuple[str, str]], headers: Any, raw: bytes) -> tuple[int, Any]:
        presented = (headers.get("authorization") or "").removeprefix("Bearer ").strip()
        if not presented:
            return 401, {"detail": "missing Authorization header"}
        if presented != self.token:
            return 401, {"detail": f"invalid token {presented}"}
        op = self.contract.operation(method, raw_path)
        if op is None:
            return 404, {"detail": "Not Found"}
        params, errors = self.contract.query(method, raw_path, query)
        try:
            if errors:
                raise Refusal(422, [{"loc": loc, "msg": msg, "type": kind} for loc, msg, kind in errors])
            body = self._checked(op, raw)
            handler = getattr(self, op.id, None)
            if handler is None:
                raise Refusal(400, f"the fake does not implement {op.id}")
            with self.lock:
                return 200, handler(headers.get("x-friendli-team") or DEFAULT_TEAM, {**params, **op.path_params}, body)
        except Refusal as exc:
            return exc.status, {"detail": exc.detail}

    def _checked(self, op: Operation, raw: bytes) -> Any:
        """The JSON body, after the checks the real server makes (422 on failure)."""
        if "requestBody" not in op.spec:
            return None
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise invalid(["body"], "JSON decode error", "json_invalid") from None
        errors = self.contract.body_errors(op, body)
        if errors:
            raise Refusal(422, [{"loc": ["body", *loc], "msg": msg, "type": kind} for loc, msg, kind in errors])
        return body

    # --- server ---------------------------------------------------------------------------

    def start(self) -> FakeFriendli:
        """Serve on 127.0.0.1 at a free port (``self.url``)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake FriendliAI server did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
