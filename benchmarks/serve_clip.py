"""Serving benchmark: full-size random-weight CLIP ViT-B/32 over HTTP, one item a request.

Measured in one run, on this machine, with the same load generator (`mmship bench`'s):
  * mmship int8 (static and dynamic) and fp32: images/s and texts/s with p50/p95 at each
    concurrency;
  * the in-process onnxruntime engine at batch 16 (the ceiling any server could reach);
  * a naive server: FastAPI + transformers eager, one request one forward pass.
Prints a table and the ratios. Usage:

    python benchmarks/serve_clip.py [--duration 10] [--concurrency 1,16] [--work .bench]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mmship.core.bundle import Bundle
from mmship.core.pipeline import BuildRequest, build
from mmship.core.stages import QuantizeOptions
from mmship.bench.loadgen import BenchPlan, bench_url, default_image
from mmship.serving.process import free_port, served_bundle, stop_process, wait_ready
from mmship.testing.models import make_random_clip

CAPTION = "a photo of a cat sitting on a wooden table next to a cup of coffee"


def prepare(work: Path) -> tuple[Path, dict[str, Path]]:
    """The random-weight model and two bundles: int8 dynamic and int8 static (each with fp32)."""
    model = work / "clip-vit-b32-random-real-tokenizer"
    if not (model / "config.json").exists():
        print(f"making {model}", flush=True)
        make_random_clip(model, real_tokenizer=True)
    bundles = {}
    for mode in ("dynamic", "static"):
        bundle = work / f"bundle-int8-{mode}"
        if not (bundle / "mmship.yaml").exists():
            print(f"building {bundle} (fp32 + int8 {mode})", flush=True)
            build(BuildRequest(source=str(model), out=bundle, precisions=["fp32", "int8"], quantize=QuantizeOptions(mode=mode)))
        bundles[mode] = bundle
    return model, bundles


def engine_ceiling(bundle_dir: Path, precision: str, batch: int = 16, seconds: float = 5.0) -> dict[str, float]:
    """Items per second of the bare onnxruntime sessions at ``batch``, inputs prepared once."""
    from mmship.serving.engine import Engine
    from mmship.preprocess.pixels import ImagePreprocessor
    from mmship.preprocess.tokens import TextTokenizer

    bundle = Bundle.load(bundle_dir)
    engine = Engine(bundle, precision=precision)
    spec = bundle.manifest.preprocess
    pixels = ImagePreprocessor(spec.image).preprocess_images([default_image()] * batch)
    tokens = TextTokenizer(bundle.path("processor"), spec.text).tokenize([CAPTION] * batch)
    feeds = {"image": {"pixel_values": pixels}, "text": {k: tokens[k] for k in ("input_ids", "attention_mask")}}
    rates = {}
    for name, feed in feeds.items():
        graph = engine.graphs[name]
        graph(feed)
        runs, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            graph(feed)
            runs += 1
        rates[name] = runs * batch / (time.perf_counter() - start)
    rates["text_tokens"] = int(feeds["text"]["input_ids"].shape[1])
    return rates


def bench(url: str, concurrency: list[int], duration: float) -> dict[tuple[str, int], dict]:
    plan = BenchPlan(concurrency=concurrency, duration_s=duration, modalities=["image", "text"], text=CAPTION, protocol="embed")
    result = bench_url(url, plan, on_level=lambda l: print(f"    {l.modality:5} c={l.concurrency:<3} {l.rps:7.1f}/s p50 {l.p50 or 0:7.1f} ms", flush=True))
    return {(l.modality, l.concurrency): l.to_dict() for l in result.levels}


def naive(model: Path, concurrency: list[int], duration: float) -> dict[tuple[str, int], dict]:
    port = free_port()
    child = subprocess.Popen([sys.executable, str(Path(__file__).with_name("naive_server.py")), str(model), "--port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, child, 300)
        return bench(url, concurrency, duration)
    finally:
        stop_process(child.pid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--work", type=Path, default=Path(".bench"))
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    concurrency = [int(c) for c in args.concurrency.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    model, bundles = prepare(args.work)
    servers = {  # name -> (bundle, precision)
        "mmship-int8-static": (bundles["static"], "int8"),
        "mmship-int8-dynamic": (bundles["dynamic"], "int8"),
        "mmship-fp32": (bundles["dynamic"], "fp32"),
    }
    results: dict[str, dict] = {}
    for name, (bundle, precision) in servers.items():
        engine = "engine" + name.removeprefix("mmship")
        print(f"{engine}: in-process, batch 16", flush=True)
        results[engine] = engine_ceiling(bundle, precision)
        print(f"    {results[engine]}", flush=True)
        print(f"{name}: mmship serve --precision {precision}", flush=True)
        with served_bundle(bundle, ["--precision", precision]) as url:
            results[name] = bench(url, concurrency, args.duration)
    if not args.skip_naive:
        print("naive FastAPI + transformers eager", flush=True)
        results["naive"] = naive(model, concurrency, args.duration)

    top = max(concurrency)
    print("\n| server | modality | concurrency | items/s | p50 ms | p95 ms | errors |\n|---|---|---|---|---|---|---|")
    for name in (*servers, "naive"):
        for (modality, c), level in sorted(results.get(name, {}).items()):
            print(f"| {name} | {modality} | {c} | {level['rps']:.1f} | {level['p50_ms'] or 0:.1f} | {level['p95_ms'] or 0:.1f} | {level['errors']} |")
    for name in servers:
        engine = results["engine" + name.removeprefix("mmship")]
        label = "engine" + name.removeprefix("mmship")
        print(f"| {label} (in-process, batch 16) | image | - | {engine['image']:.1f} | | | |")
        print(f"| {label} (in-process, batch 16) | text ({engine['text_tokens']} tokens) | - | {engine['text']:.1f} | | | |")

    def rps(name: str, modality: str, c: int) -> float:
        return results[name][(modality, c)]["rps"]

    print(f"\nratios at concurrency {top}")
    for name in servers:
        engine = results["engine" + name.removeprefix("mmship")]
        for modality in ("image", "text"):
            line = f"  {name} {modality}: HTTP / in-process engine = {rps(name, modality, top) / engine[modality]:.2f}"
            if "naive" in results:
                line += f"; / naive = {rps(name, modality, top) / rps('naive', modality, top):.2f}"
            print(line)
    if 1 in concurrency:
        for name in (*servers, "naive"):
            if name in results:
                print(f"  {name}: image p50 at concurrency 1 = {results[name][('image', 1)]['p50_ms']:.1f} ms, "
                      f"text p50 = {results[name][('text', 1)]['p50_ms']:.1f} ms")
    if args.json:
        args.json.write_text(json.dumps({k: ({f"{m}@{c}": v for (m, c), v in r.items()} if k.startswith(("mmship", "naive")) else r) for k, r in results.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
