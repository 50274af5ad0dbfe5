"""The admission gate with several models: each model its own line. A request is refused
at arrival when its path names a model over budget, or when no model could take it; a
request whose body names the model joins that model's line once parsed."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from mmship.core.bundle import Bundle
from mmship.serving.admission import AdmissionController
from mmship.serving.admission_gate import ServerAdmission
from mmship.serving.http_errors import HTTPProblem
from tests.helpers.servers import running_app
from tests.helpers.slow_sessions import slow_down

pytestmark = pytest.mark.network


def _gate(registry: CollectorRegistry | None = None, **caps: int) -> ServerAdmission:
    controllers = {name: AdmissionController(budget_s=1.0, max_inflight=cap) for name, cap in caps.items()}
    for controller in controllers.values():
        controller.observe_answer(0, 0.1)  # 100 ms a place: ten fit the budget
    return ServerAdmission(controllers, lambda name: name if name in controllers else "", registry or CollectorRegistry())


def test_a_path_naming_the_model_is_judged_at_arrival_by_that_models_line():
    gate = _gate(a=100, b=100)
    admitted = [gate.arrive("/v2/models/a/infer") for _ in range(10)]
    assert all(refusal is None for _, refusal in admitted)
    _, refusal = gate.arrive("/v2/models/a/infer")  # 11 x 100 ms > 1 s
    assert refusal is not None and refusal.reason == "budget"
    ticket, refusal = gate.arrive("/v2/models/b/infer")  # b's line is empty
    assert refusal is None and ticket.controller is gate.controllers["b"]
    ticket, refusal = gate.arrive("/v2/models/nope/infer")  # no line joined: the route answers 404
    assert refusal is None and ticket.controller is None and not ticket.pending
    for each, _ in admitted:
        each.close(200)
    assert gate.controllers["a"].inflight == 0


def test_a_body_named_model_joins_its_line_once_parsed():
    gate = _gate(a=100, b=100)
    for _ in range(10):
        ticket, refusal = gate.arrive("/embed")
        assert refusal is None and ticket.pending
        ticket.admit("a")
    assert gate.pending == 0 and gate.controllers["a"].inflight == 10
    ticket, refusal = gate.arrive("/embed")  # b could still take it: not refused at arrival
    assert refusal is None and gate.pending == 1
    with pytest.raises(HTTPProblem) as refused:
        ticket.admit("a")
    assert refused.value.status == 503 and int(refused.value.headers["Retry-After"]) >= 1
    assert "model 'a'" in refused.value.message and "Fix:" in refused.value.message
    assert gate.pending == 0
    ticket.close(503)
    assert gate.controllers["a"].inflight == 10
    ticket, _ = gate.arrive("/embed")
    ticket.admit("b")
    assert ticket.controller is gate.controllers["b"]
    ticket.close(200)
    assert gate.controllers["b"].inflight == 0


def test_no_model_could_take_it_refused_before_the_body_is_read():
    gate = _gate(a=100, b=100)
    for name in ("a", "b"):
        for _ in range(10):
            gate.arrive(f"/v2/models/{name}/infer")
    _, refusal = gate.arrive("/embed")
    assert refusal is not None and refusal.reason == "budget"
    assert gate.pending == 0


def test_the_server_wide_cap_counts_requests_whose_model_is_not_known_yet():
    gate = _gate(a=3, b=3)  # at most 6 in progress server-wide
    tickets = [gate.arrive("/embed")[0] for _ in range(6)]
    assert gate.pending == 6
    _, refusal = gate.arrive("/embed")
    assert refusal is not None and refusal.reason == "cap" and "--max-queue" in refusal.message
    for ticket in tickets:
        ticket.close(400)  # a body that failed to parse still leaves
    assert gate.pending == 0
    assert gate.arrive("/embed")[1] is None


def test_refusals_are_counted_by_model_and_reason():
    registry = CollectorRegistry()
    gate = _gate(registry, a=1, b=1)
    gate.arrive("/v2/models/a/infer")
    gate.arrive("/v2/models/a/infer")  # over a's cap
    text = generate_latest(registry).decode()
    assert 'mmship_admission_refused_total{model="a",reason="cap"} 1.0' in text
    assert 'mmship_admission_inflight{model="a"} 1.0' in text
    assert 'mmship_admission_inflight{model="b"} 0.0' in text


def test_a_flooded_model_refuses_its_own_requests_and_the_other_answers(tiny_clip_bundle, tiny_siglip_bundle):
    """Over HTTP: the SigLIP's text graph takes 0.3 s a run and is flooded through /embed
    (the body names the model) until it refuses; CLIP requests on /embed meanwhile are all
    admitted and answered, and the refusals name the SigLIP."""
    from mmship.serving.app import create_app
    from mmship.serving.serve import build_engines
    from mmship.serving.settings import ServerSettings

    clip, siglip = Bundle.load(tiny_clip_bundle).manifest.name, Bundle.load(tiny_siglip_bundle).manifest.name
    settings = ServerSettings(max_queue_rows=64, max_items_per_request=4, latency_budget_ms=700, max_delay_ms=0)
    engines = build_engines([tiny_clip_bundle, tiny_siglip_bundle], settings)
    app = create_app(engines, settings)
    with running_app(app) as url:
        slow_down(engines[1][1].graphs["text"], 0.3)
        stop = threading.Event()
        refusals: list[str] = []

        def flood() -> None:
            with httpx.Client(timeout=60) as client:
                while not stop.is_set():
                    response = client.post(f"{url}/embed", json={"texts": ["a dog"], "model": siglip})
                    if response.status_code == 503:
                        refusals.append(response.text)

        with ThreadPoolExecutor(8) as pool:
            try:
                for _ in range(8):
                    pool.submit(flood)
                deadline = time.monotonic() + 60
                while not refusals and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert refusals, "the slow model never refused"
                with httpx.Client(timeout=60) as client:
                    for _ in range(10):
                        response = client.post(f"{url}/embed", json={"texts": ["a cat"], "model": clip})
                        assert response.status_code == 200, response.text
                    # OpenAI's route: the same late refusal, in OpenAI's error shape
                    for _ in range(20):
                        openai = client.post(f"{url}/v1/embeddings", json={"input": "a dog", "model": siglip})
                        if openai.status_code == 503:
                            break
                    assert openai.status_code == 503, openai.text
                    assert openai.json()["error"]["code"] == "overloaded" and openai.headers["retry-after"].isdigit()
            finally:
                stop.set()
        assert all(siglip in text and "latency budget" in text for text in refusals[:5]), refusals[:5]
        metrics = httpx.get(f"{url}/metrics").text
        assert f'mmship_admission_refused_total{{model="{siglip}",reason="budget"}}' in metrics
        assert f'mmship_admission_refused_total{{model="{clip}"' not in metrics
    assert app.state.admission.pending == 0
    assert all(c.inflight == 0 for c in app.state.admission.controllers.values())
