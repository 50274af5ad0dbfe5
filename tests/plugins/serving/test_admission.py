"""Admission control: over-budget requests are refused at arrival, before their body is read
or decoded; admitted ones meet the budget; the connection and the server stay sane."""

from __future__ import annotations

import base64
import contextlib
import io
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.helpers.slow_sessions import slow_down

pytestmark = pytest.mark.network

SERVICE_S = 0.2  # every graph run of the slowed server takes this long
BUDGET_MS = 700


def _jpeg_b64(size: int = 64) -> str:
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


# --- a server whose graphs are slowed -------------------------------------------------


@contextlib.contextmanager
def slowed_server(bundle: Path, **settings) -> Iterator[tuple[str, object, threading.Event]]:
    """The bundle served with every graph run taking :data:`SERVICE_S` (batches of one);
    runs are held while the yielded event is cleared."""
    from mmship.serving.process import free_port
    from mmship.serving.serve import build_server
    from mmship.serving.settings import ServerSettings

    port = free_port()
    server = build_server(bundle, ServerSettings(
        host="127.0.0.1", port=port, precision="int8", max_batch_size=1, max_delay_ms=0,
        latency_budget_ms=BUDGET_MS, **settings,
    ))
    app = server.config.app
    gate = threading.Event()
    gate.set()
    for graph in app.state.service.engine.graphs.values():
        slow_down(graph, SERVICE_S, gate)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                break
        time.sleep(0.05)
    else:
        raise RuntimeError("server not ready in time")
    try:
        yield url, app, gate
    finally:
        gate.set()
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the /embed bodies the server decodes."""
    import mmship.plugins.codecs.embed as embed

    calls: list[int] = []
    real = embed.decode_embed_request

    def spy(body, headers):
        calls.append(len(body))
        return real(body, headers)

    monkeypatch.setattr(embed, "decode_embed_request", spy)
    return calls


def _metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_over_budget_requests_are_refused_before_their_body_is_decoded(tiny_clip_bundle, decode_calls):
    image = _jpeg_b64()
    with slowed_server(tiny_clip_bundle) as (url, app, _):
        # The warm-up measured the slowed graphs: about SERVICE_S a request, so the budget
        # of 700 ms admits 3 requests at once (0, 1 and 2 ahead: answers in 0.2, 0.4, 0.6 s).
        assert app.state.admission.default.cost_s == pytest.approx(SERVICE_S, abs=0.1)
        decode_calls.clear()

        # Clients connected beforehand: the timings hold the requests alone.
        clients = [httpx.Client(base_url=url, timeout=30) for _ in range(12)]
        for client in clients:
            client.get("/v2/health/live")
        go = threading.Barrier(12)

        def one(client: httpx.Client) -> tuple[int, float, httpx.Headers, str]:
            go.wait()
            start = time.perf_counter()
            response = client.post("/embed", json={"images": [image]})
            return response.status_code, time.perf_counter() - start, response.headers, response.text

        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(one, clients))
        for client in clients:
            client.close()
        admitted = [r for r in results if r[0] == 200]
        refused = [r for r in results if r[0] == 503]
        assert len(admitted) + len(refused) == 12, [r[0] for r in results]
        assert 2 <= len(admitted) <= 5, [r[0] for r in results]
        # The refused bodies were never decoded: only the admitted ones were.
        assert len(decode_calls) == len(admitted)
        for _, seconds, headers, text in refused:
            assert int(headers["retry-after"]) >= 1
            assert "latency budget of 700 ms" in text and "Fix:" in text
        # Without admission the 12th request would take 12 x 0.2 s = 2.4 s; admitted ones
        # are answered within the budget (plus slack for a loaded machine).
        assert max(r[1] for r in admitted) < BUDGET_MS / 1000 + 0.5, [r[1] for r in admitted]
        metrics = httpx.get(f"{url}/metrics").text
        assert _metric(metrics, f'mmship_admission_refused_total{{model="{app.state.service.name}",reason="budget"}}') == len(refused)
        assert _metric(metrics, 'mmship_requests_total{model="",route="/embed",status="503"}') == len(refused)
        assert app.state.admission.default.inflight == 0
        # The answers now measure the cost of a place in line: about SERVICE_S.
        assert app.state.admission.default.cost_s == pytest.approx(SERVICE_S, abs=0.1)


def test_a_refused_body_is_discarded_and_the_connection_stays_usable(tiny_clip_bundle, decode_calls):
    big = {"images": [_jpeg_b64(512)] * 8, "texts": ["x" * 1000] * 8}
    with slowed_server(tiny_clip_bundle) as (url, app, gate):
        decode_calls.clear()
        gate.clear()  # the graphs hold every run: requests stay in flight
        with ThreadPoolExecutor(3) as pool, httpx.Client(base_url=url, timeout=30) as client:
            # As many requests in flight as the 700 ms budget admits (3 at 0.2 s a place).
            room = _room(app)
            busy = [pool.submit(httpx.post, f"{url}/embed", json={"texts": ["a cat"]}, timeout=30) for _ in range(room)]
            _wait_for(lambda: app.state.admission.default.inflight == room)
            refused = client.post("/embed", json=big)
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"].isdigit()
            # The same connection carries the next requests: the unread body was discarded.
            assert client.get("/v2/health/ready").status_code == 200
            gate.set()
            assert [f.result().status_code for f in busy] == [200] * room
            ok = client.post("/embed", json={"texts": ["a photo of a cat"]})
            assert ok.status_code == 200, ok.text
            assert len(ok.json()["text_embeds"]) == 1
        assert len(decode_calls) == room + 1  # the busy ones and the last; never the refused one


def _room(app) -> int:
    """How many requests the budget admits at the warm-up's cost (3 at 0.2 s; fewer on a
    machine so loaded that the slowed runs took longer). Nothing is answered while the
    gate is closed, so the cost stays what it is now."""
    room = int(BUDGET_MS / 1000 / app.state.admission.default.cost_s + 1e-9)
    assert room >= 1
    return room


def _wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


def test_health_metrics_and_get_routes_are_never_refused(tiny_clip_bundle):
    with slowed_server(tiny_clip_bundle) as (url, app, gate):
        gate.clear()
        room = _room(app)
        with ThreadPoolExecutor(room) as pool:
            busy = [pool.submit(httpx.post, f"{url}/embed", json={"texts": ["a"]}, timeout=30) for _ in range(room)]
            _wait_for(lambda: app.state.admission.default.inflight == room)
            assert httpx.post(f"{url}/embed", json={"texts": ["b"]}).status_code == 503
            openai = httpx.post(f"{url}/v1/embeddings", json={"input": "b"})
            assert openai.status_code == 503 and openai.headers["retry-after"].isdigit()
            assert openai.json()["error"]["code"] == "overloaded" and "Fix:" in openai.json()["error"]["message"]
            assert httpx.get(f"{url}/v2/health/ready").status_code == 200
            assert httpx.get(f"{url}/v2/health/live").status_code == 200
            assert f"mmship_admission_inflight{{model=\"{app.state.service.name}\"}} {room:.1f}" in httpx.get(f"{url}/metrics").text
            assert httpx.get(f"{url}/v1/models").status_code == 200
            gate.set()
            assert [f.result().status_code for f in busy] == [200] * room


def test_unauthenticated_requests_get_401_not_503(tiny_clip_bundle):
    key = "k" * 32
    with slowed_server(tiny_clip_bundle, api_key=key) as (url, app, gate):
        auth = {"Authorization": f"Bearer {key}"}
        gate.clear()
        room = _room(app)
        with ThreadPoolExecutor(room) as pool:
            busy = [pool.submit(httpx.post, f"{url}/embed", json={"texts": ["a"]}, headers=auth, timeout=30) for _ in range(room)]
            _wait_for(lambda: app.state.admission.default.inflight == room)
            assert httpx.post(f"{url}/embed", json={"texts": ["b"]}).status_code == 401
            assert httpx.post(f"{url}/embed", json={"texts": ["b"]}, headers=auth).status_code == 503
            gate.set()
            assert [f.result().status_code for f in busy] == [200] * room
