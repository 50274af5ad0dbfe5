"""Quantize stage: fp16 and int8 graphs from the fp32 export, with onnxruntime's tools.

* fp16: ``onnxruntime.transformers.float16`` with fp32 inputs and outputs kept
  (``onnxconverter-common`` breaks the CLIP vision graph's Conv).
* int8 dynamic (default): weights int8, activations quantized at run time;
  ``per_channel`` optional.
* int8 static: QDQ MatMuls with activation ranges calibrated on real inputs: the probe
  set of photos and captions run through the build's aligned preprocessing, or
  ``calibration_dir/<graph>.npz`` (arrays named like the graph's inputs, batch on axis 0).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mmship import hookimpl
from mmship.core.errors import BuildError
from mmship.core.specs import ExportedGraph
from mmship.core.stages import BuildContext, QuantizeOptions
from mmship.ort import make_session

#: Static int8 quantizes the matrix products only. Measured on full-size CLIP ViT-B/32
#: (image tower, 2 cores, AVX-512 VNNI): every op static -> cosine 0.906 to fp32;
#: MatMul only -> cosine 0.9997 at 62 images/s, against 57 for dynamic int8.
STATIC_OP_TYPES = ("MatMul",)


def to_fp16(graph: ExportedGraph, out: Path) -> ExportedGraph:
    """fp16 weights and compute, fp32 inputs/outputs."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(graph.path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
    onnx.save(converted, str(out))
    return graph.model_copy(update={"path": out, "precision": "fp16", "report": {}, "notes": ["fp16 weights, fp32 I/O"]})


#: The build calls ``mmship_quantize`` for the towers of a variant in threads; this plugin
#: changes the working directory and the logging switch, which are the process's, so it
#: quantizes one graph at a time.
_ONE_AT_A_TIME = threading.Lock()


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    """Run with ``folder`` as the working directory: onnxruntime's symbolic shape
    inference writes ``sym_shape_infer_temp.onnx`` and ``<uuid>.data`` into the current
    directory and leaves them there."""
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantizer logs a warning per tensor on the root logger; the build
    reports what matters (accuracy per precision) itself."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _preprocessed(graph: ExportedGraph, workdir: Path) -> Path:
    """Run onnxruntime's recommended pre-quantization pass (shape inference, folding)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = workdir / f"{graph.name}.preq.onnx"
    try:
        quant_pre_process(str(graph.path), str(out), skip_symbolic_shape=False)
    except Exception:  # symbolic shape inference fails on some graphs: fall back
        try:
            quant_pre_process(str(graph.path), str(out), skip_symbolic_shape=True)
        except Exception:
            return graph.path
    return out


class _NpzReader:
    """A CalibrationDataReader over one npz file, one sample at a time."""

    def __init__(self, path: Path, input_names: list[str]) -> None:
        data = np.load(path)
        missing = [n for n in input_names if n not in data]
        if missing:
            raise BuildError(
                f"calibration file {path} lacks inputs {missing} (it has {sorted(data.files)})",
                hint="save one array per graph input, named like the input, batch on axis 0",
            )
        self._arrays = {n: data[n] for n in input_names}
        self._iter: Iterator[dict[str, np.ndarray]] | None = None

    def _samples(self) -> Iterator[dict[str, np.ndarray]]:
        count = len(next(iter(self._arrays.values())))
        for i in range(count):
            yield {n: a[i : i + 1] for n, a in self._arrays.items()}

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._iter is None:
            self._iter = self._samples()
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = None


def calibration_file(graph: ExportedGraph, options: QuantizeOptions, context: BuildContext | None) -> Path:
    """The ``.npz`` of calibration feeds for ``graph``: from ``options.calibration_dir``,
    else written from the probe set through the build's preprocessing."""
    if options.calibration_dir is not None:
        return Path(options.calibration_dir) / f"{graph.name}.npz"
    if context is None:
        raise BuildError("static int8 needs calibration samples", hint="pass a calibration folder or use dynamic int8")
    from mmship.evaluation.feeds import probe_feeds

    path = context.workdir / "calibration" / f"{graph.name}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **probe_feeds(graph.inputs, context.preprocess, context.processor_dir))
    return path


def to_int8(
    graph: ExportedGraph, out: Path, workdir: Path, options: QuantizeOptions, context: BuildContext | None = None
) -> ExportedGraph:
    """int8 with onnxruntime.quantization, dynamic or static."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    scratch = workdir / f"{graph.name}.int8-scratch"
    scratch.mkdir(exist_ok=True)
    with _inside(scratch), _quiet_root_logger():
        source = _preprocessed(graph, workdir)
    notes = [f"int8 {options.mode}" + (" per-channel" if options.per_channel else "")]
    with warnings.catch_warnings(), _quiet_root_logger():
        warnings.simplefilter("ignore")
        if options.mode == "dynamic":
            quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, per_channel=options.per_channel)
        else:
            path = calibration_file(graph, options, context)
            reader = _NpzReader(path, [s.name for s in graph.inputs])
            CalibrationDataReader.register(_NpzReader)
            quantize_static(
                str(source),
                str(out),
                reader,
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(STATIC_OP_TYPES),
                per_channel=options.per_channel,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
            )
    try:
        make_session(out, threads=1)
    except Exception as exc:
        raise BuildError(
            f"the int8 graph for {graph.name!r} does not load in onnxruntime: {exc}",
            hint="build without int8, or try --int8-mode dynamic",
        ) from exc
    return graph.model_copy(update={"path": out, "precision": "int8", "report": {}, "notes": notes})


@hookimpl(trylast=True)
def mmship_quantize(
    graph: ExportedGraph, precision: str, workdir: Path, options: QuantizeOptions, context: BuildContext
) -> ExportedGraph | None:
    """fp16 or int8 for onnxruntime from an fp32 ONNX graph; other precisions and
    runtimes are declined."""
    if graph.runtime != "onnxruntime" or precision not in ("fp16", "int8"):
        return None
    out = Path(workdir) / f"{graph.name}.{precision}.onnx"
    with _ONE_AT_A_TIME:  # the towers of a variant arrive in threads; see _inside
        if precision == "fp16":
            return to_fp16(graph, out)
        return to_int8(graph, out, Path(workdir), options, context)
