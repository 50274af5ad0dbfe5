"""Triton ``config.pbtxt`` for one graph of a bundle.

The backend (or platform) is the one the graph's inference runtime declares for Triton
(:attr:`~mmship.core.runtime.InferenceRuntime.serving_backends`: onnxruntime ->
``platform: "onnxruntime_onnx"``). Dims come from the adapter's tensor specs with the
batch axis left out (Triton adds it back from ``max_batch_size``). For an ONNX file the
data types come from the graph itself, so an fp16 graph that keeps fp32 inputs is
described as it really is, and names, ranks and static sizes are cross-checked between
the specs and the graph; other formats are described by the specs alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmship.core.errors import DeployError
from mmship.core.runtime import ServingBackend
from mmship.core.specs import TensorSpec
from mmship.ort import external_data_locations
from mmship.payload.datatypes import v2_datatype

#: ONNX TensorProto element types -> Triton data types.
ONNX_TO_TRITON: dict[int, str] = {
    1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 4: "TYPE_UINT16", 5: "TYPE_INT16", 6: "TYPE_INT32",
    7: "TYPE_INT64", 8: "TYPE_STRING", 9: "TYPE_BOOL", 10: "TYPE_FP16", 11: "TYPE_FP64", 12: "TYPE_UINT32",
    13: "TYPE_UINT64", 16: "TYPE_BF16",
}
GPU_ACCELERATORS = ("cuda", "tensorrt")
TRT_PRECISION = {"fp32": "FP32", "fp16": "FP16", "int8": "INT8"}


def spec_to_triton(dtype: str) -> str:
    """The Triton data type of a spec dtype (its v2 datatype, ``BYTES`` called ``STRING``)."""
    name = v2_datatype(dtype)
    return "TYPE_STRING" if name == "BYTES" else f"TYPE_{name}"


@dataclass
class TritonTensor:
    """One ``input`` / ``output`` entry."""

    name: str
    data_type: str
    dims: list[int]


@dataclass
class TritonModel:
    """Everything one ``config.pbtxt`` says, plus the files its version folder gets."""

    name: str
    graph: str
    source: Path
    backend: ServingBackend
    inputs: list[TritonTensor]
    outputs: list[TritonTensor]
    max_batch_size: int
    preferred_batch_sizes: list[int]
    max_queue_delay_us: int
    instance_kind: str = "KIND_CPU"
    instance_count: int = 1
    tensorrt_precision: str | None = None
    #: (file in the bundle, its name in the version folder ``1/``), the graph first.
    files: list[tuple[Path, str]] = field(default_factory=list)
    #: The precision of the bundle graph served.
    precision: str = "fp32"
    #: Backend parameters (``parameters { key ... string_value ... }``), e.g. OpenVINO's.
    parameters: dict[str, str] = field(default_factory=dict)


def _graph_io(path: Path) -> tuple[dict[str, tuple[int, list[int]]], dict[str, tuple[int, list[int]]], list[str]]:
    """name -> (elem_type, dims with -1 for symbolic) for inputs and outputs, and the
    external-data files the graph references."""
    import onnx

    data = Path(path).read_bytes()
    model = onnx.load_model_from_string(data)  # external data is never read from a string
    initializers = {init.name for init in model.graph.initializer}

    def read(values: Any) -> dict[str, tuple[int, list[int]]]:
        out = {}
        for value in values:
            if value.name in initializers:
                continue
            tensor = value.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
            out[value.name] = (tensor.elem_type, dims)
        return out

    external = sorted(external_data_locations(data, path.name))  # plain relative paths (checked)
    return read(model.graph.input), read(model.graph.output), external


def _spec_tensors(names: list[str], specs: dict[str, TensorSpec], graph: str, path: Path) -> list[TritonTensor]:
    """Tensors described by the adapter specs alone (graph files that are not ONNX)."""
    result = []
    for name in names:
        spec = specs.get(name)
        if spec is None:
            raise DeployError(
                f"tensor {name!r} of graph {graph!r} ({path.name}) has no adapter spec with a type Triton takes, "
                f"and {path.suffix} files are not read here, so its type is unknown",
                hint="rebuild the bundle with `mmship build` (the manifest lists a spec for every graph tensor)",
            )
        result.append(TritonTensor(name, spec_to_triton(spec.dtype), list(spec.shape[1:])))
    return result


def _tensors(
    names: list[str], graph_io: dict[str, tuple[int, list[int]]], specs: dict[str, TensorSpec], graph: str, path: Path
) -> list[TritonTensor]:
    result = []
    for name in names:
        if name not in graph_io:
            raise DeployError(
                f"graph {graph!r} ({path.name}) has no tensor {name!r}, but the bundle manifest says it does "
                f"(the graph has: {', '.join(graph_io) or 'nothing'})",
                hint="rebuild the bundle with `mmship build`",
            )
        elem_type, graph_dims = graph_io[name]
        spec = specs.get(name)
        dims = list(spec.shape[1:]) if spec is not None else graph_dims[1:]
        if spec is not None and graph_dims and len(graph_dims) != len(spec.shape):
            raise DeployError(
                f"tensor {name!r} of graph {graph!r} has rank {len(graph_dims)} in {path.name} but the adapter "
                f"spec says {spec.shape_text()}",
                hint="rebuild the bundle with `mmship build`",
            )
        for axis, (want, have) in enumerate(zip(dims, graph_dims[1:]), start=1):
            if want != -1 and have not in (-1, want):
                raise DeployError(
                    f"tensor {name!r} of graph {graph!r}: axis {axis} is {have} in {path.name} but the adapter "
                    f"spec says {want}",
                    hint="rebuild the bundle with `mmship build`",
                )
        data_type = ONNX_TO_TRITON.get(elem_type) or (spec_to_triton(spec.dtype) if spec is not None else None)
        if data_type is None:
            raise DeployError(f"tensor {name!r} has ONNX type {elem_type}, which Triton cannot take", hint="export as fp32")
        result.append(TritonTensor(name, data_type, dims))
    return result


def describe_graph(
    *,
    model_name: str,
    graph: str,
    path: Path,
    input_names: list[str],
    output_names: list[str],
    specs: dict[str, TensorSpec],
    max_batch_size: int,
    preferred_batch_sizes: list[int],
    max_delay_ms: float,
    accelerator: str,
    precision: str,
    backend: ServingBackend,
    companions: list[Path] | None = None,
    instance_count: int = 1,
    parameters: dict[str, str] | None = None,
) -> TritonModel:
    """A :class:`TritonModel` for one bundle graph, checked against the graph when it is
    an ONNX file.

    The graph file becomes ``model<suffix>`` in the version folder. An ONNX graph's
    external-data files keep their names (the graph refers to them by name); for other
    formats, ``companions`` (the runtime's :meth:`graph_files` after the graph) named
    after the graph follow its rename (``image.fp32.bin`` -> ``model.bin``), the rest keep
    their names.
    """
    if path.suffix == ".onnx":
        graph_inputs, graph_outputs, external = _graph_io(path)
        inputs = _tensors(input_names, graph_inputs, specs, graph, path)
        outputs = _tensors(output_names, graph_outputs, specs, graph, path)
        files = [(path, "model.onnx"), *[(path.parent / name, name) for name in external]]
    else:
        inputs = _spec_tensors(input_names, specs, graph, path)
        outputs = _spec_tensors(output_names, specs, graph, path)
        files = [(path, f"model{path.suffix}")]
        files += [(c, f"model{c.suffix}" if c.stem == path.stem else c.name) for c in companions or []]
    return TritonModel(
        name=model_name,
        graph=graph,
        source=path,
        backend=backend,
        inputs=inputs,
        outputs=outputs,
        max_batch_size=max_batch_size,
        preferred_batch_sizes=sorted({b for b in preferred_batch_sizes if 1 <= b <= max_batch_size}),
        max_queue_delay_us=round(max_delay_ms * 1000),
        instance_kind="KIND_GPU" if accelerator in GPU_ACCELERATORS else "KIND_CPU",
        instance_count=instance_count,
        tensorrt_precision=TRT_PRECISION.get(precision, "FP32") if accelerator == "tensorrt" else None,
        files=files,
        parameters=dict(parameters or {}),
        precision=precision,
    )


def _tensor_block(tensors: list[TritonTensor]) -> str:
    items = [
        "  {\n"
        f"    name: {json.dumps(t.name)}\n"
        f"    data_type: {t.data_type}\n"
        f"    dims: [ {', '.join(str(d) for d in t.dims)} ]\n"
        "  }"
        for t in tensors
    ]
    return "[\n" + ",\n".join(items) + "\n]"


def render_config(model: TritonModel) -> str:
    """The ``config.pbtxt`` text (protobuf text format of Triton's ``ModelConfig``)."""
    lines = [
        f"# written by mmship from bundle graph {model.graph!r}",
        f"name: {json.dumps(model.name)}",
        f"platform: {json.dumps(model.backend.platform)}" if model.backend.platform else f"backend: {json.dumps(model.backend.backend)}",
        f"max_batch_size: {model.max_batch_size}",
        f"input {_tensor_block(model.inputs)}",
        f"output {_tensor_block(model.outputs)}",
        "dynamic_batching {",
    ]
    if model.preferred_batch_sizes:
        lines.append(f"  preferred_batch_size: [ {', '.join(str(b) for b in model.preferred_batch_sizes)} ]")
    lines += [
        f"  max_queue_delay_microseconds: {model.max_queue_delay_us}",
        "}",
        "instance_group [",
        "  {",
        f"    count: {model.instance_count}",
        f"    kind: {model.instance_kind}",
        "  }",
        "]",
    ]
    for key, value in model.parameters.items():
        lines.append(f"parameters {{ key: {json.dumps(key)} value: {{ string_value: {json.dumps(value)} }} }}")
    if model.tensorrt_precision:
        lines += [
            "optimization {",
            "  execution_accelerators {",
            "    gpu_execution_accelerator: [",
            "      {",
            '        name: "tensorrt"',
            f'        parameters {{ key: "precision_mode" value: "{model.tensorrt_precision}" }}',
            "      }",
            "    ]",
            "  }",
            "}",
        ]
    return "\n".join(lines) + "\n"
