"""Work spread over threads that a Ctrl-C does not wait for."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def in_threads(
    call: Callable[[Item], Result], items: Sequence[Item], name: str = "mmship-worker"
) -> list[tuple[Result | None, BaseException | None]]:
    """``call(item)`` for every item at the same time, one daemon thread each; per item, in
    order, ``(result, None)`` or ``(None, the exception it raised)``.

    Daemon threads, joined interruptibly: a Ctrl-C during a long call (NNCF quantizing a
    tower, ~30 s) reaches the caller at once and the process exits without waiting for the
    threads, where a ``ThreadPoolExecutor``'s workers are joined at exit (a build then took
    57 s to stop after Ctrl-C).
    """
    outcomes: list[tuple[Any, BaseException | None]] = [(None, None)] * len(items)

    def work(index: int, item: Item) -> None:
        try:
            outcomes[index] = (call(item), None)
        except BaseException as exc:  # handed to the caller, raised there
            outcomes[index] = (None, exc)

    threads = [
        threading.Thread(target=work, args=(i, item), name=f"{name}-{i}", daemon=True) for i, item in enumerate(items)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def map_in_threads(call: Callable[[Item], Result], items: Sequence[Item], name: str = "mmship-worker") -> list[Result]:
    """The results of :func:`in_threads`, in order; the first exception raised is re-raised."""
    results = []
    for result, error in in_threads(call, items, name):
        if error is not None:
            raise error
        results.append(result)
    return results  # type: ignore[return-value]
