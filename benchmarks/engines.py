"""In-process engines on full-size CLIP ViT-B/32: onnxruntime int8 (the baseline) against
OpenVINO fp32, bf16 and int8, image and text, batch 1 and 16, plus whether two OpenVINO
towers in one process fight over the cores.

Uses the bundle ``build_time.py`` wrote (``--bundle``; every variant), loads each variant
through mmship's runtime registry exactly as the server does (all cores, one stream), and
prints medians and the ratio to onnxruntime int8 measured in the same run, with each
variant's accuracy from the build (mean cosine to fp32 per tower, zero-shot agreement).

    .venv/bin/python benchmarks/engines.py --bundle .bench/bundle-all
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

VARIANTS = (("onnxruntime", "int8"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16"),
            ("openvino", "int8"))


def median_ms(call, runs: int) -> float:
    call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=Path(".bench/bundle-all"))
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    from mmship.core.bundle import Bundle
    from mmship.evaluation.feeds import probe_feeds
    from mmship.serving.engine import Engine

    bundle = Bundle.load(args.bundle)
    m, report = bundle.manifest, bundle.report
    built = {(g.runtime, g.precision) for g in m.graphs}
    rows, base = [], {}
    engines = {}
    for runtime, precision in VARIANTS:
        if (runtime, precision) not in built:
            print(f"skipped {runtime} {precision}: not in the bundle")
            continue
        engine = engines[(runtime, precision)] = Engine(bundle, runtime=runtime, precision=precision)
        for tower, runner in engine.graphs.items():
            probe = probe_feeds(runner.inputs, m.preprocess, bundle.path("processor"))
            for batch in (1, 16):
                feeds = {k: np.repeat(v[:1], batch, axis=0) for k, v in probe.items()}
                ms = median_ms(lambda: runner(feeds), args.runs if batch == 1 else max(3, args.runs // 3))
                rows.append((runtime, precision, tower, batch, ms))
                if (runtime, precision) == ("onnxruntime", "int8"):
                    base[(tower, batch)] = ms
    tokens = int(probe_feeds(engines[next(iter(engines))].graphs["text"].inputs, m.preprocess,
                             bundle.path("processor"))["input_ids"].shape[1])
    print(f"\ntext: the probe caption padded to the batch's longest ({tokens} tokens)\n")
    print("| engine | tower | batch | median ms | items/s | vs onnxruntime int8 |")
    print("|---|---|---|---|---|---|")
    for runtime, precision, tower, batch, ms in rows:
        ratio = base.get((tower, batch), float("nan")) / ms
        print(f"| {runtime} {precision} | {tower} | {batch} | {ms:.1f} | {batch * 1000 / ms:.0f} | {ratio:.2f}x |")
    print("\n| variant | mean cosine image | mean cosine text | zero-shot top-1 agreement |")
    print("|---|---|---|---|")
    for runtime, precision in engines:
        key = precision if runtime == "onnxruntime" else f"{runtime}-{precision}"
        outputs = report.get("accuracy", {}).get(key, {}).get("outputs", {})
        agree = report.get("accuracy", {}).get(key, {}).get("zero_shot_top1_agreement", float("nan"))
        print(f"| {runtime} {precision} | {outputs.get('image_embeds', {}).get('mean_cosine', float('nan')):.5f} | "
              f"{outputs.get('text_embeds', {}).get('mean_cosine', float('nan')):.5f} | {agree:.3f} |")
    if ("openvino", "int8") in engines:  # two towers in one process: alternate image and text calls
        engine = engines[("openvino", "int8")]
        image, text = engine.graphs["image"], engine.graphs["text"]
        image_feeds = probe_feeds(image.inputs, m.preprocess, bundle.path("processor"))
        text_feeds = probe_feeds(text.inputs, m.preprocess, bundle.path("processor"))
        one = {k: v[:1] for k, v in image_feeds.items()}
        alone = median_ms(lambda: image(one), args.runs)

        def alternating() -> None:
            text({k: v[:1] for k, v in text_feeds.items()})
            image(one)

        start_text = median_ms(lambda: text({k: v[:1] for k, v in text_feeds.items()}), args.runs)
        both = median_ms(alternating, args.runs) - start_text
        print(f"\nOpenVINO int8 image b1 alone {alone:.1f} ms; right after a text call on the other tower "
              f"{both:.1f} ms ({both / alone:.2f}x)")


if __name__ == "__main__":
    main()
