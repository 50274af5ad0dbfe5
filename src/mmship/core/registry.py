"""Registries of the classes plugins register: adapters, targets, inference runtimes, codecs.

Every registry has the same shape: classes by unique ``name``, remembering which plugin
registered each, with errors that name the plugin behind a clash and suggest close names.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from mmship.core.adapter import Adapter
from mmship.core.codec import OPERATIONS, Codec
from mmship.core.errors import (
    AdapterError,
    DeployError,
    PluginError,
    RuntimeUnavailableError,
)
from mmship.core.runtime import InferenceRuntime
from mmship.core.target import COMMAND_FLAGS, Target, TargetOption

T = TypeVar("T", Adapter, Target, InferenceRuntime, Codec)


class Registry(Generic[T]):
    """Classes by unique ``name``, remembering which plugin registered each."""

    kind: str = "class"
    base: type

    def __init__(self) -> None:
        self._classes: dict[str, type[T]] = {}
        self._owners: dict[str, str] = {}

    def add(self, cls: type[T], owner: str) -> str:
        """Add ``cls`` and return its name; raises :class:`PluginError` for a
        non-subclass or a taken name."""
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise PluginError(
                f"plugin {owner!r} registered {cls!r} as a {self.kind}, but it is not a "
                f"subclass of {self.base.__module__}.{self.base.__name__}",
                hint=f"subclass {self.base.__name__} and pass the class itself to register()",
            )
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(
                f"plugin {owner!r} registered {self.kind} {cls.__name__} without a name",
                hint=f"set the class attribute name = '...' on {cls.__name__}",
            )
        if name in self._classes and self._classes[name] is not cls:
            raise PluginError(
                f"{self.kind} name {name!r} from plugin {owner!r} is already taken by "
                f"plugin {self._owners[name]!r}",
                hint=f"rename one of the two, or disable one with MMSHIP_DISABLE_PLUGINS={owner}",
            )
        self._classes[name] = cls
        self._owners[name] = owner
        return name

    def remove(self, name: str) -> None:
        """Forget ``name`` (a plugin whose registration failed half-way)."""
        self._classes.pop(name, None)
        self._owners.pop(name, None)

    def owner(self, name: str) -> str:
        """The plugin that registered ``name``."""
        return self._owners[name]

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._classes)

    def __iter__(self) -> Iterator[type[T]]:
        return iter(self._classes[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._classes)

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=1)
        known = ", ".join(self.names()) or "none"
        suggestion = f" (did you mean {close[0]!r}?)" if close else ""
        return f"no {self.kind} called {name!r}{suggestion}; known: {known}"


class AdapterRegistry(Registry[Adapter]):
    """Adapters by name, with auto-detection from ``config.json``."""

    kind = "adapter"
    base = Adapter

    def get(self, name: str) -> type[Adapter]:
        """The adapter class called ``name``."""
        try:
            return self._classes[name]
        except KeyError:
            raise AdapterError(
                self._unknown(name),
                hint="run `mmship adapters` to list adapters, or install the plugin that provides it",
            ) from None

    def detect(self, hf_config: Mapping[str, Any], where: str = "config.json") -> type[Adapter]:
        """The one adapter matching ``hf_config``; errors name what was found and the fix."""
        matches = [cls for cls in self if cls.matches(hf_config)]
        model_type = hf_config.get("model_type")
        archs = hf_config.get("architectures") or []
        if len(matches) == 1:
            return matches[0]
        if not matches:
            served = sorted({t for cls in self for t in cls.model_types})
            raise AdapterError(
                f"no adapter matches {where} (model_type={model_type!r}, "
                f"architectures={archs}); adapters serve model types: {', '.join(served)}",
                hint="pass --adapter NAME if one fits, or install a plugin that adds an "
                "adapter for this model family (see docs/writing-an-adapter.md)",
            )
        names = ", ".join(cls.name for cls in matches)
        raise AdapterError(
            f"several adapters match {where} (model_type={model_type!r}): {names}",
            hint="choose one with --adapter NAME (or model.adapter in deploy_config.yaml)",
        )


class TargetRegistry(Registry[Target]):
    """Deploy targets by name, with the flags and URL schemes they declare (checked when
    a target is added: a broken declaration fails its plugin, not the CLI)."""

    kind = "target"
    base = Target

    def add(self, cls: type[Target], owner: str) -> str:
        """Add ``cls`` after checking its ``cli_options`` and ``url_schemes``."""
        name = super().add(cls, owner)
        try:
            self._check_options(cls, owner)
            self._check_schemes(cls, owner)
        except PluginError:
            self.remove(name)
            raise
        return name

    def get(self, name: str) -> type[Target]:
        """The target class called ``name``."""
        try:
            return self._classes[name]
        except KeyError:
            raise DeployError(
                self._unknown(name),
                hint="run `mmship plugins` to see the targets, or install the plugin that provides it",
            ) from None

    def options(self) -> list[tuple[TargetOption, list[tuple[str, TargetOption]]]]:
        """Every declared flag once (as its first declaration), with each target that
        declares it and its declaration there (help texts differ), in name order."""
        merged: dict[str, tuple[TargetOption, list[tuple[str, TargetOption]]]] = {}
        for cls in self:
            for option in cls.cli_options:
                merged.setdefault(option.flag, (option, []))[1].append((cls.name, option))
        return list(merged.values())

    def schemes(self) -> dict[str, type[Target]]:
        """URL scheme -> the target that answers ``mmship invoke SCHEME://ID``."""
        return {scheme: cls for cls in self for scheme in cls.url_schemes}

    def for_scheme(self, scheme: str) -> type[Target]:
        """The target declaring URL scheme ``scheme``."""
        known = self.schemes()
        if scheme not in known:
            listed = ", ".join(f"{s}:// ({c.name})" for s, c in sorted(known.items())) or "none"
            raise DeployError(
                f"no deploy target answers {scheme}:// URLs (schemes: {listed})",
                hint="use http(s)://HOST:PORT for an mmship server, or install the plugin that adds the target",
            )
        return known[scheme]

    def _check_options(self, cls: type[Target], owner: str) -> None:
        fields = cls.settings_model.model_fields
        others: dict[str, tuple[TargetOption, str]] = {}
        for other in self:
            for declared in other.cli_options if other is not cls else ():
                others.setdefault(declared.flag, (declared, other.name))
        for option in cls.cli_options:
            where = f"target {cls.name!r} (plugin {owner!r}) declares {option.flag}"
            if not isinstance(option, TargetOption) or not _FLAG.match(option.flag) or (option.short and not _SHORT.match(option.short)):
                raise PluginError(f"{where}: expected a TargetOption with a --long-flag (and an optional -x)", hint="write TargetOption('--out', 'out', 'help text')")
            taken = {option.flag, option.short} & COMMAND_FLAGS
            if taken:
                raise PluginError(f"{where}: {', '.join(sorted(f for f in taken if f))} belongs to `mmship deploy` itself", hint="choose another flag")
            if option.setting not in fields:
                raise PluginError(
                    f"{where} for setting {option.setting!r}, which {cls.settings_model.__name__} does not have "
                    f"(fields: {', '.join(fields) or 'none'})",
                    hint="name a field of the target's settings_model",
                )
            if option.is_flag and fields[option.setting].annotation is not bool:
                raise PluginError(f"{where} as a switch, but setting {option.setting!r} is not a bool", hint="drop is_flag=True or make the field a bool")
            if option.flag in others:
                first, other = others[option.flag]
                if (first.setting, first.is_flag, first.short) != (option.setting, option.is_flag, option.short):
                    raise PluginError(
                        f"{where} for setting {option.setting!r}, but target {other!r} declares it for "
                        f"{first.setting!r} (is_flag={first.is_flag}, short={first.short!r})",
                        hint="declare a shared flag the same way in both targets, or choose another flag",
                    )

    def _check_schemes(self, cls: type[Target], owner: str) -> None:
        taken = self.schemes()
        for scheme in cls.url_schemes:
            where = f"target {cls.name!r} (plugin {owner!r}) declares URL scheme {scheme!r}"
            if not _SCHEME.match(scheme) or scheme in ("http", "https"):
                raise PluginError(f"{where}: expected a lower-case scheme other than http/https", hint="write e.g. url_schemes = ('myplatform',)")
            if taken.get(scheme, cls) is not cls:
                raise PluginError(f"{where}, already taken by target {taken[scheme].name!r}", hint="choose another scheme")
        if cls.url_schemes and not (cls.supports("invoke") and cls.invoke_modes):
            raise PluginError(
                f"target {cls.name!r} (plugin {owner!r}) declares URL schemes but no invoke method and invoke_modes",
                hint="implement invoke() and set invoke_modes, or drop url_schemes",
            )


_FLAG = re.compile(r"^--[a-z0-9][a-z0-9-]*$")
_SHORT = re.compile(r"^-[A-Za-z]$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")


class RuntimeRegistry(Registry[InferenceRuntime]):
    """Inference runtimes (onnxruntime, OpenVINO, ...) by name."""

    kind = "runtime"
    base = InferenceRuntime

    def get(self, name: str) -> type[InferenceRuntime]:
        """The runtime class called ``name``."""
        try:
            return self._classes[name]
        except KeyError:
            raise RuntimeUnavailableError(
                self._unknown(name),
                hint="run `mmship plugins` to see the runtimes, or install the plugin that provides it",
            ) from None

    def for_file(self, filename: str) -> list[type[InferenceRuntime]]:
        """Runtimes that read a graph file by its suffix, in name order."""
        return [cls for cls in self if any(filename.endswith(s) for s in cls.file_suffixes)]


def _shape(route: str) -> str:
    """``route`` with every ``{placeholder}`` alike: ``/m/{a}`` and ``/m/{b}`` clash."""
    return re.sub(r"\{[^}]*\}", "{}", route)


def _check_optional_paths(cls: type[Codec], owner: str) -> None:
    """A codec's models route and error prefix, when it has them, are paths."""
    for what, value in (("models_route", cls.models_route), ("error_prefix", cls.error_prefix)):
        if value is not None and not (isinstance(value, str) and value.startswith("/") and len(value) > 1):
            raise PluginError(
                f"codec {cls.name!r} from plugin {owner!r} has {what} {value!r}",
                hint=f"set {what} to a path such as '/mine/' (not '/'), or to None",
            )


def _claims_clash(cls: type[Codec], other: type[Codec]) -> list[tuple[str, str]]:
    """What ``cls`` claims that ``other`` holds: the same models route, or an error prefix
    overlapping the other's prefix or covering one of its routes."""
    clashes: list[tuple[str, str]] = []
    if cls.models_route is not None and cls.models_route == other.models_route:
        clashes.append(("models route", cls.models_route))
    for mine, theirs in ((cls, other), (other, cls)):
        prefix = mine.error_prefix
        if prefix is None:
            continue
        if theirs.error_prefix is not None and (
            prefix.startswith(theirs.error_prefix) or theirs.error_prefix.startswith(prefix)
        ):
            clashes.append(("error prefix", cls.error_prefix or prefix))
        clashes += [("error prefix", prefix) for r in theirs.routes if r.startswith(prefix)]
    return clashes[:1]


class CodecRegistry(Registry[Codec]):
    """Payload codecs by name; each protocol name and each route belongs to one codec."""

    kind = "codec"
    base = Codec

    def add(self, cls: type[Codec], owner: str) -> str:
        """Add ``cls``; raises :class:`PluginError` for an unknown operation, a route
        that is not a path, or a protocol name or route another codec already has."""
        name = super().add(cls, owner)
        try:
            self._check(cls, owner)
        except PluginError:
            self.remove(name)
            raise
        return name

    def _check(self, cls: type[Codec], owner: str) -> None:
        operation = getattr(cls, "operation", None)
        if operation not in OPERATIONS:
            raise PluginError(
                f"codec {cls.name!r} from plugin {owner!r} has operation {operation!r}",
                hint=f"set operation to one of {', '.join(OPERATIONS)}",
            )
        routes = getattr(cls, "routes", ())
        if not routes or not all(isinstance(r, str) and r.startswith("/") for r in routes):
            raise PluginError(
                f"codec {cls.name!r} from plugin {owner!r} has routes {routes!r}",
                hint="set routes to a tuple of paths, e.g. ('/mine/infer',)",
            )
        _check_optional_paths(cls, owner)
        for other in self:
            if other is cls:
                continue
            theirs = {_shape(r) for r in other.routes}
            taken = [("route", r) for r in routes if _shape(r) in theirs]
            taken += [("protocol", p) for p in cls.protocol_names() if p in other.protocol_names()]
            taken += _claims_clash(cls, other)
            if taken:
                what, value = taken[0]
                raise PluginError(
                    f"{what} {value!r} of codec {cls.name!r} from plugin {owner!r} is already taken by "
                    f"codec {other.name!r} of plugin {self.owner(other.name)!r}",
                    hint=f"choose another {what}, or disable one with MMSHIP_DISABLE_PLUGINS={owner}",
                )

    def get(self, name: str) -> type[Codec]:
        """The codec class called ``name``."""
        try:
            return self._classes[name]
        except KeyError:
            raise PluginError(self._unknown(name), hint="run `mmship plugins` to see the codecs") from None

    def protocols(self) -> list[str]:
        """Every protocol name the registered codecs speak, sorted."""
        return sorted(p for cls in self for p in cls.protocol_names())

    def for_protocol(self, protocol: str) -> type[Codec]:
        """The codec speaking ``protocol``; the error names the known protocols."""
        for cls in self:
            if protocol in cls.protocol_names():
                return cls
        raise PluginError(
            f"no payload plugin encodes protocol {protocol!r}",
            hint=f"use one of {', '.join(self.protocols()) or 'none'}; `mmship plugins` lists the codecs",
        )
