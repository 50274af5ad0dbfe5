"""Check results: one row per check, with status, message and fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["ok", "warn", "error", "skip"]
STATUSES: tuple[str, ...] = ("ok", "warn", "error", "skip")


@dataclass
class CheckResult:
    """One row of ``mmship check``: what was checked, how it went, why, and the fix."""

    name: str
    status: Status
    message: str
    hint: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The row as a plain dict (``--json``)."""
        return {"name": self.name, "status": self.status, "message": self.message, "hint": self.hint}


def has_errors(results: list[CheckResult]) -> bool:
    """True when any row is an error."""
    return any(r.status == "error" for r in results)


def counts(results: list[CheckResult]) -> dict[str, int]:
    """Rows per status."""
    return {s: sum(1 for r in results if r.status == s) for s in STATUSES}
