"""Dynamic batching for one graph: requests wait at most ``max_delay_ms`` to share a run.

Requests (each a few rows of named arrays) queue on the event loop; one worker takes as
many as fit in ``max_batch_size`` rows (waiting up to ``max_delay_ms`` for more only
while there is load: a lone request at light traffic runs at once), stacks them (padding the text axis to the batch's
longest where a pad function is given), runs the graph in a dedicated thread, and hands
each request its rows back. While a batch runs the next one fills, so batches grow with
load and stay at one request when traffic is light.

* The queue is bounded: :class:`QueueFullError` (HTTP 503 + Retry-After) when full.
* Each request has a deadline: :class:`DeadlineExceededError` (HTTP 504) when passed,
  and a request whose deadline passed while queued is dropped before it is run.
* A failing batch is retried one request at a time, so one bad request fails only itself.
* A request that finds the batcher idle may be prepared and run in one trip to its thread
  (:meth:`DynamicBatcher.run_alone`): at concurrency 1 there is no company to wait for,
  and its preprocessing need not make a trip of its own to the preprocessing pool.
* With ``concurrency`` N > 1 (a session with N streams, ``mmship serve --streams``), up to
  N batches run at once, each in its own thread; the next batch fills while they run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

Arrays = dict[str, np.ndarray]
Runner = Callable[[Arrays], Arrays]
Stacker = Callable[[list[Arrays]], Arrays]


class QueueFullError(Exception):
    """The batcher's queue is full; retry after ``retry_after`` seconds."""

    def __init__(self, graph: str, depth: int, retry_after: float) -> None:
        super().__init__(f"the {graph} queue is full ({depth} rows waiting); retry after {retry_after:.1f} s")
        self.retry_after = retry_after


class RequestTooLargeError(Exception):
    """A request has more rows than the whole queue holds: it could never run."""


class DeadlineExceededError(Exception):
    """A request waited or ran longer than its deadline."""


@dataclass
class _Pending:
    arrays: Arrays
    rows: int
    deadline: float
    future: asyncio.Future[Arrays]
    enqueued: float = field(default_factory=time.perf_counter)


def stack_rows(items: list[Arrays]) -> Arrays:
    """Concatenate requests along axis 0 (all arrays must agree on the other axes)."""
    return {name: np.concatenate([item[name] for item in items], axis=0) for name in items[0]}


@dataclass
class BatchObserver:
    """Callbacks for metrics and admission: batch sizes, queue depth, run time."""

    on_batch: Callable[[str, int, float], None] = lambda graph, rows, seconds: None
    #: ``(graph, requests, rows, seconds)`` of every successful run.
    on_run: Callable[[str, int, int, float], None] = lambda graph, requests, rows, seconds: None
    on_queue_depth: Callable[[str, int], None] = lambda graph, depth: None


class DynamicBatcher:
    """Batches requests for one graph and runs them in its own thread."""

    def __init__(
        self,
        name: str,
        runner: Runner,
        max_batch_size: int = 32,
        max_delay_ms: float = 5.0,
        max_queue_rows: int = 512,
        stacker: Stacker = stack_rows,
        observer: BatchObserver | None = None,
        concurrency: int = 1,
        alone_runner: Runner | None = None,
    ) -> None:
        """
        :param concurrency: batches run at once (the session's streams; 1: one at a time).
        :param alone_runner: what :meth:`run_alone` runs a lone request with (default:
            ``runner``; with streams, a session on every thread).
        """
        self.name = name
        self.runner = runner
        self.alone_runner = alone_runner or runner
        self.max_batch_size = max_batch_size
        self.max_delay = max_delay_ms / 1000
        self.max_queue_rows = max_queue_rows
        self.stacker = stacker
        self.observer = observer or BatchObserver()
        self._queue: asyncio.Queue[_Pending] | None = None
        self._queued_rows = 0
        self._inflight = 0
        self._task: asyncio.Task[None] | None = None
        self.concurrency = max(1, concurrency)
        self._executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=f"mmship-{name}")
        self._slots: asyncio.Semaphore | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._last_batch_seconds = 0.05
        self._last_rows = 0

    @property
    def depth(self) -> int:
        """Rows waiting in the queue."""
        return self._queued_rows

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self._queue = asyncio.Queue()
        self._slots = asyncio.Semaphore(self.concurrency)
        self._task = asyncio.get_running_loop().create_task(self._work(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        """Finish queued requests, then stop the worker and its thread."""
        if self._queue is not None:
            while self._queued_rows or self._inflight:
                await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def submit(self, arrays: Arrays, timeout_s: float) -> Arrays:
        """Queue one request (rows on axis 0) and wait for its outputs."""
        assert self._queue is not None, "batcher not started"
        rows = len(next(iter(arrays.values())))
        if rows > self.max_queue_rows:
            raise RequestTooLargeError(
                f"the request has {rows} rows for the {self.name} graph; its queue holds at most {self.max_queue_rows}. "
                "Fix: split the request"
            )
        if self._queued_rows + rows > self.max_queue_rows:
            retry = max(0.1, self._last_batch_seconds * (self._queued_rows / max(1, self.max_batch_size)))
            raise QueueFullError(self.name, self._queued_rows, round(retry, 1))
        loop = asyncio.get_running_loop()
        pending = _Pending(arrays, rows, time.monotonic() + timeout_s, loop.create_future())
        self._queued_rows += rows
        self.observer.on_queue_depth(self.name, self._queued_rows)
        await self._queue.put(pending)
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), timeout=timeout_s)
        except asyncio.TimeoutError:
            pending.future.cancel()
            raise DeadlineExceededError(
                f"the {self.name} request did not finish within {timeout_s:.1f} s"
            ) from None

    def idle(self) -> bool:
        """Nothing queued, nothing running, and the last batch was one row (light traffic):
        a request now would run alone, as :meth:`_collect` runs a lone request without
        waiting for company. After a larger batch, requests batch again until one runs alone."""
        return self._queue is not None and self._queued_rows == 0 and self._inflight == 0 and self._last_rows <= 1

    def can_run_alone(self, rows: int) -> bool:
        """A request of ``rows`` rows may go through :meth:`run_alone` now: the batcher is
        :meth:`idle` and the request fits one batch and the queue (larger ones take
        :meth:`submit`, which splits nothing and refuses what the queue cannot hold)."""
        return rows <= min(self.max_batch_size, self.max_queue_rows) and self.idle()

    async def run_alone(self, prepare: Callable[[], Arrays], timeout_s: float) -> Arrays:
        """Prepare one request's arrays and run them, both in the batcher's thread.

        For a request that :meth:`can_run_alone`: its preprocessing (``prepare``:
        decode, resize, normalise) and its graph run (on ``alone_runner``) share one trip
        from the event loop to a thread and back, instead of one to the preprocessing pool and one here (one-image
        answers ~0.6 ms sooner at the median, benchmarks/README.md). Requests arriving meanwhile queue and
        batch as usual, behind it. Errors of ``prepare`` reach the caller as raised; the
        metrics see the graph run only.
        """
        assert self._queue is not None, "batcher not started"

        def job() -> tuple[Arrays, int, float]:
            arrays = self.stacker([prepare()])
            start = time.perf_counter()
            outputs = self.alone_runner(arrays)
            return outputs, len(next(iter(arrays.values()))), time.perf_counter() - start

        self._inflight += 1  # before the first await: no other request sees it idle
        future = asyncio.get_running_loop().run_in_executor(self._executor, job)
        future.add_done_callback(self._finished_alone)  # counts it done when the thread is, deadline or not
        try:
            outputs, rows, seconds = await asyncio.wait_for(asyncio.shield(future), timeout=timeout_s)
        except asyncio.TimeoutError:
            raise DeadlineExceededError(f"the {self.name} request did not finish within {timeout_s:.1f} s") from None
        self._record_run(1, rows, seconds)
        return outputs

    def _finished_alone(self, future: asyncio.Future[tuple[Arrays, int, float]]) -> None:
        self._inflight -= 1
        if not future.cancelled():
            future.exception()  # retrieved: a request that gave up does not log "never retrieved"

    def _take(self, pending: _Pending) -> None:
        self._queued_rows -= pending.rows
        self.observer.on_queue_depth(self.name, self._queued_rows)

    async def _collect(self) -> list[_Pending]:
        assert self._queue is not None
        first = await self._queue.get()
        self._take(first)
        batch, rows = [first], first.rows
        # Wait for company only under load: when the last batch held one request and
        # nothing else is queued, a lone request runs at once (no added latency at
        # concurrency 1); batches then grow as soon as requests overlap.
        busy = self._last_rows > 1 or not self._queue.empty()
        flush_at = time.monotonic() + (self.max_delay if busy else 0.0)
        while rows < self.max_batch_size:
            try:
                nxt = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = flush_at - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    nxt = await asyncio.wait_for(self._queue.get(), timeout=remaining)
                except asyncio.TimeoutError:
                    break
            if rows + nxt.rows > self.max_batch_size:
                # Too big to join: it leads the next batch.
                self._queue_front(nxt)
                break
            self._take(nxt)
            batch.append(nxt)
            rows += nxt.rows
        return batch

    def _queue_front(self, pending: _Pending) -> None:
        assert self._queue is not None
        items = [pending]
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        for item in items:
            self._queue.put_nowait(item)

    async def _work(self) -> None:
        """Take a run slot, collect a batch, run it in a task; with one slot, one batch at a
        time (the next is collected once the last has run)."""
        assert self._slots is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._slots.acquire()
            try:
                batch = await self._collect()
            except BaseException:
                self._slots.release()
                raise
            now = time.monotonic()
            live = []
            for pending in batch:
                if pending.future.done():
                    continue
                if pending.deadline <= now:
                    pending.future.set_exception(DeadlineExceededError(f"the {self.name} request expired in the queue"))
                    continue
                live.append(pending)
            if not live:
                self._slots.release()
                continue
            self._inflight += 1
            task = loop.create_task(self._run_in_slot(loop, live))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run_in_slot(self, loop: asyncio.AbstractEventLoop, live: list[_Pending]) -> None:
        assert self._slots is not None
        try:
            await self._run(loop, live)
        finally:
            self._inflight -= 1
            self._slots.release()

    def _record_run(self, requests: int, rows: int, seconds: float) -> None:
        """A successful graph run: what the next batch and Retry-After go by, and the observer."""
        self._last_batch_seconds, self._last_rows = seconds, rows
        self.observer.on_batch(self.name, rows, seconds)
        self.observer.on_run(self.name, requests, rows, seconds)

    async def _run(self, loop: asyncio.AbstractEventLoop, live: list[_Pending]) -> None:
        start = time.perf_counter()
        try:
            stacked = self.stacker([p.arrays for p in live])
            outputs = await loop.run_in_executor(self._executor, self.runner, stacked)
        except Exception as exc:
            if len(live) == 1:
                if not live[0].future.done():
                    live[0].future.set_exception(exc)
                return
            for pending in live:  # isolate the bad request
                await self._run(loop, [pending])
            return
        seconds = time.perf_counter() - start
        rows = sum(p.rows for p in live)
        self._record_run(len(live), rows, seconds)
        offset = 0
        for pending in live:
            part = {name: value[offset : offset + pending.rows] for name, value in outputs.items()}
            offset += pending.rows
            if not pending.future.done():
                pending.future.set_result(part)
