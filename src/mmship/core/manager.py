"""The plugin manager: built-ins and entry-point plugins, loaded with guards.

Nothing is loaded at import time: :func:`get_plugin_manager` builds the manager on first
use, registering mmship's own plugins by module name (:mod:`mmship.core.builtins`) and
then the ``mmship`` entry-point group, the same way.

Registration hooks (``mmship_register_adapters``, ``_targets``, ``_runtimes``,
``_codecs``) run **once**, the first time a registry is asked for, and the registries are
cached until a plugin is registered or unregistered at run time. They run plugin by
plugin through pluggy (:meth:`PluginManager.call_for_plugin`), so tracing and hook-call
monitoring see them like any other hook call. A plugin that fails to
import, implements a hook mmship does not define, or raises (or registers something
invalid) in a registration hook is **unregistered**, its partial registrations are
dropped, and it is reported by name with its error (``mmship plugins``); everything else
goes on without it.

Environment:

* ``MMSHIP_DISABLE_PLUGINS=a,b``: plugins (built-in or entry-point names) not to load;
  the essential built-ins (:data:`mmship.core.builtins.ESSENTIAL`) refuse, and say so;
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
from mmship.core.builtins import BUILTIN_PLUGINS, ESSENTIAL
from mmship.core.errors import MmshipError
from mmship.core.registry import (
    AdapterRegistry,
    CodecRegistry,
    Registry,
    RuntimeRegistry,
    TargetRegistry,
)

ENTRY_POINT_GROUP = "mmship"
DISABLE_ENV = "MMSHIP_DISABLE_PLUGINS"
NO_AUTOLOAD_ENV = "MMSHIP_DISABLE_PLUGIN_AUTOLOAD"
TRACE_ENV = "MMSHIP_TRACE_HOOKS"

Source = Literal["builtin", "entrypoint", "runtime"]
Status = Literal["loaded", "failed", "disabled"]

#: Registration hook -> the registry class it fills.
REGISTRATION_HOOKS: dict[str, type[Registry[Any]]] = {
    "mmship_register_adapters": AdapterRegistry,
    "mmship_register_targets": TargetRegistry,
    "mmship_register_runtimes": RuntimeRegistry,
    "mmship_register_codecs": CodecRegistry,
}


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
    essential: bool = False


def _env_list(name: str) -> set[str]:
    return {part.strip() for part in os.environ.get(name, "").split(",") if part.strip()}


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


class PluginManager:
    """pluggy's manager plus load records and the cached registries."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self.notes: list[str] = []
        self._disabled = _env_list(DISABLE_ENV)
        self._registries: dict[str, Registry[Any]] | None = None
        if _truthy(TRACE_ENV):
            self.pm.trace.root.setwriter(sys.stderr.write)
            self.pm.enable_tracing()

    @property
    def hook(self) -> Any:
        """The hook relay: ``manager.hook.mmship_export(...)``."""
        return self.pm.hook

    # --- loading ------------------------------------------------------------------

    def load_builtins(self) -> None:
        """Register mmship's own plugins by module name, each as a named plugin."""
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
        """Register a plugin object at run time (tests, embedding applications); the
        registries are rebuilt on next use."""
        record = self._load(name, "runtime", lambda: plugin, getattr(plugin, "__name__", repr(plugin)))
        self._registries = None
        return record

    def unregister(self, name: str) -> None:
        """Remove a plugin registered under ``name``; the registries are rebuilt on next use."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin, name=name)
        self.records.pop(name, None)
        self._registries = None

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
        essential = source == "builtin" and name in ESSENTIAL
        record = PluginRecord(name, source, "loaded", module, distribution, version, essential=essential)
        self.records[name] = record
        if name in self._disabled:
            if essential:
                self.notes.append(
                    f"{DISABLE_ENV} names {name!r}, an essential built-in; it stays loaded "
                    "(replace it by implementing the same hook in your own plugin)"
                )
            else:
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
            known = [n for n in dir(hookspecs) if n.startswith("mmship_")]
            parts = []
            for hook_name in unknown:
                close = difflib.get_close_matches(hook_name, known, n=1)
                parts.append(hook_name + (f" (did you mean {close[0]}?)" if close else ""))
            return self._fail(record, "implements hooks mmship does not define: " + ", ".join(parts))
        record.hooks = sorted(hc.name for hc in self.pm.get_hookcallers(plugin) or [])
        return record

    def _fail(self, record: PluginRecord, error: str, tb: str | None = None) -> PluginRecord:
        """Mark ``record`` failed and unregister its plugin (if it got registered)."""
        record.status = "failed"
        record.error = error
        record.traceback = tb
        plugin = self.pm.get_plugin(record.name)
        if plugin is not None:
            self.pm.unregister(plugin, name=record.name)
        return record

    def fail(self, name: str, error: str, tb: str | None = None) -> None:
        """Report plugin ``name`` as failed (e.g. its commands raised) and unregister it."""
        record = self.records.get(name)
        if record is not None:
            self._fail(record, error, tb)
            self._registries = None

    # --- registration hooks -----------------------------------------------------------

    def call_for_plugin(self, hook_name: str, plugin_name: str, **kwargs: Any) -> list[Any]:
        """Call hook ``hook_name`` of plugin ``plugin_name`` only, through pluggy (so
        ``MMSHIP_TRACE_HOOKS`` and hook-call monitors see the call); exceptions propagate."""
        others = [p for n, p in self.pm.list_name_plugin() if n != plugin_name and p is not None]
        return self.pm.subset_hook_caller(hook_name, others)(**kwargs)  # type: ignore[no-any-return]

    def _build_registries(self) -> dict[str, Registry[Any]]:
        registries = {hook: cls() for hook, cls in REGISTRATION_HOOKS.items()}
        for name, plugin in list(self.pm.list_name_plugin()):
            if plugin is None or name not in self.records:
                continue
            added: list[tuple[Registry[Any], str]] = []
            try:
                for hook_name, registry in registries.items():
                    if not any(impl.plugin_name == name for impl in getattr(self.pm.hook, hook_name).get_hookimpls()):
                        continue

                    def register(cls: Any, reg: Registry[Any] = registry) -> None:
                        added.append((reg, reg.add(cls, name)))

                    self.call_for_plugin(hook_name, name, register=register)
            except Exception as exc:
                for registry, entry in added:
                    registry.remove(entry)
                detail = str(exc) if isinstance(exc, MmshipError) else f"{type(exc).__name__}: {exc}"
                self._fail(self.records[name], f"registration failed: {detail}", traceback.format_exc())
        return registries

    def _registry(self, hook_name: str) -> Registry[Any]:
        if self._registries is None:
            self._registries = self._build_registries()
        return self._registries[hook_name]

    def adapters(self) -> AdapterRegistry:
        """Adapters registered by every loaded plugin (registration runs once, cached)."""
        return self._registry("mmship_register_adapters")  # type: ignore[return-value]

    def targets(self) -> TargetRegistry:
        """Deploy targets registered by every loaded plugin (cached)."""
        return self._registry("mmship_register_targets")  # type: ignore[return-value]

    def runtimes(self) -> RuntimeRegistry:
        """Inference runtimes registered by every loaded plugin (cached)."""
        return self._registry("mmship_register_runtimes")  # type: ignore[return-value]

    def codecs(self) -> CodecRegistry:
        """Payload codecs registered by every loaded plugin (cached)."""
        return self._registry("mmship_register_codecs")  # type: ignore[return-value]

    def failures(self) -> list[PluginRecord]:
        """Plugins that failed to load or register."""
        self._registry("mmship_register_adapters")  # registration failures count too
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
