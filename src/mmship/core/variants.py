"""Graph variants: one tower built for one (runtime, precision) pair.

A build plans the variants (:func:`plan_variants`), the validate stage measures each one's
accuracy and speed and picks the fastest verified variant per tower, the manifest records
every variant and the choice, and serving takes the choice unless told otherwise
(:func:`select_graphs`), falling back to onnxruntime where a chosen runtime is not
installed. The fp32 onnxruntime graph is always built: it is the accuracy reference and
the variant every machine can serve.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mmship.core.errors import BuildError, BundleError, RuntimeUnavailableError

if TYPE_CHECKING:
    from mmship.core.bundle import BundleManifest, GraphFile
    from mmship.core.registry import RuntimeRegistry

#: The runtime every bundle can be served with.
BASE_RUNTIME = "onnxruntime"
#: Precisions built when none are named: onnxruntime's (as before variants), the others'.
DEFAULT_PRECISIONS = {BASE_RUNTIME: ("fp32", "int8")}
OTHER_DEFAULT_PRECISIONS = ("fp32", "bf16", "int8")


def variant_key(runtime: str, precision: str) -> str:
    """The key of a variant in the build's graphs, the report and file names: the precision
    alone for onnxruntime (as bundles always had it), ``runtime-precision`` otherwise."""
    return precision if runtime == BASE_RUNTIME else f"{runtime}-{precision}"


@dataclass(frozen=True)
class Variant:
    """One (runtime, precision) pair a build makes.

    :param required: a failure (cannot be built, over the accuracy budget) stops the build;
        otherwise the variant is left out with a note.
    :param timed: measured for the choice of the fastest variant.
    """

    runtime: str
    precision: str
    required: bool = True
    timed: bool = True

    @property
    def key(self) -> str:
        """See :func:`variant_key`."""
        return variant_key(self.runtime, self.precision)


@dataclass
class VariantPlan:
    """The variants of a build, and why some runtime was left out."""

    variants: list[Variant]
    notes: list[str] = field(default_factory=list)

    def optional(self) -> tuple[str, ...]:
        """Keys of the variants that are dropped rather than failing the build."""
        return tuple(v.key for v in self.variants if not v.required)

    def timed(self) -> tuple[str, ...]:
        """Keys of the variants timed for the choice."""
        return tuple(v.key for v in self.variants if v.timed)


def _runtimes(asked: list[str] | None, registry: RuntimeRegistry, notes: list[str]) -> list[str]:
    if asked is None:
        names = [BASE_RUNTIME]
        for cls in registry:
            if cls.name == BASE_RUNTIME:
                continue
            if cls.available():
                names.append(cls.name)
            else:
                notes.append(f"no {cls.name} variants: {cls.requires or cls.name} is not installed")
        return names
    names = list(dict.fromkeys(asked))
    for name in names:
        cls = registry.get(name)  # unknown: PluginError naming the runtimes registered
        if not cls.available():
            raise BuildError(
                f"--runtime {name}: {cls.requires or name} is not installed here",
                hint=f"pip install 'mmship[{name}-build]' (or the package {cls.requires!r}), or leave out --runtime {name}",
            )
    return names


def plan_variants(
    precisions: list[str] | None, runtimes: list[str] | None, registry: RuntimeRegistry
) -> VariantPlan:
    """The variants to build.

    * nothing named: onnxruntime fp32 + int8 (required), and fp32, bf16 and int8 for every
      other installed runtime (optional: left out with a note where they cannot be built
      or lose too much accuracy);
    * precisions named: those, for onnxruntime (required) and the other installed runtimes
      (optional);
    * runtimes named: exactly those runtimes' variants, and only those timed; required
      when precisions are named too (else a runtime's defaults, optional).

    The onnxruntime fp32 graph is always in the plan (reference and fallback).
    """
    notes: list[str] = []
    names = _runtimes(runtimes, registry, notes)
    variants: dict[str, Variant] = {}
    for runtime in names:
        if precisions is not None:
            wanted: Iterable[str] = precisions
        else:
            wanted = DEFAULT_PRECISIONS.get(runtime, OTHER_DEFAULT_PRECISIONS)
        named = (precisions is not None or runtime == BASE_RUNTIME, runtimes is not None or runtime == BASE_RUNTIME)
        required = all(named)
        for precision in dict.fromkeys(wanted):
            variant = Variant(runtime, precision, required=required)
            variants.setdefault(variant.key, variant)
    reference = variants.pop("fp32", None) or Variant(BASE_RUNTIME, "fp32", required=True, timed=runtimes is None)
    ordered = [reference, *variants.values()]
    return VariantPlan(ordered, notes)


@dataclass
class Selection:
    """The graph file served per tower, and notes on what was chosen instead of what."""

    files: dict[str, GraphFile]
    notes: list[str] = field(default_factory=list)

    @property
    def precision(self) -> str:
        """The served precision: one word when all towers share it, else per tower."""
        found = {f.precision for f in self.files.values()}
        if len(found) == 1:
            return found.pop()
        return ", ".join(f"{name} {f.precision}" for name, f in self.files.items())


def _label(graph: GraphFile) -> str:
    return f"{graph.runtime} {graph.precision}"


def built_text(graphs: list[GraphFile]) -> str:
    """The variants of one tower as people read them: ``onnxruntime: fp32, int8; openvino: fp32``."""
    by_runtime: dict[str, list[str]] = {}
    for graph in graphs:
        by_runtime.setdefault(graph.runtime, []).append(graph.precision)
    return "; ".join(f"{runtime}: {', '.join(p)}" for runtime, p in by_runtime.items()) or "none"


def _preferred(candidates: list[GraphFile], manifest: BundleManifest, tower: str) -> GraphFile:
    """The chosen variant when among ``candidates``, else the fastest timed one, else the
    onnxruntime graph at the serving precision, else the first."""
    chosen = manifest.chosen.get(tower)
    for graph in candidates:
        if chosen is not None and (graph.runtime, graph.precision) == (chosen.runtime, chosen.precision):
            return graph
    timed = [g for g in candidates if g.timing_ms.get("batch")]
    if timed:
        return min(timed, key=lambda g: g.timing_ms["batch"])
    for graph in candidates:
        if (graph.runtime, graph.precision) == (BASE_RUNTIME, manifest.serving_params.precision):
            return graph
    return candidates[0]


def select_graphs(
    manifest: BundleManifest, registry: RuntimeRegistry, precision: str | None = None, runtime: str | None = None,
    check_available: bool = True,
) -> Selection:
    """The graph to serve per tower: the build's choice, or the variant ``precision`` and
    ``runtime`` name; a runtime that is not installed here is replaced by one that is
    (with a note), unless it was named. ``check_available=False`` (a target writing files
    for another machine) keeps the choice whatever is installed here."""
    files: dict[str, GraphFile] = {}
    notes: list[str] = []
    for spec in manifest.graph_specs:
        every = [g for g in manifest.graphs if g.name == spec.name]
        candidates = [
            g for g in every if (precision is None or g.precision == precision) and (runtime is None or g.runtime == runtime)
        ]
        if not candidates:
            built = built_text(every)
            asked = " ".join(f"--{k} {v}" for k, v in (("runtime", runtime), ("precision", precision)) if v)
            what = (f"no {precision} graph" if precision else "no graph") + (f" on {runtime}" if runtime else "")
            raise BundleError(
                f"the bundle has {what} for {spec.name!r} (variants built: {built})",
                hint=f"serve one of the variants built, or rebuild with `mmship build ... {asked}`",
            )
        pick = _preferred(candidates, manifest, spec.name)
        if check_available and not _available(registry, pick.runtime):
            if runtime is not None:
                raise RuntimeUnavailableError(
                    f"--runtime {runtime}: the {runtime} runtime is not installed here",
                    hint=f"pip install 'mmship[{runtime}]', or serve another variant (built: {built_text(every)})",
                )
            usable = [g for g in candidates if _available(registry, g.runtime)]
            same = [g for g in usable if g.precision == pick.precision]
            if not usable:
                raise RuntimeUnavailableError(
                    f"the {pick.precision} graph of {spec.name!r} needs {pick.runtime}, which is not installed here",
                    hint=f"pip install 'mmship[{pick.runtime}]', or serve another precision (built: {built_text(every)})",
                )
            fallback = same[0] if same else _preferred(usable, manifest, spec.name)
            notes.append(
                f"{pick.runtime} is not installed here: serving {spec.name} on {_label(fallback)} instead of "
                f"{_label(pick)} (pip install 'mmship[{pick.runtime}]' to serve the faster variant)"
            )
            pick = fallback
        files[spec.name] = pick
    return Selection(files, notes)


def _available(registry: RuntimeRegistry, name: str) -> bool:
    return name in registry and registry.get(name).available()
