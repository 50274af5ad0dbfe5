"""The plugin manager: built-ins and entry-point plugins, loaded with guards.

Nothing is loaded at import time: :func:`get_plugin_manager` builds the manager on first
use. A plugin that fails to import, fails to register, or implements a hook mmship does
not define is unregistered and reported by name with its error (``mmship plugins``); the
CLI goes on without it.

Environment:

* ``MMSHIP_DISABLE_PLUGINS=a,b``: plugins (built-in or entry-point names) not to load;
* ``MMSHIP_DISABLE_PLUGIN_AUTOLOAD=1``: load no entry-point plugins (built-ins still load);
* ``MMSHIP_TRACE_HOOKS=1``: print every hook call to stderr.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal

import pluggy

from mmship import PROJECT_NAME
from mmship.core import hookspecs
from mmship.core.errors import MmshipError
from mmship.core.registry import AdapterRegistry, TargetRegistry

ENTRY_POINT_GROUP = "mmship"
DISABLE_ENV = "MMSHIP_DISABLE_PLUGINS"
NO_AUTOLOAD_ENV = "MMSHIP_DISABLE_PLUGIN_AUTOLOAD"
TRACE_ENV = "MMSHIP_TRACE_HOOKS"

Source = Literal["builtin", "entrypoint", "runtime"]
Status = Literal["loaded", "failed", "disabled"]


@dataclass
class PluginRecord:
    """What ``mmship plugins`` shows for one plugin."""

    name: str
    source: Source
    status: Status
    module: str = ""
    distribution: str = ""
    version: str = ""
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None


def _env_list(name: str) -> set[str]:
    return {part.strip() for part in os.environ.get(name, "").split(",") if part.strip()}


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


class PluginManager:
    """pluggy's manager plus load records and the adapter/target registries."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self._disabled = _env_list(DISABLE_ENV)
        if _truthy(TRACE_ENV):
            self.pm.trace.root.setwriter(sys.stderr.write)
            self.pm.enable_tracing()

    @property
    def hook(self) -> Any:
        """The hook relay: ``manager.hook.mmship_export(...)``."""
        return self.pm.hook

    # --- loading ------------------------------------------------------------------

    def load_builtins(self) -> None:
        """Register mmship's own adapters, stages and targets, each as a plugin."""
        from mmship.plugins import BUILTIN_PLUGINS

        for name, module_name in BUILTIN_PLUGINS.items():
            self._load(name, "builtin", lambda m=module_name: importlib.import_module(m), module_name)

    def load_entrypoints(self) -> None:
        """Register third-party plugins from the ``mmship`` entry-point group."""
        if _truthy(NO_AUTOLOAD_ENV):
            return
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            self._load(
                ep.name,
                "entrypoint",
                ep.load,
                ep.value,
                distribution=dist.name if dist else "",
                version=dist.version if dist else "",
            )

    def register(self, plugin: object, name: str) -> PluginRecord:
        """Register a plugin object at run time (tests, embedding applications)."""
        return self._load(name, "runtime", lambda: plugin, getattr(plugin, "__name__", repr(plugin)))

    def unregister(self, name: str) -> None:
        """Remove a plugin registered under ``name``."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin, name=name)
        self.records.pop(name, None)

    def _load(
        self,
        name: str,
        source: Source,
        loader: Callable[[], object],
        module: str,
        *,
        distribution: str = "",
        version: str = "",
    ) -> PluginRecord:
        record = PluginRecord(name, source, "loaded", module, distribution, version)
        self.records[name] = record
        if name in self._disabled:
            record.status = "disabled"
            self.pm.set_blocked(name)
            return record
        try:
            plugin = loader()
            self.pm.register(plugin, name=name)
        except Exception as exc:  # a broken plugin must never stop mmship
            return self._fail(record, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        unknown = [hc.name for hc in self.pm.get_hookcallers(plugin) or [] if not hc.has_spec()]
        if unknown:
            self.pm.unregister(plugin, name=name)
            known = [n for n in dir(hookspecs) if n.startswith("mmship_")]
            parts = []
            for hook_name in unknown:
                close = difflib.get_close_matches(hook_name, known, n=1)
                parts.append(hook_name + (f" (did you mean {close[0]}?)" if close else ""))
            return self._fail(record, "implements hooks mmship does not define: " + ", ".join(parts))
        record.hooks = sorted(hc.name for hc in self.pm.get_hookcallers(plugin) or [])
        return record

    def _fail(self, record: PluginRecord, error: str, tb: str | None = None) -> PluginRecord:
        record.status = "failed"
        record.error = error
        record.traceback = tb
        return record

    # --- registration hooks -----------------------------------------------------------

    def _collect(self, hook_name: str, registry: AdapterRegistry | TargetRegistry) -> None:
        hook = getattr(self.pm.hook, hook_name)
        for impl in hook.get_hookimpls():  # registration order
            owner = impl.plugin_name
            try:
                impl.function(register=lambda cls, o=owner: registry.add(cls, o))
            except Exception as exc:
                detail = str(exc) if isinstance(exc, MmshipError) else f"{type(exc).__name__}: {exc}"
                record = self.records.get(owner)
                if record is not None:
                    self._fail(record, f"{hook_name} failed: {detail}", traceback.format_exc())

    def adapters(self) -> AdapterRegistry:
        """Adapters registered by every loaded plugin (asked afresh on each call)."""
        registry = AdapterRegistry()
        self._collect("mmship_register_adapters", registry)
        return registry

    def targets(self) -> TargetRegistry:
        """Deploy targets registered by every loaded plugin (asked afresh on each call)."""
        registry = TargetRegistry()
        self._collect("mmship_register_targets", registry)
        return registry

    def failures(self) -> list[PluginRecord]:
        """Plugins that failed to load or register."""
        return [r for r in self.records.values() if r.status == "failed"]


_manager: PluginManager | None = None


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, built (built-ins, then entry points) on first use."""
    global _manager
    if _manager is None:
        manager = PluginManager()
        manager.load_builtins()
        manager.load_entrypoints()
        _manager = manager
    return _manager


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests; after changing the environment)."""
    global _manager
    _manager = None
