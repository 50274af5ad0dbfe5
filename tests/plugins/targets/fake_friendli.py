"""A fake FriendliAI Dedicated Endpoints API on 127.0.0.1, for tests.

Implements the documented paths (create, list with pagination, get, status, delete,
sleep, wake, chat completions, embeddings) with the real shapes: the list answer is
``{"data": {id: status}, "nextCursor"}``, a create answers a status object without an id.
Each ``GET .../status`` advances an initializing endpoint one phase:
REQUESTING_VIRTUAL_MACHINE -> DOWNLOADING_MODEL -> ENGINE_INITIALIZING -> RUNNING.
Repos whose name starts with ``private/`` fail at DOWNLOADING_MODEL with
WORKLOAD_INIT_CANNOT_ACCESS_REPO_ERROR, ``oom/`` at ENGINE_INITIALIZING with
INFERENCE_ENGINE_MEMORY_ERROR. ``inject(...)`` queues transient errors (429/503 with
Retry-After) for the next matching requests. A wrong token is echoed in the 401 body, so
tests can prove mmship redacts it.
"""

from __future__ import annotations

import base64
import datetime as dt
import socket
import threading
import time
import uuid
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

TOKEN = "flp_FAKE_SECRET_c0ffee_0123456789"
PHASES = ["REQUESTING_VIRTUAL_MACHINE", "DOWNLOADING_MODEL", "ENGINE_INITIALIZING"]
INSTANCE_IDS = {"ShbPuOs4tfGb", "TwD5AqnBSVN0", "LnK1wTaKc7WO", "Tu6GjBnfHPe4", "zfTutSiLn0Hq"}
FAILURES = {"private/": ("DOWNLOADING_MODEL", "WORKLOAD_INIT_CANNOT_ACCESS_REPO_ERROR"),
            "oom/": ("ENGINE_INITIALIZING", "INFERENCE_ENGINE_MEMORY_ERROR")}


class Advanced(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokenizer_skip_special_tokens: bool
    tokenizer_add_special_tokens: bool
    max_batch_size: int | None = None
    max_token_count: int | None = None
    max_input_length: int | None = None
    enable_content_logging: bool | None = None


class Autoscaling(BaseModel):
    model_config = ConfigDict(extra="forbid")
    minReplica: int | None = None
    maxReplica: int | None = None
    cooldownPeriod: int | None = None


class CreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    projectId: str
    name: str
    instanceOptionId: str
    advanced: Advanced
    hfModelRepo: str | None = None
    hfModelRepoRevision: str | None = None
    autoscalingPolicy: Autoscaling | None = None
    simplescale: dict[str, Any] | None = None
    initialVersionComment: str | None = None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


class FakeFriendli:
    """The fake API's state and its FastAPI app; ``start()`` serves it on loopback."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.lock = threading.Lock()
        self.reset()
        self.app = self._build_app()
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.url = ""

    def reset(self) -> None:
        """Forget endpoints, recorded requests and injected errors."""
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.injected: list[tuple[str, str, int, dict[str, str]]] = []
        self.counter = 0

    def inject(self, method: str, path_prefix: str, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` matching requests with ``status``."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.injected += [(method, path_prefix, status, headers)] * times

    def status_of(self, endpoint: dict[str, Any]) -> dict[str, Any]:
        keys = ("status", "phase", "errorCode", "createdAt", "updatedAt")
        return {k: endpoint.get(k) for k in keys if endpoint.get(k) is not None or k in ("status", "createdAt")}

    def add_endpoint(self, project: str, name: str, status: str = "RUNNING", repo: str = "org/model") -> str:
        """Create an endpoint directly (for list/status tests)."""
        with self.lock:
            self.counter += 1
            endpoint_id = f"ep{self.counter:03d}{uuid.uuid4().hex[:6]}"
            self.endpoints[endpoint_id] = {
                "id": endpoint_id, "name": name, "projectId": project, "status": status, "phase": None,
                "createdAt": f"2026-01-01T00:00:{self.counter:02d}+00:00", "updatedAt": _now(), "repo": repo,
                "body": {}, "step": 3,
            }
            return endpoint_id

    # --- app -----------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI()
        fake = self

        @app.middleware("http")
        async def record_and_inject(request: Request, call_next: Any) -> Any:
            body = await request.body()
            fake.requests.append({
                "method": request.method, "path": request.url.path, "query": dict(request.query_params),
                "headers": dict(request.headers), "body": body.decode("utf-8", "replace"),
            })
            for i, (method, prefix, status, headers) in enumerate(fake.injected):
                if request.method == method and request.url.path.startswith(prefix):
                    del fake.injected[i]
                    return JSONResponse({"detail": f"injected {status}"}, status_code=status, headers=headers)
            return await call_next(request)

        def auth(authorization: str | None = Header(None)) -> None:
            if not authorization:
                raise HTTPException(401, "missing Authorization header")
            presented = authorization.removeprefix("Bearer ").strip()
            if presented != fake.token:
                raise HTTPException(401, f"invalid token {presented}")

        def get(endpoint_id: str) -> dict[str, Any]:
            if endpoint_id not in fake.endpoints:
                raise HTTPException(404, f"endpoint {endpoint_id} not found")
            return fake.endpoints[endpoint_id]

        @app.post("/dedicated/beta/endpoint", dependencies=[Depends(auth)])
        def create(body: CreateBody) -> dict[str, Any]:
            if body.instanceOptionId not in INSTANCE_IDS:
                raise HTTPException(422, f"unknown instanceOptionId {body.instanceOptionId}")
            if body.autoscalingPolicy and (body.autoscalingPolicy.maxReplica or 0) > 10:
                raise HTTPException(422, "maxReplica must be <= 10")
            endpoint_id = fake.add_endpoint(body.projectId, body.name, status="INITIALIZING", repo=body.hfModelRepo or "")
            endpoint = fake.endpoints[endpoint_id]
            endpoint.update(phase=PHASES[0], step=0, body=body.model_dump(exclude_none=True))
            return fake.status_of(endpoint)

        @app.get("/dedicated/beta/endpoint", dependencies=[Depends(auth)])
        def list_endpoints(projectId: str = "", limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
            ids = [i for i, e in fake.endpoints.items() if not projectId or e["projectId"] == projectId]
            start = int(cursor) if cursor else 0
            page = ids[start:start + limit]
            more = start + limit < len(ids)
            return {"data": {i: fake.status_of(fake.endpoints[i]) for i in page}, "nextCursor": str(start + limit) if more else None}

        @app.get("/dedicated/beta/endpoint/{endpoint_id}", dependencies=[Depends(auth)])
        def spec(endpoint_id: str) -> dict[str, Any]:
            e = get(endpoint_id)
            policy = e["body"].get("autoscalingPolicy", {})
            return {
                "name": e["name"], "projectId": e["projectId"], "gpuType": "A100", "numGpu": 1, "creatorId": "u1",
                "teamId": "t1", "autoscalingMin": policy.get("minReplica", 1), "autoscalingMax": policy.get("maxReplica", 1),
                "autoscalingCooldown": policy.get("cooldownPeriod", 300),
                "maxBatchSize": e["body"].get("advanced", {}).get("max_batch_size", 256),
                "tokenizerSkipSpecialTokens": True, "tokenizerAddSpecialTokens": False,
            }

        @app.get("/dedicated/beta/endpoint/{endpoint_id}/status", dependencies=[Depends(auth)])
        def status(endpoint_id: str) -> dict[str, Any]:
            e = get(endpoint_id)
            with fake.lock:
                if e["status"] == "INITIALIZING":
                    e["step"] += 1
                    failure = next((f for p, f in FAILURES.items() if e["repo"].startswith(p)), None)
                    if e["step"] >= len(PHASES):
                        e.update(status="RUNNING", phase=None)
                    else:
                        e["phase"] = PHASES[e["step"]]
                    if failure is not None and e.get("phase") == failure[0]:
                        e.update(status="FAILED", errorCode=failure[1])
                elif e["status"] == "AWAKING":
                    e["status"] = "RUNNING"
                e["updatedAt"] = _now()
            return fake.status_of(e)

        @app.delete("/dedicated/beta/endpoint/{endpoint_id}", dependencies=[Depends(auth)])
        def delete(endpoint_id: str) -> dict[str, Any]:
            get(endpoint_id)
            del fake.endpoints[endpoint_id]
            return {}

        @app.put("/dedicated/beta/endpoint/{endpoint_id}/sleep", dependencies=[Depends(auth)])
        def sleep(endpoint_id: str) -> dict[str, Any]:
            e = get(endpoint_id)
            e.update(status="SLEEPING", phase=None)
            return fake.status_of(e)

        @app.put("/dedicated/beta/endpoint/{endpoint_id}/wake", dependencies=[Depends(auth)])
        def wake(endpoint_id: str) -> dict[str, Any]:
            e = get(endpoint_id)
            e.update(status="AWAKING", phase=None)
            return fake.status_of(e)

        def running(model: str) -> dict[str, Any]:
            e = get(model)
            if e["status"] != "RUNNING":
                raise HTTPException(400, f"endpoint {model} is {e['status']}, not RUNNING")
            return e

        @app.post("/dedicated/v1/chat/completions", dependencies=[Depends(auth)])
        def chat(body: dict[str, Any]) -> dict[str, Any]:
            running(str(body.get("model")))
            content = body["messages"][-1]["content"]
            parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
            images = 0
            for part in parts:
                if part.get("type") == "image_url":
                    url = part["image_url"]["url"]
                    if not url.startswith("data:image/") or ";base64," not in url:
                        raise HTTPException(422, "image_url must be a data URI")
                    base64.b64decode(url.split(",", 1)[1], validate=True)
                    images += 1
            text = " ".join(p["text"] for p in parts if p.get("type") == "text")
            return {
                "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": f"I see {images} image(s) and read: {text}"}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }

        @app.post("/dedicated/v1/embeddings", dependencies=[Depends(auth)])
        def embeddings(body: dict[str, Any]) -> dict[str, Any]:
            running(str(body.get("model")))
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [{"object": "embedding", "index": i, "embedding": [float(len(t) + k) for k in range(8)]} for i, t in enumerate(texts)]
            return {"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)}}

        return app

    # --- server --------------------------------------------------------------------------

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
