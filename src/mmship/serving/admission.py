"""Admission control: refuse work at arrival, before its body is read, when it would not
be answered within the latency budget.

A request that is refused only after its body was read, its images decoded and resized,
has already spent the cores the admitted requests needed: under 50x overload the
refusals ate the server. So every inference request (``POST``) is judged when it arrives,
from its headers alone:

* **estimated latency** = (requests admitted and not yet answered + 1) x the time one
  place in line costs: how long the line takes to move by one answer, measured on the
  answers themselves (Little's law): the time the line was busy (anything admitted and not
  answered) divided by the answers given in it, a decaying average over about the last
  30 answers (:data:`DEFAULT_DECAY`). The answers of one batch come together, the first
  carrying the batch's time, so they are counted as one group once the batch is complete
  and the estimate does not swing within a batch. It holds everything a request spends
  (reading and decoding the body, preprocessing, queueing, the model, the answer) and the
  machine's real speed; under load it falls to the full-batch time per request, so the
  line a budget allows grows as batching pays off. Measuring each request's own latency
  over the places ahead of it at arrival would not do: requests that arrive together
  find few ahead yet wait for the whole batch, so a closed loop of 16 clients looked like
  overload and was refused well inside the budget. One answer's share counts as at most
  :data:`OUTLIER_FACTOR` times the current cost of the places it waited for, so a single
  heavy request (hundreds of uncached labels) cannot make light traffic look like
  overload. Until the first batch is complete, the graphs' own warm-up timing (model time
  per row) stands in.
* refused with **503** + ``Retry-After`` when the estimate is over ``budget_s``, or when
  the admitted requests reach the hard cap (a memory guard, whatever the estimate says).
  Until anything is measured at most ``unmeasured_inflight`` requests are admitted.
* ``Retry-After`` spreads the refused clients' returns at the rate the model answers:
  each refusal is given the next free return slot, one place-in-line cost after the
  previous one, and never sooner than the work ahead fits the budget again. A flood of
  800 clients told "1 s" would all come back together and be refused again, each refusal
  costing CPU the admitted requests need; told their own slots, about as many come back
  each second as the model can answer. Capped at :data:`MAX_RETRY_AFTER_S`, and the slots
  never run further ahead, so the schedule cannot run away.

Each served model has its own controller: its own line and its own cost a place, so a
flooded slow model never refuses requests for another. Which line a request joins, and
when, is :mod:`mmship.serving.admission_gate`'s job. The refusal at arrival reads no
body, parses no JSON and touches no model; uvicorn discards the unread body, and the
connection stays usable (keep-alive).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Default latency budget: the longest a request admitted is expected to take.
DEFAULT_BUDGET_MS = 1000.0
#: Weight the cost average keeps per answer counted (0.97: about the last 30 answers, two
#: batches of 16, count most).
DEFAULT_DECAY = 0.97
#: An answer counts as at most this many times the current cost a place.
OUTLIER_FACTOR = 4.0
#: An answer whose busy time is over this fraction of a place's cost starts a new group
#: (batch) of answers; the ones of a batch come within microseconds of each other.
GROUP_GAP = 0.1
#: The longest ``Retry-After`` given, in seconds (the Python client honours up to its
#: ``max_retry_wait``; OpenAI's SDK up to 60 s).
MAX_RETRY_AFTER_S = 30


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
    :param decay: weight the cost average keeps per answer counted.
    :param clock: seconds, monotonic (tests pass their own).
    """

    def __init__(
        self,
        budget_s: float,
        max_inflight: int,
        unmeasured_inflight: int = 32,
        decay: float = DEFAULT_DECAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if budget_s <= 0:
            raise ValueError(f"the latency budget must be positive, got {budget_s}")
        self.budget_s = budget_s
        self.max_inflight = max_inflight
        self.unmeasured_inflight = max(1, min(unmeasured_inflight, max_inflight))
        self.decay = decay
        self.inflight = 0
        self._seconds = 0.0  # decayed sum of busy seconds
        self._places = 0.0  # decayed sum of the answers (places in line) those seconds paid for
        self._answered = False  # True once a real answer was measured
        self._clock = clock
        self._busy_since: float | None = None  # start of the busy time no answer has accounted for yet
        self._group_seconds = 0.0  # the answers of the batch being answered, not yet counted
        self._group_places = 0.0
        self._next_return = 0.0  # the clock time of the next free return slot for a refused request
        self._lock = threading.Lock()

    # --- measurements -------------------------------------------------------------

    def observe_batch(self, graph: str, requests: int, rows: int, seconds: float) -> None:
        """A graph run served ``requests`` requests in ``seconds``: the stand-in cost
        until the first answer is measured (model time alone, no preprocessing)."""
        if requests <= 0 or seconds < 0 or self._answered:
            return
        with self._lock:
            self._add(seconds, requests)

    def observe_answer(self, ahead: int, seconds: float) -> None:
        """A request admitted with ``ahead`` requests in front of it was answered in
        ``seconds``; call after :meth:`release`. Its share of the cost is the busy time
        since the previous answer; a request not admitted here (no busy time on record)
        counts ``seconds`` over ``ahead + 1`` places.

        A batch's answers come together: the first carries the batch's time, the rest
        almost none. They are gathered into one group, counted once the group is complete
        (the next answer after a real gap), so the estimate never swings within a batch."""
        if seconds < 0 or ahead < 0:
            return
        with self._lock:
            now = self._clock()
            alone = self._busy_since is None  # not admitted here: a complete sample by itself
            if alone:
                places = ahead + 1
            else:
                seconds, places = max(0.0, now - self._busy_since), 1
            self._busy_since = now if self.inflight > 0 else None
            cost = self.cost_s
            if cost is not None and self._answered:
                # One heavy request (hundreds of labels, a batch of large images) moves the
                # estimate by a bounded step, so it cannot make light traffic look like overload.
                # The places it waited for: those ahead at arrival, or those answered with it.
                seconds = min(seconds, OUTLIER_FACTOR * (max(ahead, self.inflight) + 1) * cost)
            if self._group_places and seconds > GROUP_GAP * (cost or 0.0):
                self._close_group()
            self._group_seconds += seconds
            self._group_places += places
            if alone:
                self._close_group()

    def _close_group(self) -> None:
        if not self._answered:  # real answers replace the warm-up's stand-in
            self._seconds = self._places = 0.0
            self._answered = True
        self._add(self._group_seconds, self._group_places)
        self._group_seconds = self._group_places = 0.0

    def _add(self, seconds: float, places: float) -> None:
        keep = self.decay**places
        self._seconds = self._seconds * keep + seconds
        self._places = self._places * keep + places

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
                return ahead, self._refusal("cap", cost, book=True)
            if cost is None:
                if ahead >= self.unmeasured_inflight:
                    return ahead, self._refusal("cap", cost, book=True)
            elif (ahead + 1) * cost > self.budget_s:
                return ahead, self._refusal("budget", cost, book=True)
            if self.inflight == 0:
                self._busy_since = self._clock()
            self.inflight += 1
            return ahead, None

    def would_refuse(self) -> Refusal | None:
        """The refusal :meth:`try_admit` would give now, admitting nothing and booking no
        return slot."""
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

    def _retry_after_s(self, latency: float | None, cost: float | None, book: bool) -> int:
        """Whole seconds until this refused request should come back: when the work ahead
        (``latency``) fits the budget again, or its return slot if later (booked when ``book``)."""
        if latency is None or cost is None:
            return 1
        fits_in = latency - self.budget_s
        wait = fits_in
        if book:
            now = self._clock()
            slot = max(self._next_return, now + fits_in)
            self._next_return = min(slot + cost, now + MAX_RETRY_AFTER_S)
            wait = max(fits_in, slot - now)
        return min(MAX_RETRY_AFTER_S, max(1, math.ceil(round(wait, 6))))

    def _refusal(self, reason: str, cost: float | None, book: bool = False) -> Refusal:
        latency = (self.inflight + 1) * cost if cost is not None else None
        retry = self._retry_after_s(latency, cost, book)
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
