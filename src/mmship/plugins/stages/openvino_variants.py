"""OpenVINO variants of the exported graphs (plugin ``quantize-openvino``): the
``mmship_quantize`` hook for graphs marked ``runtime="openvino"``.

* ``fp32``: the exported ONNX read by OpenVINO and saved as IR (``.xml`` + ``.bin``, weights
  kept fp32); loaded with ``INFERENCE_PRECISION_HINT=f32`` (OpenVINO would otherwise run
  in bf16 on CPUs that have it).
* ``bf16``: the same IR file, loaded with ``INFERENCE_PRECISION_HINT=bf16``; only where the
  build machine's CPU has bf16.
* ``int8``: NNCF static post-training quantization (``ModelType.TRANSFORMER``) calibrated on
  the probe set of real photos and captions run through the build's preprocessing (a
  random calibration set collapsed the text tower to cosine 0.64, FACTS).

No telemetry: ``import openvino`` and NNCF send usage events through
``openvino_telemetry`` when they can import it (and write a client id into the home
folder). OpenVINO is imported through the runtime plugin's guard and :func:`import_nncf`
imports NNCF with ``openvino_telemetry`` made unimportable, so both take their
no-telemetry stubs (NNCF's stub is put in place if NNCF was imported before). Building needs ``mmship[openvino-build]``;
serving needs only ``mmship[openvino]``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from mmship import hookimpl
from mmship.core.errors import BuildError
from mmship.core.specs import ExportedGraph
from mmship.core.stages import BuildContext, QuantizeOptions
from mmship.plugins.runtimes.openvino import IMPORT_GUARD_LOCK, import_openvino, without_module

BUILD_HINT = "pip install 'mmship[openvino-build]', or build without it: --runtime onnxruntime"
#: Load options per precision (the IR of ``fp32`` and ``bf16`` is the same file).
LOAD_OPTIONS = {"fp32": {"INFERENCE_PRECISION_HINT": "f32"}, "bf16": {"INFERENCE_PRECISION_HINT": "bf16"}, "int8": {}}


def _openvino() -> Any:
    try:
        return import_openvino()
    except ImportError as exc:
        raise BuildError(f"OpenVINO variants need the openvino package ({exc})", hint=BUILD_HINT) from None


def import_nncf() -> Any:
    """NNCF with its telemetry off: imported (after OpenVINO, telemetry off too) while
    ``openvino_telemetry`` cannot be, and its telemetry object replaced by NNCF's own stub
    should NNCF have been imported before."""
    _openvino()
    with IMPORT_GUARD_LOCK:  # the towers are quantized in threads
        try:
            if "nncf" in sys.modules:
                import nncf
            else:
                with without_module("openvino_telemetry"):
                    import nncf
            from nncf.telemetry import decorator, wrapper
        except ImportError as exc:
            raise BuildError(f"OpenVINO int8 needs NNCF ({exc})", hint=BUILD_HINT) from None
        if not isinstance(wrapper.telemetry, wrapper.NNCFTelemetryStub):
            stub = wrapper.NNCFTelemetryStub()
            wrapper.telemetry = decorator.telemetry = stub
            sys.modules["nncf.telemetry"].telemetry = stub  # type: ignore[attr-defined]
    return nncf


def has_bf16() -> bool:
    """True when OpenVINO's CPU plugin reports bf16 on this machine."""
    from mmship.plugins.runtimes.openvino import core

    return "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def to_ir(graph: ExportedGraph, out: Path) -> Path:
    """The fp32 ONNX graph as OpenVINO IR at ``out`` (``.xml``; weights in ``.bin``); an IR
    already written there for this graph (the bf16 variant shares it) is reused."""
    if out.is_file() and out.with_suffix(".bin").is_file():
        return out
    ov = _openvino()
    from mmship.plugins.runtimes.openvino import core

    ov.save_model(core().read_model(str(graph.path)), str(out), compress_to_fp16=False)
    return out


def calibration_samples(graph: ExportedGraph, options: QuantizeOptions, context: BuildContext | None) -> list[dict]:
    """One feed dict per calibration item (batch 1): the probe set through the build's
    preprocessing, or ``options.calibration_dir/<graph>.npz``."""
    import numpy as np

    from mmship.plugins.stages.quantize import calibration_file

    data = np.load(calibration_file(graph, options, context))
    names = [s.name for s in graph.inputs]
    missing = [n for n in names if n not in data]
    if missing:
        raise BuildError(f"calibration feeds for {graph.name!r} lack inputs {missing}", hint="name arrays like the graph's inputs")
    count = len(data[names[0]])
    return [{n: data[n][i : i + 1] for n in names} for i in range(count)]


#: NNCF reduces the calibration activations in Python (numpy) rather than in the graph.
#: The same int8 graph either way (``tests/plugins/runtimes/test_openvino.py``), but the
#: in-graph form adds ~500 reduction outputs whose compilation took 9-18 s per full-size
#: CLIP tower, against 1.4-4 s for the graph that only exposes the activations
#: (``benchmarks/nncf_statistics.py``).
INPLACE_STATISTICS = False


def to_int8(graph: ExportedGraph, out: Path, options: QuantizeOptions, context: BuildContext | None) -> Path:
    """NNCF static int8 of the fp32 graph, calibrated on real inputs, saved as IR."""
    ov = _openvino()
    nncf = import_nncf()
    from mmship.plugins.runtimes.openvino import core

    samples = calibration_samples(graph, options, context)
    model = core().read_model(str(graph.path))
    logging.getLogger("nncf").setLevel(logging.ERROR)
    try:
        quantized = nncf.quantize(
            model, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(samples),
            advanced_parameters=nncf.AdvancedQuantizationParameters(inplace_statistics=INPLACE_STATISTICS),
        )
    except Exception as exc:
        raise BuildError(f"NNCF could not quantize {graph.name!r}: {exc}", hint="build without OpenVINO int8") from exc
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    return out


@hookimpl
def mmship_quantize(
    graph: ExportedGraph, precision: str, workdir: Path, options: QuantizeOptions, context: BuildContext
) -> ExportedGraph | None:
    """An OpenVINO variant (fp32, bf16 or int8) of the fp32 ONNX graph, for graphs marked
    ``runtime="openvino"``; declines every other graph and precision."""
    if graph.runtime != "openvino" or precision not in LOAD_OPTIONS:
        return None
    workdir = Path(workdir)
    if precision == "int8":
        path = to_int8(graph, workdir / f"{graph.name}.openvino-int8.xml", options, context)
        notes = ["OpenVINO IR, NNCF static int8 calibrated on the probe set"]
    else:
        if precision == "bf16" and not has_bf16():
            raise BuildError(
                "this CPU has no bf16 (OpenVINO's CPU plugin does not report BF16)",
                hint="build the bf16 variant on a machine with AVX512-BF16 or AMX, or leave it out",
            )
        path = to_ir(graph, workdir / f"{graph.name}.openvino-fp32.xml")
        notes = [f"OpenVINO IR (fp32 weights), inference precision {LOAD_OPTIONS[precision]['INFERENCE_PRECISION_HINT']}"]
    return graph.model_copy(update={
        "path": path, "precision": precision, "runtime": "openvino",
        "runtime_options": dict(LOAD_OPTIONS[precision]), "report": {}, "notes": notes,
    })
