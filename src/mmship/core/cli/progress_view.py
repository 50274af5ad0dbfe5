"""A rich live view of build stages: a spinner while a stage runs, a line when it ends."""

from __future__ import annotations

from rich.status import Status

from mmship.core.cli.console import console, table
from mmship.core.progress import StageReporter, StageTiming


class RichStageReporter(StageReporter):
    """Shows each stage with a spinner and prints its timing and result when done."""

    def __init__(self) -> None:
        super().__init__()
        self._status: Status | None = None

    def on_start(self, name: str, description: str) -> None:
        self._status = console.status(f"[bold]{name}[/]: {description}")
        self._status.start()

    def on_end(self, record: StageTiming) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        verdict = "[green]done[/]  " if record.ok else "[red]failed[/]"
        console.print(f"{verdict} {record.name:<14} {record.seconds:7.1f} s  {record.detail}")

    def note(self, message: str) -> None:
        console.print(f"  {message}")

    def summary(self) -> None:
        """Print the stage timings as a table."""
        total = sum(t.seconds for t in self.timings)
        rows = [(t.name, f"{t.seconds:.1f}") for t in self.timings] + [("total", f"{total:.1f}")]
        console.print(table("build stages", ["stage", "seconds"], rows))
