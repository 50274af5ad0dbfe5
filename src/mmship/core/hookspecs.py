"""Hook specifications: the public extension API of mmship.

Third-party packages implement these with ``@mmship.hookimpl`` in a module exposed through
the ``mmship`` entry-point group. mmship's own adapters, stages and targets are plugins
implementing the same hooks.

Two kinds of hooks:

* **registration** hooks, called once (the first time mmship needs the registry): a
  plugin hands classes to a ``register`` callback (adapters, targets, runtimes, codecs)
  or adds Typer commands;
* **stage** hooks, ``firstresult``: the first implementation that returns something other
  than ``None`` decides; returning ``None`` declines and lets the next plugin try.
  Later-registered plugins are asked first, so a third party can override a built-in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from mmship import PROJECT_NAME

if TYPE_CHECKING:
    import typer

    from mmship.core.adapter import Adapter
    from mmship.core.bundle import Bundle
    from mmship.core.codec import Codec
    from mmship.core.config import DeployConfig
    from mmship.core.runtime import InferenceRuntime
    from mmship.core.specs import ExportedGraph, PreprocessSpec
    from mmship.core.stages import (
        BuildContext,
        ExportOptions,
        OptimizeOptions,
        QuantizeOptions,
        ValidateOptions,
    )
    from mmship.core.target import Deployment, DeployPlan, Target

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


# --- registration -----------------------------------------------------------------


@hookspec
def mmship_register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    """Register model-family adapters.

    :param register: call ``register(AdapterClass)`` once per adapter class; the class
        must subclass :class:`mmship.core.adapter.Adapter` and have a unique ``name``.
    """


@hookspec
def mmship_register_targets(register: Callable[[type[Target]], None]) -> None:
    """Register deploy targets.

    :param register: call ``register(TargetClass)`` once per target class; the class must
        subclass :class:`mmship.core.target.Target` and have a unique ``name``.
    """


@hookspec
def mmship_register_runtimes(register: Callable[[type[InferenceRuntime]], None]) -> None:
    """Register inference runtimes (engines that load and run graph files).

    :param register: call ``register(RuntimeClass)`` once per runtime class; the class
        must subclass :class:`mmship.core.runtime.InferenceRuntime` and have a unique
        ``name`` (the name the bundle manifest records per graph).
    """


@hookspec
def mmship_register_codecs(register: Callable[[type[Codec]], None]) -> None:
    """Register payload codecs: wire protocols the server mounts on their routes and the
    client speaks by protocol name, both directions of each (see
    :class:`mmship.core.codec.Codec`).

    :param register: call ``register(CodecClass)`` once per codec class; the class must
        subclass :class:`mmship.core.codec.Codec` and have a unique ``name``, unique
        protocol names and routes no other codec serves.
    """


@hookspec
def mmship_register_commands(app: typer.Typer) -> None:
    """Add commands to the ``mmship`` command line. mmship's own commands are plugins
    implementing this hook too; a plugin whose commands raise is reported and skipped.

    :param app: the root Typer application; use ``@app.command()`` or ``app.add_typer``.
    """


# --- build stages -----------------------------------------------------------------


@hookspec(firstresult=True)
def mmship_align_preprocess(adapter: Adapter, source: Path) -> PreprocessSpec | None:
    """Read a model's Hugging Face processor and write down exactly what the server must
    do to images and texts (resize, crop, rescale, normalise, tokenize, pad).

    :param adapter: the adapter of the model being built.
    :param source: the local model folder holding the processor files.
    :return: the preprocessing spec, or ``None`` to let another plugin decide.
    """


@hookspec(firstresult=True)
def mmship_export(
    adapter: Adapter, model: Any, workdir: Path, options: ExportOptions
) -> list[ExportedGraph] | None:
    """Export the eager model to graphs: one per tower, dynamic batch axis on every input
    and output.

    :param adapter: the adapter of the model; its ``export_modules`` gives the modules.
    :param model: the eager model the adapter loaded.
    :param workdir: folder to write the graphs into.
    :param options: opset and example batch size.
    :return: the exported graphs, or ``None`` to decline.
    """


@hookspec(firstresult=True)
def mmship_quantize(
    graph: ExportedGraph, precision: str, workdir: Path, options: QuantizeOptions, context: BuildContext
) -> ExportedGraph | None:
    """Convert an fp32 graph to another precision. Calibration (for static int8) belongs
    here: ``context`` gives the preprocessing and the processor files to turn real
    calibration inputs (the probe set) into graph feeds.

    The build calls this for the graphs (towers) of one variant at the same time, each in
    its own thread; an implementation that changes process-wide state (the working
    directory, global switches) takes a lock of its own so it converts one graph at a time.

    :param graph: the fp32 graph.
    :param precision: the precision asked for (``fp16`` or ``int8``).
    :param workdir: folder to write the new graph into.
    :param options: int8 mode (dynamic/static), per-channel, a calibration folder.
    :param context: the build's adapter, preprocessing spec and processor folder.
    :return: the converted graph, or ``None`` when this plugin does not handle
        ``precision``.
    """


@hookspec(firstresult=True)
def mmship_optimize(
    graph: ExportedGraph, workdir: Path, options: OptimizeOptions
) -> ExportedGraph | None:
    """Optimize a graph for serving. An implementation measures the speed-up and returns
    the original graph when the optimization does not help.

    :param graph: the graph to optimize.
    :param workdir: folder to write the optimized graph into.
    :param options: optimization level and the minimum speed-up worth keeping.
    :return: the graph to ship, or ``None`` to decline.
    """


@hookspec(firstresult=True)
def mmship_validate(
    graphs: dict[str, list[ExportedGraph]], context: BuildContext, options: ValidateOptions
) -> dict[str, Any] | None:
    """Validate the graphs about to be written into a bundle: run every graph at the
    batch sizes that matter, measure each precision's accuracy against fp32 on real
    inputs, and verify any preprocessing shortcut (e.g. padding texts to the batch's
    longest). Raise :class:`~mmship.core.errors.BuildError` to stop the build.

    :param graphs: the graphs per precision (``"fp32"`` always present).
    :param context: the build's adapter, preprocessing spec and processor folder.
    :param options: batch sizes to run and the accuracy budget.
    :return: the figures for ``report.json`` (``batches``, ``accuracy``,
        ``text_padding``); a ``text_padding.padding`` value different from the spec's
        changes the padding the bundle records. ``None`` declines.
    """


# --- deploy -------------------------------------------------------------------------


@hookspec(firstresult=True)
def mmship_deploy(
    bundle: Bundle, config: DeployConfig, target: Target, plan: DeployPlan
) -> Deployment | None:
    """Carry out a deployment plan.

    :param bundle: the loaded, checksum-verified bundle.
    :param config: the validated deploy config (``DeployConfig.defaults`` without a file).
    :param target: the target instance chosen with ``--target`` or ``target.name``.
    :param plan: the plan printed to the user, from ``target.plan``.
    :return: the deployment, or ``None`` to let another plugin (finally the target
        itself) handle it.
    """
