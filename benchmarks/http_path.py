"""HTTP path benchmark: how close the server gets to its own in-process engine.

One run, one machine, the full-size random-weight CLIP ViT-B/32 bundle that
``serve_clip.py`` builds (int8 dynamic by default):

  * the in-process engine: images/s and texts/s at batch 16 (inputs prepared once: the
    ceiling any server could reach), and the image graph's median time at batch 1;
  * ``mmship serve`` over HTTP (``POST /embed``, one item a request, the aiohttp load
    generator of ``aio_load.py``): images/s and texts/s at concurrency 16, image p50 at
    concurrency 1.

Prints the ratios the issue sets targets for (server c=16 / engine b16 >= 0.9; image p50
c=1 - engine b1 <= 3 ms) and one table row, ``--label``, for the "one change at a time"
table of the README. Usage:

    python benchmarks/http_path.py --label "baseline" [--small] [--variant auto|onnxruntime:int8] [--duration 8]
        [--work .bench] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from aio_load import CAPTION, embed_body, machine_note, run_level  # noqa: E402

from mmship.bench.loadgen import default_image  # noqa: E402
from mmship.serving.process import free_port, spawn_server, stop_process, wait_ready  # noqa: E402


def prepare_small(work: Path) -> Path:
    """A small CLIP with the full-size preprocessing (224x224 images, the real 49408-token
    tokenizer) and a one-layer 64-wide model, built to int8 (dynamic): the model costs
    almost nothing, so what the server spends per request shows."""
    from mmship.core.pipeline import BuildRequest, build
    from mmship.core.stages import QuantizeOptions
    from mmship.testing.models import make_random_clip

    bundle = work / "bundle-small-int8"
    if not (bundle / "mmship.yaml").exists():
        small = dict(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=128)
        model = make_random_clip(
            work / "clip-small-real-tokenizer", real_tokenizer=True, projection_dim=512,
            text_config=dict(small, max_position_embeddings=77), vision_config=dict(small, image_size=224, patch_size=32),
        )
        build(BuildRequest(source=str(model), out=bundle, precisions=["fp32", "int8"], quantize=QuantizeOptions(mode="dynamic")))
    return bundle


def variant_flags(variant: str) -> tuple[str, str, list[str]]:
    """``auto`` or ``runtime:precision`` (parsed as serve_clip.py's ``--variants``) ->
    (runtime, precision, `mmship serve` flags)."""
    from serve_clip import parse_variants

    parsed = parse_variants(variant)
    if len(parsed) != 1:
        raise SystemExit(f"--variant: one variant, got {variant!r}")
    runtime, precision = parsed[0]
    return runtime, precision, [] if runtime == "auto" else ["--runtime", runtime, "--precision", precision]


def engine_figures(bundle_dir: Path, variant: str, seconds: float = 5.0) -> dict[str, float]:
    """Batch-16 items/s per graph and the image graph's median batch-1 time (engine_ceiling.py,
    its own process)."""
    from serve_clip import engine_ceiling

    runtime, precision, _ = variant_flags(variant)
    rates = engine_ceiling(bundle_dir, runtime, precision, seconds)
    if rates is None:
        raise SystemExit(f"the in-process engine of {variant} could not be measured (reason above)")
    return rates


def server_figures(bundle_dir: Path, variant: str, duration: float, extra: list[str]) -> dict[str, float]:
    """Images/s and texts/s at c=16, image p50 at c=1, over HTTP."""
    port = free_port()
    child = spawn_server([str(bundle_dir), "--port", str(port), *variant_flags(variant)[2], *extra], log=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, child, 300)
        image, text = embed_body("image", default_image()), embed_body("text", text=CAPTION)
        run_level(url, image, 4, 2.0)  # warm-up
        run_level(url, text, 4, 2.0)
        out = {}
        c1 = run_level(url, image, 1, duration, pid=child.pid)
        out["image_p50_c1_ms"] = c1.percentile(50)
        for name, body in (("image", image), ("text", text)):
            level = run_level(url, body, 16, duration, pid=child.pid)
            out[f"{name}_c16"] = level.goodput
            out[f"{name}_c16_p50_ms"] = level.percentile(50)
            out[f"{name}_cpu_ms_per_item"] = level.server_cpu_s * 1000 / max(1, len(level.latencies_ms))
            out[f"{name}_errors"] = level.refused + sum(level.errors.values())
        return out
    finally:
        stop_process(child.pid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="this tree")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--work", type=Path, default=Path(".bench"))
    parser.add_argument("--bundle", type=Path, default=None, help="default: WORK/bundle-int8-dynamic")
    parser.add_argument("--small", action="store_true", help="the small model (WORK/bundle-small-int8, built if missing)")
    parser.add_argument("--variant", default="auto",
                        help="auto (the bundle's chosen variant per tower) or runtime:precision, e.g. onnxruntime:int8")
    parser.add_argument("--serve-arg", action="append", default=[], help="extra `mmship serve` argument (repeatable)")
    parser.add_argument("--json", type=Path, default=None, help="append the figures as one JSON line")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    bundle = prepare_small(args.work) if args.small else args.bundle or args.work / "bundle-int8-dynamic"
    if not (bundle / "mmship.yaml").exists():
        from serve_clip import prepare

        bundle = prepare(args.work)[1]["dynamic"]
    print(f"machine: {machine_note()}", flush=True)
    engine = engine_figures(bundle, args.variant)
    print(f"engine: {engine['image']:.1f} images/s and {engine['text']:.1f} texts/s at batch 16 "
          f"({engine['text_tokens']} tokens); image b1 {engine['image_b1_ms']:.1f} ms", flush=True)
    server = server_figures(bundle, args.variant, args.duration, args.serve_arg)
    image_ratio = server["image_c16"] / engine["image"]
    text_ratio = server["text_c16"] / engine["text"]
    gap = server["image_p50_c1_ms"] - engine["image_b1_ms"]
    print(f"server: {server['image_c16']:.1f} images/s ({image_ratio:.2f} of the engine, target >= 0.9), "
          f"{server['text_c16']:.1f} texts/s ({text_ratio:.2f}), image p50 c=1 {server['image_p50_c1_ms']:.1f} ms "
          f"(engine b1 + {gap:.1f} ms, target <= 3); server CPU per item: image "
          f"{server['image_cpu_ms_per_item']:.2f} ms, text {server['text_cpu_ms_per_item']:.2f} ms; "
          f"errors {server['image_errors']}/{server['text_errors']}", flush=True)
    print("\n| change | images/s c=16 (/ engine) | texts/s c=16 (/ engine) | image p50 c=1 (engine b1) | server CPU ms per image / text |")
    print(f"| {args.label} | {server['image_c16']:.1f} ({image_ratio:.2f}) | {server['text_c16']:.1f} ({text_ratio:.2f}) | "
          f"{server['image_p50_c1_ms']:.1f} ({engine['image_b1_ms']:.1f}) | "
          f"{server['image_cpu_ms_per_item']:.2f} / {server['text_cpu_ms_per_item']:.2f} |")
    if args.json:
        with args.json.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"label": args.label, "machine": machine_note(), "engine": engine, "server": server}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
