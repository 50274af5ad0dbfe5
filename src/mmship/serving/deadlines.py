"""One deadline per request, carried through every stage: reading and decoding the body,
preprocessing, tokenizing, queueing and running the graphs.

The route sets the deadline when the request arrives (:func:`request_deadline`); each
stage asks :func:`remaining` how long it may still take and gives up with
:class:`~mmship.serving.batcher.DeadlineExceededError` (HTTP 504) when the time is spent.
Work running in a thread is awaited with :func:`within`; library code that loops (the
image pipeline) gets the absolute deadline and stops between items.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Iterator
from contextvars import ContextVar
from typing import TypeVar

from mmship.serving.batcher import DeadlineExceededError

T = TypeVar("T")

_DEADLINE: ContextVar[float | None] = ContextVar("mmship_request_deadline", default=None)


@contextlib.contextmanager
def request_deadline(timeout_s: float) -> Iterator[float]:
    """Set the current request's deadline ``timeout_s`` from now (``time.monotonic()``)."""
    deadline = time.monotonic() + timeout_s
    token = _DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        _DEADLINE.reset(token)


def current_deadline(default_timeout_s: float) -> float:
    """The current request's deadline, or one ``default_timeout_s`` from now outside a request."""
    deadline = _DEADLINE.get()
    return deadline if deadline is not None else time.monotonic() + default_timeout_s


def remaining(deadline: float, stage: str) -> float:
    """Seconds left before ``deadline``; raises when none are left."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceededError(f"the request ran out of time before {stage}")
    return left


async def within(work: Awaitable[T], deadline: float, stage: str) -> T:
    """Await ``work`` until ``deadline``; raises :class:`DeadlineExceededError` naming the stage.

    A :class:`TimeoutError` raised by the work itself (a loop that checks the deadline)
    is answered the same way.
    """
    try:
        return await asyncio.wait_for(work, timeout=remaining(deadline, stage))
    except (asyncio.TimeoutError, TimeoutError):
        raise DeadlineExceededError(f"the request did not finish {stage} before its deadline") from None
