"""The machine's CPU flags and its int8 matrix-multiply peak, measured, and the work of a CLIP call.

* ``cpu_info()``: model name, core count, MHz and the SIMD / matrix flags that decide int8
  speed (avx2, avx512_vnni, avx_vnni, avx512_bf16, amx_tile / amx_int8 / amx_bf16), read from
  ``/proc/cpuinfo``.
* ``int8_peak()``: the measured int8 peak in GOPS (1 MAC = 2 ops): onnxruntime's
  ``MatMulInteger`` (uint8 activations x int8 weights, the op dynamic int8 quantization
  emits), torch's ``_int_mm`` and OpenVINO's int8 FullyConnected (each where installed) on a
  few large shapes on ``threads`` threads, the best of them; onnxruntime fp32 ``MatMul`` on
  the same shapes for scale. Also the paper peak the flags allow at the reported clock.
* ``clip_macs()``: multiply-accumulates of one image / one text through a CLIP ViT from its
  ``config.json`` (patch embedding, QKV, attention, projections, MLP; layer norms and
  softmax are left out), so items/s x MACs gives the ops/s a server reached.

Run alone: ``python benchmarks/cpu_peak.py [--threads 2] [--config MODEL/config.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

#: Flags worth stating for int8 / bf16 inference, in the order printed.
FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
         "amx_tile", "amx_int8", "amx_bf16")
#: (M, K, N): ViT-B/32 at batch 16 (800 rows) through its MLP and QKV, and a large square one.
SHAPES = ((800, 768, 3072), (800, 3072, 768), (2048, 2048, 2048))


def cpu_info() -> dict[str, object]:
    """Model, logical cores, MHz and the int8-relevant flags of this machine."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name", "unknown"),
        "cores": os.cpu_count(),
        "mhz": float(fields.get("cpu MHz", "0") or 0),
        "flags": {flag: flag in flags for flag in FLAGS},
    }


def paper_int8_gops(info: dict[str, object], threads: int) -> tuple[float, str]:
    """The int8 peak the flags allow on ``threads`` cores at the reported clock (2 ops/MAC):
    AMX 1024 MAC/cycle/core, AVX-512 VNNI 128 (two 512-bit ports), AVX-VNNI 64, AVX2 32."""
    flags = info["flags"]
    assert isinstance(flags, dict)
    if flags.get("amx_int8"):
        macs, unit = 1024, "AMX-INT8 (1024 MAC/cycle/core)"
    elif flags.get("avx512_vnni"):
        macs, unit = 128, "AVX-512 VNNI (2 x 64 MAC/cycle/core)"
    elif flags.get("avx_vnni"):
        macs, unit = 64, "AVX-VNNI (2 x 32 MAC/cycle/core)"
    else:
        macs, unit = 32, "AVX2 (pmaddubsw, ~32 MAC/cycle/core)"
    mhz = float(info["mhz"] or 0)  # type: ignore[arg-type]
    return 2 * macs * threads * mhz / 1000.0, unit


def _session(op: str, m: int, k: int, n: int, threads: int):  # noqa: ANN202 - onnxruntime types
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if op == "MatMulInteger":
        weight = numpy_helper.from_array(rng.integers(-127, 127, (k, n), dtype=np.int8), "W")
        node = helper.make_node("MatMulInteger", ["A", "W"], ["Y"])
        a_type, y_type = TensorProto.UINT8, TensorProto.INT32
    else:
        weight = numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "W")
        node = helper.make_node("MatMul", ["A", "W"], ["Y"])
        a_type, y_type = TensorProto.FLOAT, TensorProto.FLOAT
    graph = helper.make_graph([node], "mm", [helper.make_tensor_value_info("A", a_type, [m, k])],
                              [helper.make_tensor_value_info("Y", y_type, [m, n])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    if op == "MatMulInteger":
        feed = {"A": rng.integers(0, 255, (m, k), dtype=np.uint8)}
    else:
        feed = {"A": rng.standard_normal((m, k)).astype(np.float32)}
    return session, feed


def _gops(op: str, shape: tuple[int, int, int], threads: int, seconds: float) -> float:
    m, k, n = shape
    session, feed = _session(op, m, k, n, threads)
    for _ in range(2):
        session.run(None, feed)
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 3:
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return 2.0 * m * k * n / float(np.median(times)) / 1e9


def _torch_int8_gops(shape: tuple[int, int, int], threads: int, seconds: float) -> float | None:
    """GOPS of ``torch._int_mm`` (oneDNN; AMX where the CPU has it), or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    m, k, n = shape
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a = torch.randint(-128, 127, (m, k), dtype=torch.int8)
        b = torch.randint(-128, 127, (k, n), dtype=torch.int8)
        torch._int_mm(a, b)
        times = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or len(times) < 3:
            start = time.perf_counter()
            torch._int_mm(a, b)
            times.append(time.perf_counter() - start)
    except RuntimeError:
        return None
    finally:
        torch.set_num_threads(previous)
    return 2.0 * m * k * n / float(np.median(times)) / 1e9


def _openvino_int8_gops(shape: tuple[int, int, int], threads: int, seconds: float) -> float | None:
    """GOPS of an OpenVINO int8 matmul (FakeQuantize on both inputs, which the CPU plugin
    runs as a u8 x i8 FullyConnected: oneDNN, AMX where present), or None without openvino."""
    try:
        import openvino as ov
        import openvino.opset13 as ops
    except ImportError:
        return None
    m, k, n = shape
    rng = np.random.default_rng(0)
    low, high = ops.constant(np.float32(-4.0)), ops.constant(np.float32(4.0))
    a = ops.parameter([m, k], np.float32, name="A")
    w = ops.constant(rng.standard_normal((k, n)).astype(np.float32))
    y = ops.matmul(ops.fake_quantize(a, low, high, low, high, 256), ops.fake_quantize(w, low, high, low, high, 255), False, False)
    config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}
    request = ov.Core().compile_model(ov.Model([y], [a], "int8-matmul"), "CPU", config).create_infer_request()
    x = rng.standard_normal((m, k)).astype(np.float32)
    request.infer({0: x})
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 3:
        start = time.perf_counter()
        request.infer({0: x})
        times.append(time.perf_counter() - start)
    return 2.0 * m * k * n / float(np.median(times)) / 1e9


def int8_peak(threads: int = 2, seconds: float = 1.0) -> dict[str, object]:
    """Measured GOPS per shape: onnxruntime int8 (MatMulInteger) and fp32 (MatMul), and
    torch's int8 matmul (oneDNN) where torch is installed; the best int8 figure is the peak."""
    rows = []
    for shape in SHAPES:
        row: dict[str, object] = {"shape": list(shape), "int8_gops": _gops("MatMulInteger", shape, threads, seconds),
                                  "fp32_gops": _gops("MatMul", shape, threads, seconds)}
        row["torch_int8_gops"] = _torch_int8_gops(shape, threads, seconds)
        row["openvino_int8_gops"] = _openvino_int8_gops(shape, threads, seconds)
        rows.append(row)
    best_ort = max(float(r["int8_gops"]) for r in rows)  # type: ignore[arg-type]
    torch_figures = [float(r["torch_int8_gops"]) for r in rows if r["torch_int8_gops"]]  # type: ignore[arg-type]
    openvino_figures = [float(r["openvino_int8_gops"]) for r in rows if r["openvino_int8_gops"]]  # type: ignore[arg-type]
    return {
        "threads": threads,
        "method": "median time per call of one large int8 matmul per shape, best shape and library: onnxruntime "
                  "MatMulInteger (uint8 x int8 -> int32, what dynamic int8 graphs run), torch._int_mm (oneDNN) "
                  "and OpenVINO FakeQuantize+MatMul (u8 x i8 FullyConnected) where installed",
        "shapes": rows,
        "ort_int8_gops": best_ort,
        "torch_int8_gops": max(torch_figures) if torch_figures else None,
        "openvino_int8_gops": max(openvino_figures) if openvino_figures else None,
        "int8_gops": max([best_ort, *torch_figures, *openvino_figures]),
        "fp32_gops": max(float(r["fp32_gops"]) for r in rows),  # type: ignore[arg-type]
    }


def clip_macs(config_path: Path, text_tokens: int) -> dict[str, float]:
    """MACs of one image and one ``text_tokens``-token text through the CLIP of ``config.json``."""
    config = json.loads(Path(config_path).read_text())
    vision, text = config.get("vision_config", {}), config.get("text_config", {})
    projection = int(config.get("projection_dim", 512))

    def encoder(tokens: int, width: int, mlp: int, layers: int) -> float:
        per_layer = tokens * width * 3 * width + 2 * tokens * tokens * width + tokens * width * width + 2 * tokens * width * mlp
        return float(per_layer * layers)

    patch = int(vision.get("patch_size", 32))
    size = int(vision.get("image_size", 224))
    vwidth = int(vision.get("hidden_size", 768))
    patches = (size // patch) ** 2
    image = patches * 3 * patch * patch * vwidth  # the patch-embedding convolution
    image += encoder(patches + 1, vwidth, int(vision.get("intermediate_size", 3072)), int(vision.get("num_hidden_layers", 12)))
    image += vwidth * projection
    twidth = int(text.get("hidden_size", 512))
    words = encoder(text_tokens, twidth, int(text.get("intermediate_size", 2048)), int(text.get("num_hidden_layers", 12)))
    words += twidth * projection
    return {"image": float(image), "text": float(words), "text_tokens": float(text_tokens)}


def describe(info: dict[str, object], peak: dict[str, object]) -> list[str]:
    """Lines stating the machine and the measured peak."""
    flags = info["flags"]
    assert isinstance(flags, dict)
    paper, unit = paper_int8_gops(info, int(peak["threads"]))  # type: ignore[arg-type]
    lines = [
        f"CPU: {info['model']}, {info['cores']} logical cores, {info['mhz']:.0f} MHz reported",
        "flags: " + " ".join(f"{name}={'yes' if on else 'no'}" for name, on in flags.items()),
        f"int8 peak measured on {peak['threads']} threads: {peak['int8_gops']:.0f} GOPS (onnxruntime "
        f"{peak['ort_int8_gops']:.0f}, torch {peak['torch_int8_gops'] or 0:.0f}, openvino "
        f"{peak.get('openvino_int8_gops') or 0:.0f}; onnxruntime fp32 "
        f"{peak['fp32_gops']:.0f} GFLOP/s); method: {peak['method']}",
        f"int8 paper peak at the reported clock: {paper:.0f} GOPS via {unit}; measured/paper = "
        f"{float(peak['int8_gops']) / paper:.2f}" if paper else "int8 paper peak: clock unknown",  # type: ignore[arg-type]
    ]
    for row in peak["shapes"]:  # type: ignore[union-attr]
        lines.append(f"  M,K,N={row['shape']}: int8 GOPS onnxruntime {row['int8_gops']:.0f}, torch "
                     f"{row['torch_int8_gops'] or 0:.0f}, openvino {row.get('openvino_int8_gops') or 0:.0f}; "
                     f"onnxruntime fp32 {row['fp32_gops']:.0f} GFLOP/s")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per shape and op")
    parser.add_argument("--config", type=Path, default=None, help="a CLIP config.json for MACs per item")
    parser.add_argument("--text-tokens", type=int, default=18)
    args = parser.parse_args()
    info = cpu_info()
    for line in describe(info, int8_peak(args.threads, args.seconds)):
        print(line)
    if args.config:
        macs = clip_macs(args.config, args.text_tokens)
        print(f"MACs: image {macs['image'] / 1e9:.2f} G, text ({args.text_tokens} tokens) {macs['text'] / 1e9:.3f} G")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
