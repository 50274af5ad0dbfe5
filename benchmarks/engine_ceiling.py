"""The in-process engine alone: items/s of a bundle's graphs at one batch, inputs prepared once.

The ceiling any server of that bundle could reach on this machine. Run in its own process by
serve_clip.py so its memory is its own: prints one JSON line with images/s, texts/s, latency at
batch 1, the text length in tokens, and the process's RSS before the engine was loaded (imports
done) and after warm-up.

    python benchmarks/engine_ceiling.py BUNDLE --precision int8 [--runtime openvino] [--batch 16]
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path

import numpy as np
import psutil

from mmship.bench.loadgen import default_image
from mmship.core.bundle import Bundle
from mmship.preprocess.pixels import ImagePreprocessor
from mmship.preprocess.tokens import TextTokenizer
from mmship.serving.engine import Engine

CAPTION = "a photo of a cat sitting on a wooden table next to a cup of coffee"


def _rate(call, feed: dict, batch: int, seconds: float) -> tuple[float, float]:  # noqa: ANN001
    """(items per second at ``batch``, median ms per call)."""
    call(feed)
    times: list[float] = []
    began = time.perf_counter()
    while time.perf_counter() - began < seconds or len(times) < 3:
        start = time.perf_counter()
        call(feed)
        times.append(time.perf_counter() - start)
    return len(times) * batch / (time.perf_counter() - began), float(np.median(times)) * 1000.0


def load_engine(bundle: Bundle, precision: str, runtime: str) -> Engine:
    """The engine at ``precision`` on ``runtime`` (``auto``: the bundle's default); raises
    SystemExit(3) when this mmship's engine cannot choose a runtime and ``runtime`` is not
    onnxruntime."""
    if runtime == "auto":
        return Engine(bundle)  # the bundle's default: the chosen variant per tower
    if "runtime" in inspect.signature(Engine).parameters:
        return Engine(bundle, precision=precision, runtime=runtime)  # type: ignore[call-arg]
    if runtime != "onnxruntime":
        print(json.dumps({"skipped": f"this mmship's Engine takes no runtime; {runtime} not measured"}))
        raise SystemExit(3)
    return Engine(bundle, precision=precision)


def measure(bundle_dir: Path, precision: str, runtime: str, batch: int, seconds: float) -> dict[str, float]:
    process = psutil.Process()
    rss_before = process.memory_info().rss
    bundle = Bundle.load(bundle_dir)
    engine = load_engine(bundle, precision, runtime)
    spec = bundle.manifest.preprocess
    pixels = ImagePreprocessor(spec.image).preprocess_images([default_image()] * batch)
    tokens = TextTokenizer(bundle.path("processor"), spec.text).tokenize([CAPTION] * batch)
    text = {k: tokens[k] for k in ("input_ids", "attention_mask")}
    feeds = {"image": {"pixel_values": pixels}, "text": text}
    result: dict[str, float] = {"text_tokens": int(text["input_ids"].shape[1]), "batch": batch}
    for name, feed in feeds.items():
        graph = engine.graphs[name]
        result[name], result[f"{name}_batch_ms"] = _rate(graph, feed, batch, seconds)
        one = {k: v[:1] for k, v in feed.items()}
        _, result[f"{name}_b1_ms"] = _rate(graph, one, 1, min(seconds, 2.0))
    result["rss_before_mb"] = rss_before / 2**20
    result["rss_mb"] = process.memory_info().rss / 2**20
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--precision", default="int8", help="auto with --runtime auto: the bundle's default")
    parser.add_argument("--runtime", default="onnxruntime", help="onnxruntime, openvino, ... or auto")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(json.dumps(measure(args.bundle, args.precision, args.runtime, args.batch, args.seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
