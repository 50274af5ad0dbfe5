"""Graph sessions made slow on purpose, to fill queues and lines in serving tests."""

from __future__ import annotations

import threading
import time
from typing import Any


class SlowSession:
    """Wraps a runtime session: every run takes ``seconds`` more, and is held while
    ``gate`` (when given) is cleared."""

    def __init__(self, inner: Any, seconds: float, gate: threading.Event | None = None) -> None:
        self.inner = inner
        self.seconds = seconds
        self.gate = gate

    def run(self, feeds: Any, outputs: Any) -> Any:
        time.sleep(self.seconds)
        if self.gate is not None:
            self.gate.wait(30)
        return self.inner.run(feeds, outputs)


def slow_down(graph: Any, seconds: float, gate: threading.Event | None = None) -> None:
    """Make every run of ``graph`` (an engine's graph) take ``seconds`` more."""
    graph.session = SlowSession(graph.session, seconds, gate)
