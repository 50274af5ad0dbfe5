"""The module named by the ``mmship`` entry point: it only registers the adapter."""

from __future__ import annotations

import mmship
from mmship_siglip.adapter import SiglipAdapter


@mmship.hookimpl
def mmship_register_adapters(register):
    """Hand mmship the SigLIP adapter class."""
    register(SiglipAdapter)
