"""Which model's line a request joins, and when: the admission gate in front of the routes.

Every served model has its own :class:`~mmship.serving.admission.AdmissionController`
(its own requests in progress and cost a place), so a flooded slow model refuses its own
requests, never another model's. Every inference request (``POST``) gets a
:class:`Ticket` from :class:`AdmissionMiddleware` when it arrives:

* **the model is known from the headers alone**, because one model is served or the path
  names it (``/v2/models/{name}/...``): the request is admitted to that model's line or
  refused (503 + ``Retry-After``) right there, before its body is read.
* **the body names the model** (``/embed``, ``/classify``, ``/v1/embeddings`` with several
  models served): at arrival it is refused only when it could not be admitted whatever it
  names (every model over its budget, or the server-wide cap on requests in progress
  reached); otherwise the route admits it to its model's line (:meth:`Ticket.admit`) once
  the body is parsed, before any image is decoded or any model runs.

A refusal is counted in ``mmship_admission_refused_total`` by model (``""``: refused
before the model was known) and reason. Each answer is reported to its model's line
(:meth:`AdmissionController.observe_answer`), which measures what a place in line costs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from mmship.serving.admission import AdmissionController, Refusal
from mmship.serving.http_errors import HTTPProblem

#: Request-scope key of the request's :class:`Ticket`.
TICKET_SCOPE_KEY = "mmship.admission"
_V2_MODELS = "/v2/models/"


class AdmissionMetrics:
    """Refusals by model and reason; per model the requests admitted and the estimated
    latency; the budget."""

    def __init__(self, registry: CollectorRegistry, controllers: Mapping[str, AdmissionController]) -> None:
        self.refused = Counter(
            "mmship_admission_refused_total",
            "requests refused (503) before their images were decoded, by model ('': before it was known) and reason",
            ["model", "reason"], registry=registry,
        )
        inflight = Gauge(
            "mmship_admission_inflight", "inference requests admitted and not yet answered", ["model"], registry=registry
        )
        latency = Gauge(
            "mmship_admission_estimated_latency_seconds", "estimated latency of a request arriving now", ["model"],
            registry=registry,
        )
        for name, controller in controllers.items():
            inflight.labels(name).set_function(lambda c=controller: c.inflight)
            latency.labels(name).set_function(controller.estimated_latency_s)
        budget = Gauge("mmship_admission_budget_seconds", "the latency budget requests are admitted under", registry=registry)
        budget.set(next(iter(controllers.values())).budget_s)


class ServerAdmission:
    """The served models' controllers, and the requests whose model is not known yet.

    :param controllers: served name -> its controller; the first is the default model's.
    :param label: the served name a requested model resolves to, ``""`` when none.
    :param registry: where the admission metrics go (``None``: not recorded).
    """

    def __init__(
        self, controllers: Mapping[str, AdmissionController], label: Callable[[str | None], str],
        registry: CollectorRegistry | None = None,
    ) -> None:
        if not controllers:
            raise ValueError("admission needs at least one model's controller")
        self.controllers = dict(controllers)
        self.label = label
        self.pending = 0  # arrived, model not known yet
        #: Requests in progress server-wide at most (a memory guard): each model's cap, summed.
        self.max_inflight = sum(c.max_inflight for c in self.controllers.values())
        self.metrics = AdmissionMetrics(registry, self.controllers) if registry is not None else None
        self._lock = threading.Lock()

    @property
    def default(self) -> AdmissionController:
        """The default model's controller (the only one when one model is served)."""
        return next(iter(self.controllers.values()))

    def observe_run(self, model: str, graph: str, requests: int, rows: int, seconds: float) -> None:
        """A graph run of ``model`` (the stand-in cost until answers are measured)."""
        controller = self.controllers.get(model)
        if controller is not None:
            controller.observe_batch(graph, requests, rows, seconds)

    def model_at_arrival(self, path: str) -> str | None:
        """The served model a request is for, from its path alone; ``None`` when only its
        body can say (or the path names no model served: the route answers 404)."""
        if len(self.controllers) == 1:
            return next(iter(self.controllers))
        if path.startswith(_V2_MODELS):
            return self.label(path[len(_V2_MODELS):].split("/", 1)[0]) or None
        return None

    def arrive(self, path: str) -> tuple[Ticket, Refusal | None]:
        """The ticket of a request arriving on ``path``, or the refusal to answer at once."""
        ticket = Ticket(self)
        model = self.model_at_arrival(path)
        if model is not None:
            ticket.ahead, refusal = self.controllers[model].try_admit()
            if refusal is not None:
                self._count(model, refusal)
                return ticket, refusal
            ticket.controller = self.controllers[model]
            return ticket, None
        if path.startswith(_V2_MODELS):  # a model not served: 404 from the route, no line joined
            return ticket, None
        with self._lock:
            refusal = self._refusal_whatever_the_model()
            if refusal is None:
                self.pending += 1
                ticket.pending = True
        if refusal is not None:
            self._count("", refusal)
        return ticket, refusal

    def _refusal_whatever_the_model(self) -> Refusal | None:
        inflight = self.pending + sum(c.inflight for c in self.controllers.values())
        if inflight >= self.max_inflight:
            return Refusal(
                "cap", f"the server is overloaded: {inflight} requests are in progress, the most it takes at once "
                f"({self.max_inflight}). Fix: retry after 1 s, send at a lower rate, or start the server with a "
                "larger --max-queue", 1,
            )
        refusals = [c.would_refuse() for c in self.controllers.values()]
        if all(r is not None for r in refusals):  # no model could take it: refuse before reading the body
            return min(refusals, key=lambda r: r.retry_after_s)  # type: ignore[union-attr]
        return None

    def _count(self, model: str, refusal: Refusal) -> None:
        if self.metrics is not None:
            self.metrics.refused.labels(model, refusal.reason).inc()


class Ticket:
    """One request's place: in a model's line (``controller``), waiting to name its
    model (``pending``), or neither (a path naming no model served)."""

    def __init__(self, admission: ServerAdmission) -> None:
        self.admission = admission
        self.arrived = time.perf_counter()
        self.controller: AdmissionController | None = None
        self.ahead = 0
        self.pending = False

    def admit(self, model: str | None) -> None:
        """Join the line of ``model`` (as the body names it) if not in one yet.

        :raises HTTPProblem: 503 with ``Retry-After`` when that model is over its budget
            or cap; a name no model answers to joins no line (the route answers 404).
        """
        if not self.pending:
            return
        self._leave_pending()
        name = self.admission.label(model)
        if not name:
            return
        controller = self.admission.controllers[name]
        self.ahead, refusal = controller.try_admit()
        if refusal is not None:
            self.admission._count(name, refusal)
            raise HTTPProblem(503, f"model {name!r}: {refusal.message}", {"Retry-After": str(refusal.retry_after_s)})
        self.controller = controller

    def close(self, status: int) -> None:
        """The request was answered with ``status`` (or failed: 500)."""
        if self.pending:
            self._leave_pending()
        if self.controller is not None:
            self.controller.release()
            if status < 400:  # errors answered early say nothing of the line's speed
                self.controller.observe_answer(self.ahead, time.perf_counter() - self.arrived)
            self.controller = None

    def _leave_pending(self) -> None:
        with self.admission._lock:
            self.admission.pending -= 1
        self.pending = False


def admit_to_model(scope: Mapping[str, Any], model: str | None) -> None:
    """A route's call once the body names its model: join that model's line (no-op when
    the request was admitted at arrival, or no gate is installed).

    :raises HTTPProblem: 503 when that model's line is full.
    """
    ticket = scope.get(TICKET_SCOPE_KEY)
    if ticket is not None:
        ticket.admit(model)


class AdmissionMiddleware:
    """ASGI middleware: every ``POST`` gets its :class:`Ticket` (in ``scope``) before the
    app sees it; one refused at arrival is answered 503 with its body unread."""

    def __init__(self, app: Any, admission: ServerAdmission) -> None:
        self.app = app
        self.admission = admission

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        ticket, refusal = self.admission.arrive(scope.get("path", ""))
        if refusal is not None:
            body = json.dumps({"error": refusal.message}).encode()
            await send({
                "type": "http.response.start", "status": 503,
                "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(refusal.retry_after_s).encode()),
                ],
            })
            await send({"type": "http.response.body", "body": body})
            return
        scope[TICKET_SCOPE_KEY] = ticket
        status = 500

        async def watch(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            ticket.close(status)
