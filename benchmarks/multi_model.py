"""Two models in one server on the machine's cores: together vs one after the other.

One full-size random-weight CLIP ViT-B/32 bundle (int8 dynamic, as serve_clip.py builds
it) served twice in one ``mmship serve a=BUNDLE b=BUNDLE`` (two engines, two sets of
sessions and batchers: what two different models cost, the weights aside). Closed-loop
load over HTTP on 127.0.0.1, CONCURRENCY clients per model, each sending one image (the
shipped cat photo) or one caption per ``POST /embed`` with ``"model"`` set:

  * one after the other: model a alone for DURATION seconds, then model b alone; the
    throughput of doing both workloads in turn is the harmonic mean of the two;
  * together: a and b loaded at once for DURATION seconds (items/s of both summed).

The ratio together / one after the other must stay >= 1 (the deliverable: two models on
the cores are not slower together than in turn). Measured for each ``--run-slots``
setting (graph runs at once across the models: 1 = the default with several models,
0 = no gate, every engine's threads on every core at once).

Usage:

    python benchmarks/multi_model.py [--work .bench] [--duration 6] [--concurrency 8] [--slots 1,0]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
from pathlib import Path

import httpx

from mmship.bench.loadgen import default_image
from mmship.core.pipeline import BuildRequest, build
from mmship.core.stages import QuantizeOptions
from mmship.serving.process import served_bundle
from mmship.testing.models import make_random_clip

CAPTION = "a photo of a cat sitting on a wooden table next to a cup of coffee"


def prepare(work: Path) -> Path:
    """The random-weight model built into an int8 dynamic bundle (with fp32), as serve_clip.py builds it."""
    model, bundle = work / "clip-vit-b32-random", work / "bundle-int8-dynamic"
    if not (model / "config.json").exists():
        print(f"making {model}", flush=True)
        make_random_clip(model)
    if not (bundle / "mmship.yaml").exists():
        print(f"building {bundle}", flush=True)
        build(BuildRequest(source=str(model), out=bundle, precisions=["fp32", "int8"], quantize=QuantizeOptions(mode="dynamic")))
    return bundle


async def load(url: str, bodies: dict[str, bytes], concurrency: int, duration: float) -> dict[str, int]:
    """Items answered per model in ``duration`` seconds, ``concurrency`` clients per model."""
    done = {name: 0 for name in bodies}
    stop = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=concurrency * len(bodies) + 4)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker(name: str) -> None:
            while time.perf_counter() < stop:
                response = await client.post("/embed", content=bodies[name], headers={"content-type": "application/json"})
                if response.status_code != 200:
                    raise SystemExit(f"model {name} answered {response.status_code}: {response.text[:300]}")
                done[name] += 1

        await asyncio.gather(*(worker(name) for name in bodies for _ in range(concurrency)))
    return done


def measure(url: str, item: dict, concurrency: int, duration: float) -> dict[str, float]:
    """items/s: a alone, b alone, one after the other (harmonic mean), together."""
    bodies = {name: json.dumps({**item, "model": name}).encode() for name in ("a", "b")}
    asyncio.run(load(url, bodies, concurrency, 2.0))  # warm: both models, every batch size
    alone = {name: asyncio.run(load(url, {name: bodies[name]}, concurrency, duration))[name] / duration for name in bodies}
    together = sum(asyncio.run(load(url, bodies, concurrency, duration)).values()) / duration
    in_turn = 2 / (1 / alone["a"] + 1 / alone["b"])
    return {"a alone": alone["a"], "b alone": alone["b"], "in turn": in_turn, "together": together}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(".bench"))
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--slots", default="1,0", help="--run-slots values to measure (comma-separated)")
    parser.add_argument("--modalities", default="image,text")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    bundle = prepare(args.work)
    items = {"image": {"images": [base64.b64encode(default_image()).decode()]}, "text": {"texts": [CAPTION]}}
    rows = []
    for slots in args.slots.split(","):
        extra = ["--precision", "int8", "--run-slots", slots]
        print(f"mmship serve a={bundle} b={bundle} {' '.join(extra)}", flush=True)
        with served_bundle([f"a={bundle}", f"b={bundle}"], extra) as url:
            for modality in args.modalities.split(","):
                result = measure(url, items[modality], args.concurrency, args.duration)
                rows.append((slots, modality, result))
                print(f"    {modality}: " + ", ".join(f"{k} {v:.1f}/s" for k, v in result.items()), flush=True)
    print(f"\n{args.concurrency} clients per model, {args.duration:g} s per measurement, items/s\n")
    print("| --run-slots | modality | a alone | b alone | one after the other | together | together / in turn |")
    print("|---|---|---|---|---|---|---|")
    for slots, modality, r in rows:
        print(
            f"| {slots} | {modality} | {r['a alone']:.1f} | {r['b alone']:.1f} | {r['in turn']:.1f} | "
            f"{r['together']:.1f} | {r['together'] / r['in turn']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
