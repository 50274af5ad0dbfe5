"""Instance sizes: parse ``gpu.large``-style names and recommend a size from weights.

The rule of thumb (from the team that asked for mmship): models under 1 GB on a medium
instance, 1-3 GB on a large one, more on an xlarge one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GB = 1_000_000_000
#: Size names, smallest first.
SIZES: tuple[str, ...] = ("nano", "micro", "small", "medium", "large", "xlarge")
_NX_LARGE = re.compile(r"^(\d+)xlarge$")


@dataclass(frozen=True)
class InstanceType:
    """``gpu.large`` -> family ``gpu``, size ``large``."""

    family: str
    size: str

    @property
    def rank(self) -> int:
        """Position of the size, smallest first (``2xlarge`` ranks above ``xlarge``)."""
        return size_rank(self.size)


def size_rank(size: str) -> int:
    """Rank of a size name; ``-1`` when unknown."""
    size = size.lower()
    if size in SIZES:
        return SIZES.index(size)
    match = _NX_LARGE.match(size)
    if match:
        return len(SIZES) - 1 + max(int(match.group(1)) - 1, 1)
    return -1


def parse_instance_type(text: str | None) -> InstanceType | None:
    """``gpu.large``, ``cpu-medium`` -> :class:`InstanceType`; ``None`` when the name has
    no known size (e.g. a platform's own ``h100-x1``)."""
    if not text:
        return None
    parts = re.split(r"[.\-_/]", text.strip().lower())
    if len(parts) < 2 or size_rank(parts[-1]) < 0:
        return None
    return InstanceType(family=".".join(parts[:-1]), size=parts[-1])


def recommended_size(weights_bytes: int) -> str:
    """``medium`` under 1 GB, ``large`` up to 3 GB, ``xlarge`` above."""
    if weights_bytes < 1 * GB:
        return "medium"
    if weights_bytes <= 3 * GB:
        return "large"
    return "xlarge"


def family_for(accelerator: str) -> str:
    """The instance family an accelerator needs: ``cpu`` or ``gpu``."""
    return "cpu" if accelerator == "cpu" else "gpu"


def show_size(n_bytes: int) -> str:
    """``0.61 GB`` / ``12.3 MB``."""
    if n_bytes >= GB / 10:
        return f"{n_bytes / GB:.2f} GB"
    return f"{n_bytes / 1_000_000:.1f} MB"
