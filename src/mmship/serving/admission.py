"""Admission control: refuse work at arrival, before its body is read, when it would not
be answered within the latency budget.

A request that is refused only after its body was read, its images decoded and resized,
has already spent the cores the admitted requests needed: under 50x overload the
refusals ate the server. So every inference request (``POST``) is judged when it arrives,
from its headers alone:

* **estimated latency** = (requests admitted and not yet answered + 1) x the time one
  request's place in line costs. That cost is measured on the answers themselves: a
  request admitted with ``k`` requests ahead of it that took ``t`` seconds cost
  ``t / (k + 1)`` a place (a decaying average over the last answers, weighted by
  ``k + 1``). It holds everything a request spends (reading and decoding the body,
  preprocessing, queueing, the model, the answer) and the machine's real speed; under
  load it falls to the full-batch time per request, so the line a budget allows grows
  as batching pays off. One answer counts as at most :data:`OUTLIER_FACTOR` times the
  current cost a place, so a single heavy request (hundreds of uncached labels) cannot
  make light traffic look like overload. Until the first answer, the graphs' own warm-up
  timing (model time per row) stands in.
* refused with **503** + ``Retry-After`` (the seconds until the work ahead fits the
  budget again) when the estimate is over ``budget_s``, or when the admitted requests
  reach the hard cap (a memory guard, whatever the estimate says). Until anything is
  measured at most ``unmeasured_inflight`` requests are admitted.

Each served model has its own controller: its own line and its own cost a place, so a
flooded slow model never refuses requests for another. Which line a request joins, and
when, is :mod:`mmship.serving.admission_gate`'s job. The refusal at arrival reads no
body, parses no JSON and touches no model; uvicorn discards the unread body, and the
connection stays usable (keep-alive).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

#: Default latency budget: the longest a request admitted is expected to take.
DEFAULT_BUDGET_MS = 1000.0
#: Weight kept by the cost average per sample (0.9: the last ~10 answers count most).
DEFAULT_DECAY = 0.9
#: An answer counts as at most this many times the current cost a place.
OUTLIER_FACTOR = 4.0


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused, and when to come back."""

    reason: str  # "budget" or "cap"
    message: str
    retry_after_s: int


class AdmissionController:
    """Counts the requests admitted and not answered, and what a place in line costs.

    Thread-safe: answers are counted on the event loop, warm-up timings may come from
    another thread, and several apps may share a process.

    :param budget_s: refuse when the estimated latency of a new request is over this.
    :param max_inflight: refuse when this many requests are admitted and not answered.
    :param unmeasured_inflight: the cap until anything has been measured.
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
        self._seconds = 0.0  # decayed sum of seconds
        self._places = 0.0  # decayed sum of the places in line those seconds paid for
        self._answered = False  # True once a real answer was measured
        self._lock = threading.Lock()

    # --- measurements -------------------------------------------------------------

    def observe_batch(self, graph: str, requests: int, rows: int, seconds: float) -> None:
        """A graph run served ``requests`` requests in ``seconds``: the stand-in cost
        until the first answer is measured (model time alone, no preprocessing)."""
        if requests <= 0 or seconds < 0 or self._answered:
            return
        with self._lock:
            self._seconds = self._seconds * self.decay + seconds
            self._places = self._places * self.decay + requests

    def observe_answer(self, ahead: int, seconds: float) -> None:
        """A request admitted with ``ahead`` requests in front of it was answered in ``seconds``."""
        if seconds < 0 or ahead < 0:
            return
        with self._lock:
            if not self._answered:  # real answers replace the warm-up's stand-in
                self._seconds = self._places = 0.0
                self._answered = True
            elif self._places > 0:
                # One heavy request (hundreds of labels, a batch of large images) moves the
                # estimate by a bounded step, so it cannot make light traffic look like overload.
                seconds = min(seconds, OUTLIER_FACTOR * (ahead + 1) * self._seconds / self._places)
            self._seconds = self._seconds * self.decay + seconds
            self._places = self._places * self.decay + ahead + 1

    @property
    def cost_s(self) -> float | None:
        """Seconds one place in line costs, measured; ``None`` before anything was."""
        return self._seconds / self._places if self._places > 0 else None

    def estimated_latency_s(self) -> float:
        """How long a request arriving now would take to be answered."""
        cost = self.cost_s
        return 0.0 if cost is None else (self.inflight + 1) * cost

    # --- admission ----------------------------------------------------------------

    def try_admit(self) -> tuple[int, Refusal | None]:
        """Admit one request: ``(requests ahead of it, None)`` (call :meth:`release` when it
        is answered), or ``(requests in progress, the refusal)``."""
        with self._lock:
            cost = self.cost_s
            ahead = self.inflight
            if ahead >= self.max_inflight:
                return ahead, self._refusal("cap", cost)
            if cost is None:
                if ahead >= self.unmeasured_inflight:
                    return ahead, self._refusal("cap", cost)
            elif (ahead + 1) * cost > self.budget_s:
                return ahead, self._refusal("budget", cost)
            self.inflight += 1
            return ahead, None

    def would_refuse(self) -> Refusal | None:
        """The refusal :meth:`try_admit` would give now, admitting nothing."""
        with self._lock:
            cost = self.cost_s
            ahead = self.inflight
            if ahead >= self.max_inflight or (cost is None and ahead >= self.unmeasured_inflight):
                return self._refusal("cap", cost)
            if cost is not None and (ahead + 1) * cost > self.budget_s:
                return self._refusal("budget", cost)
            return None

    def release(self) -> None:
        """A request admitted by :meth:`try_admit` was answered (or failed)."""
        with self._lock:
            self.inflight = max(0, self.inflight - 1)

    def _refusal(self, reason: str, cost: float | None) -> Refusal:
        latency = (self.inflight + 1) * cost if cost is not None else None
        # Come back when the work ahead of you would fit the budget again.
        retry = 1 if latency is None else max(1, math.ceil(latency - self.budget_s))
        if reason == "budget":
            assert latency is not None and cost is not None
            message = (
                f"the server is overloaded: a request arriving now would be answered in about {latency * 1000:,.0f} ms "
                f"({self.inflight} requests ahead of it, about {cost * 1000:.1f} ms each), over the latency budget of "
                f"{self.budget_s * 1000:,.0f} ms. Fix: retry after {retry} s, send at a lower rate, or start the "
                "server with a larger --latency-budget-ms"
            )
        else:
            cap = self.max_inflight if self.inflight >= self.max_inflight else self.unmeasured_inflight
            message = (
                f"the server is overloaded: {self.inflight} requests are in progress, the most it takes at once "
                f"({cap}{'' if cost is not None else ' until the model time is measured'}). Fix: retry after "
                f"{retry} s, send at a lower rate, or start the server with a larger --max-queue"
            )
        return Refusal(reason, message, retry)
