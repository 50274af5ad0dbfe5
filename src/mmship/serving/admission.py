"""Admission control: refuse work at arrival, before its body is read, when it would wait
longer than the latency budget.

A request that is refused only after its body was read, its images decoded and resized,
has already spent the cores the admitted requests needed: under 50x overload the
refusals ate the server. So every inference request (``POST``) is judged when it arrives,
from its headers alone:

* **estimated wait** = requests admitted and not yet answered x the model time one
  request costs, measured (a decaying average over the last batches of every graph:
  seconds of graph time / requests served). At low load batches hold one request and
  the cost is the batch-1 time; under load it falls to the full-batch time per request,
  so the queue a budget allows grows as batching pays off.
* refused with **503** + ``Retry-After`` (the seconds until the work ahead fits the
  budget again) when the estimate is over ``budget_s``, or when the admitted requests
  reach the hard cap (a memory guard, whatever the estimate says). Until the first batch
  is measured at most ``unmeasured_inflight`` requests are admitted.

The refusal reads no body, parses no JSON and touches no model: an ASGI middleware
(:class:`AdmissionMiddleware`) answers it before the route runs. uvicorn discards the
unread body, and the connection stays usable (keep-alive).
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

#: Default latency budget: the longest a request is expected to wait for the model.
DEFAULT_BUDGET_MS = 1000.0
#: Weight kept by the cost average per batch (0.9: the last ~10 batches count most).
DEFAULT_DECAY = 0.9


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused, and when to come back."""

    reason: str  # "budget" or "cap"
    message: str
    retry_after_s: int


class AdmissionController:
    """Counts the requests admitted and not answered, and the model time each costs.

    Thread-safe: batch timings arrive from the batchers' threads' callbacks (on the event
    loop) and could come from several loops when several apps share a process.

    :param budget_s: refuse when the estimated wait of a new request is over this.
    :param max_inflight: refuse when this many requests are admitted and not answered.
    :param unmeasured_inflight: the cap until a batch has been measured.
    """

    def __init__(
        self, budget_s: float, max_inflight: int, unmeasured_inflight: int = 32, decay: float = DEFAULT_DECAY
    ) -> None:
        if budget_s <= 0:
            raise ValueError(f"the latency budget must be positive, got {budget_s}")
        self.budget_s = budget_s
        self.max_inflight = max_inflight
        self.unmeasured_inflight = max(1, min(unmeasured_inflight, max_inflight))
        self.decay = decay
        self.inflight = 0
        self._seconds = 0.0  # decayed sum of batch seconds
        self._requests = 0.0  # decayed sum of requests served by those batches
        self._lock = threading.Lock()

    # --- measurements -------------------------------------------------------------

    def observe_batch(self, graph: str, requests: int, rows: int, seconds: float) -> None:
        """One graph run served ``requests`` requests (``rows`` rows) in ``seconds``."""
        if requests <= 0 or seconds < 0:
            return
        with self._lock:
            self._seconds = self._seconds * self.decay + seconds
            self._requests = self._requests * self.decay + requests

    @property
    def cost_s(self) -> float | None:
        """Model seconds one request costs, measured; ``None`` before the first batch."""
        return self._seconds / self._requests if self._requests > 0 else None

    def estimated_wait_s(self) -> float:
        """How long a request arriving now would wait for the requests ahead of it."""
        cost = self.cost_s
        return 0.0 if cost is None else self.inflight * cost

    # --- admission ----------------------------------------------------------------

    def try_admit(self) -> Refusal | None:
        """Admit one request (``None``; call :meth:`release` when it is answered) or say why not."""
        with self._lock:
            cost = self.cost_s
            if self.inflight >= self.max_inflight:
                return self._refusal("cap", cost)
            if cost is None:
                if self.inflight >= self.unmeasured_inflight:
                    return self._refusal("cap", cost)
            elif self.inflight * cost > self.budget_s:
                return self._refusal("budget", cost)
            self.inflight += 1
            return None

    def release(self) -> None:
        """A request admitted by :meth:`try_admit` was answered (or failed)."""
        with self._lock:
            self.inflight = max(0, self.inflight - 1)

    def _refusal(self, reason: str, cost: float | None) -> Refusal:
        wait = self.inflight * cost if cost is not None else None
        # Come back when the work ahead of you would fit the budget again.
        retry = 1 if wait is None else max(1, math.ceil(wait - self.budget_s))
        if reason == "budget":
            assert wait is not None
            message = (
                f"the server is overloaded: a request arriving now would wait about {wait * 1000:,.0f} ms for the "
                f"{self.inflight} requests ahead of it (about {cost * 1000:.1f} ms of model time each), over the "
                f"latency budget of {self.budget_s * 1000:,.0f} ms. Fix: retry after {retry} s, send at a lower rate, "
                "or start the server with a larger --latency-budget-ms"
            )
        else:
            cap = self.max_inflight if self.inflight >= self.max_inflight else self.unmeasured_inflight
            message = (
                f"the server is overloaded: {self.inflight} requests are in progress, the most it takes at once "
                f"({cap}{'' if cost is not None else ' until the model time is measured'}). Fix: retry after "
                f"{retry} s, send at a lower rate, or start the server with a larger --max-queue"
            )
        return Refusal(reason, message, retry)


class AdmissionMetrics:
    """Refusals by reason, the requests admitted and the estimated wait, in ``registry``."""

    def __init__(self, registry: CollectorRegistry, controller: AdmissionController) -> None:
        self.refused = Counter(
            "mmship_admission_refused_total", "requests refused at arrival (503) before their body was read, by reason",
            ["reason"], registry=registry,
        )
        inflight = Gauge("mmship_admission_inflight", "inference requests admitted and not yet answered", registry=registry)
        inflight.set_function(lambda: controller.inflight)
        wait = Gauge(
            "mmship_admission_estimated_wait_seconds", "estimated wait of a request arriving now", registry=registry
        )
        wait.set_function(controller.estimated_wait_s)
        budget = Gauge("mmship_admission_budget_seconds", "the latency budget requests are admitted under", registry=registry)
        budget.set(controller.budget_s)


class AdmissionMiddleware:
    """ASGI middleware: every ``POST`` passes :meth:`AdmissionController.try_admit` before
    the app sees it; a refused one is answered 503 with its body unread."""

    def __init__(self, app: Any, controller: AdmissionController, metrics: AdmissionMetrics | None = None) -> None:
        self.app = app
        self.controller = controller
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        refusal = self.controller.try_admit()
        if refusal is not None:
            if self.metrics is not None:
                self.metrics.refused.labels(refusal.reason).inc()
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
        try:
            await self.app(scope, receive, send)
        finally:
            self.controller.release()
