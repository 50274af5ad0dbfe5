"""Two models in one server on the machine's cores: together vs one after the other.

One full-size random-weight CLIP ViT-B/32 bundle (int8 dynamic, as serve_clip.py builds
it) served twice in one ``mmship serve a=BUNDLE b=BUNDLE`` (two engines, two sets of
sessions and batchers: what two different models cost, the weights aside). Closed-loop
load over HTTP on 127.0.0.1, CONCURRENCY clients per model, each sending one image (the
shipped cat photo) or one caption per ``POST /embed`` with ``"model"`` set:

  * one after the other: model a alone for DURATION seconds, then model b alone; the
    throughput of doing both workloads in turn is the harmonic mean of the two;
  * together: a and b loaded at once for DURATION seconds (items/s of both summed).

Besides items/s, the server process's CPU time per item (user + system, ms) is measured:
on a machine shared with other work, items/s depend on the share of the cores the server
gets (more busy threads get a larger share), while CPU time per item shows what running
together costs in work: oversubscribed threads, context switches and cache misses show up
there, the load of other processes does not.

The ratio together / one after the other must stay >= 1 (the deliverable: two models on
the cores are not slower together than in turn). Measured for each ``--run-slots``
setting (graph runs at once across the models: 0 = no gate, the default, every engine's
threads on every core at once; 1 = one graph run at a time), one server per setting, all
up at once and measured in interleaved rounds (medians over ``--rounds``), so load that
other processes put on the machine falls on every setting alike.

Usage:

    python benchmarks/multi_model.py [--work .bench] [--duration 5] [--concurrency 8] [--slots 0,1] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import httpx
import psutil

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


def server_process(url: str) -> psutil.Process:
    """The child process serving ``url`` (by its --port)."""
    port = url.rsplit(":", 1)[1]
    for child in psutil.Process().children(recursive=True):
        cmdline = child.cmdline()
        if "--port" in cmdline and cmdline[cmdline.index("--port") + 1] == port:
            return child
    raise SystemExit(f"no server process for {url}")


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def measure(url: str, item: dict, concurrency: int, duration: float) -> dict[str, float]:
    """items/s (a alone, b alone, together) and the server's CPU ms per item."""
    process = server_process(url)
    bodies = {name: json.dumps({**item, "model": name}).encode() for name in ("a", "b")}
    result: dict[str, float] = {}
    for key, chosen in (("a alone", ["a"]), ("b alone", ["b"]), ("together", ["a", "b"])):
        cpu = cpu_seconds(process)
        items = sum(asyncio.run(load(url, {n: bodies[n] for n in chosen}, concurrency, duration)).values())
        result[key] = items / duration
        result[f"cpu ms/item {key}"] = 1000 * (cpu_seconds(process) - cpu) / max(items, 1)
    return result


def summary(rounds: list[dict[str, float]]) -> dict[str, float]:
    """Medians over the rounds; one after the other = the harmonic mean of the two alone."""
    result = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    result["in turn"] = 2 / (1 / result["a alone"] + 1 / result["b alone"])
    result["cpu ms/item in turn"] = (result["cpu ms/item a alone"] + result["cpu ms/item b alone"]) / 2
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(".bench"))
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--slots", default="0,1", help="--run-slots values to measure (comma-separated)")
    parser.add_argument("--modalities", default="image,text")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    bundle = prepare(args.work)
    items = {"image": {"images": [base64.b64encode(default_image()).decode()]}, "text": {"texts": [CAPTION]}}
    slots_list = args.slots.split(",")
    modalities = args.modalities.split(",")
    seen: dict[tuple[str, str], list[dict[str, float]]] = {(s, m): [] for s in slots_list for m in modalities}
    with contextlib.ExitStack() as stack:
        urls = {}
        for slots in slots_list:
            extra = ["--precision", "int8", "--run-slots", slots]
            print(f"mmship serve a={bundle} b={bundle} {' '.join(extra)}", flush=True)
            urls[slots] = stack.enter_context(served_bundle([f"a={bundle}", f"b={bundle}"], extra))
        for slots, url in urls.items():  # warm: both models, every batch size
            for modality in modalities:
                item = items[modality]
                asyncio.run(load(url, {n: json.dumps({**item, "model": n}).encode() for n in ("a", "b")}, args.concurrency, 2.0))
        for round_ in range(args.rounds):
            for modality in modalities:
                for slots in slots_list:
                    result = measure(urls[slots], items[modality], args.concurrency, args.duration)
                    seen[(slots, modality)].append(result)
                    print(f"    round {round_ + 1} --run-slots {slots} {modality}: "
                          + ", ".join(f"{k} {v:.1f}" for k, v in result.items()), flush=True)
    rows = [(slots, modality, summary(seen[(slots, modality)])) for slots in slots_list for modality in modalities]
    print(f"\n{args.concurrency} clients per model, {args.duration:g} s per measurement, medians of {args.rounds} rounds, items/s\n")
    print("| --run-slots | modality | a alone | b alone | one after the other | together | together / in turn "
          "| CPU ms/item in turn | CPU ms/item together | in turn / together (CPU) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for slots, modality, r in rows:
        print(
            f"| {slots} | {modality} | {r['a alone']:.1f} | {r['b alone']:.1f} | {r['in turn']:.1f} | "
            f"{r['together']:.1f} | {r['together'] / r['in turn']:.2f} | {r['cpu ms/item in turn']:.1f} | "
            f"{r['cpu ms/item together']:.1f} | {r['cpu ms/item in turn'] / r['cpu ms/item together']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
