"""Stage reporting for long operations: timings always, a live display when wanted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class StageTiming:
    """One finished stage: name, seconds, and a short result line."""

    name: str
    seconds: float
    detail: str = ""
    ok: bool = True


@dataclass
class StageReporter:
    """Records stage timings. Subclasses (the CLI's rich display) also show them live."""

    timings: list[StageTiming] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str, description: str = "") -> Iterator[StageTiming]:
        """Time a stage; the yielded record's ``detail`` may be filled by the caller."""
        record = StageTiming(name, 0.0)
        self.on_start(name, description)
        start = time.perf_counter()
        try:
            yield record
        except BaseException:
            record.ok = False
            raise
        finally:
            record.seconds = time.perf_counter() - start
            self.timings.append(record)
            self.on_end(record)

    def on_start(self, name: str, description: str) -> None:
        """Called when a stage starts."""

    def on_end(self, record: StageTiming) -> None:
        """Called when a stage ends (successfully or not)."""

    def note(self, message: str) -> None:
        """A one-line message during a stage."""
