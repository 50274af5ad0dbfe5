"""mmship: Hugging Face multimodal models from checkpoint to served endpoint.

The public extension API is :data:`hookimpl` (the marker plugins decorate their hook
implementations with) and the hook specifications in :mod:`mmship.core.hookspecs`.
Nothing here loads a plugin, torch or transformers: importing mmship is cheap.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

PROJECT_NAME = "mmship"

#: Marker for hook implementations: ``@mmship.hookimpl``.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "__version__", "hookimpl"]
