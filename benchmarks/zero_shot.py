"""Zero-shot benchmark: what the label-embedding cache and several images per request buy.

Full-size random-weight CLIP ViT-B/32 (int8 dynamic), served twice in one run: with the
label cache (the default) and with ``--label-cache-size 0`` (the baseline: every label's
prompts tokenized and run every time). Measured over HTTP on 127.0.0.1, one request at a
time, median of the repeats:

  * /classify of one image against LABELS labels, one template and an ensemble of
    TEMPLATES templates: cached / uncached latency;
  * the same cached request against /embed of the image alone (the floor: a hit leaves
    only the image to run);
  * IMAGES images in one /classify request against IMAGES one-image requests (cached).

Usage:

    python benchmarks/zero_shot.py [--work .bench] [--labels 100] [--templates 8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import time
from pathlib import Path

import httpx

from mmship.bench.loadgen import default_image
from mmship.core.pipeline import BuildRequest, build
from mmship.core.stages import QuantizeOptions
from mmship.serving.process import served_bundle
from mmship.testing.models import make_random_clip

#: The first of CLIP's 80 ImageNet templates (the paper's prompt-engineering notebook).
CLIP_TEMPLATES = [
    "a bad photo of a {}.", "a photo of many {}.", "a sculpture of a {}.", "a photo of the hard to see {}.",
    "a low resolution photo of the {}.", "a rendering of a {}.", "graffiti of a {}.", "a bad photo of the {}.",
    "a cropped photo of the {}.", "a tattoo of a {}.", "the embroidered {}.", "a photo of a hard to see {}.",
    "a bright photo of a {}.", "a photo of a clean {}.", "a photo of a dirty {}.", "a dark photo of the {}.",
]
WORDS = (
    "tench goldfish shark cock hen ostrich finch junco bunting robin bulbul jay magpie chickadee ouzel kite eagle "
    "vulture owl newt salamander frog turtle gecko iguana chameleon anole lizard alligator triceratops snake boa "
    "python cobra mamba viper rattlesnake trilobite harvestman scorpion spider tick centipede grouse ptarmigan "
    "peacock quail partridge parrot macaw cockatoo lorikeet coucal bee hornbill hummingbird jacamar toucan drake "
    "merganser goose swan tusker echidna platypus wallaby koala wombat jellyfish anemone coral flatworm nematode "
    "conch snail slug chiton nautilus crab lobster crayfish isopod stork spoonbill flamingo heron egret bittern "
    "crane limpkin gallinule coot bustard turnstone dunlin redshank dowitcher oystercatcher pelican penguin "
    "albatross whale dugong"
).split()


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


def timed(url: str, path: str, body: dict, repeats: int) -> float:
    """Median milliseconds of ``repeats`` sequential calls (after one not counted)."""
    times = []
    with httpx.Client(base_url=url, timeout=600) as client:
        for attempt in range(repeats + 1):
            start = time.perf_counter()
            response = client.post(path, json=body)
            elapsed = (time.perf_counter() - start) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{path} answered {response.status_code}: {response.text[:300]}")
            if attempt:
                times.append(elapsed)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(".bench"))
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--templates", type=int, default=8)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    bundle = prepare(args.work)
    image = base64.b64encode(default_image()).decode()
    labels = (WORDS * (args.labels // len(WORDS) + 1))[: args.labels]
    labels = [f"{w} {i // len(WORDS)}" if i >= len(WORDS) else w for i, w in enumerate(labels)]
    templates = CLIP_TEMPLATES[: args.templates]
    room = str(max(1024, 1 + args.labels * args.templates, args.images + args.labels))
    serve_args = ["--precision", "int8", "--max-items", room, "--max-queue", room]
    one = {"image": image, "labels": labels}
    ensemble = {"image": image, "labels": labels, "templates": templates}
    results: dict[str, float] = {}
    for name, extra in (("uncached", ["--label-cache-size", "0"]), ("cached", [])):
        print(f"mmship serve --precision int8 {' '.join(extra)}", flush=True)
        with served_bundle(bundle, serve_args + extra) as url:
            results[f"{name} 1 template"] = timed(url, "/classify", one, args.repeats)
            results[f"{name} {len(templates)} templates"] = timed(url, "/classify", ensemble, args.repeats if name == "cached" else max(1, args.repeats // 2))
            if name == "cached":
                results["embed the image alone"] = timed(url, "/embed", {"images": [image]}, args.repeats)
                results[f"{args.images} images, one request"] = timed(
                    url, "/classify", {"images": [image] * args.images, "labels": labels}, args.repeats
                )
                results[f"{args.images} one-image requests ({args.images} x the median)"] = args.images * results["cached 1 template"]
        for key, value in results.items():
            if key.startswith(name):
                print(f"    {key}: {value:.1f} ms", flush=True)

    print(f"\n{args.labels} labels, {len(templates)} templates, median of {args.repeats} sequential requests\n")
    print("| request | ms |\n|---|---|")
    for key, value in results.items():
        print(f"| {key} | {value:.1f} |")
    t = len(templates)
    print("\nratios")
    print(f"  cache, 1 template: uncached / cached = {results['uncached 1 template'] / results['cached 1 template']:.1f}x")
    print(f"  cache, {t} templates: uncached / cached = {results[f'uncached {t} templates'] / results[f'cached {t} templates']:.1f}x")
    print(f"  cached classify / embed the image alone = {results['cached 1 template'] / results['embed the image alone']:.2f}")
    print(f"  cached {t} templates / cached 1 template = {results[f'cached {t} templates'] / results['cached 1 template']:.2f}")
    many = results[f"{args.images} images, one request"] / results[f"{args.images} one-image requests ({args.images} x the median)"]
    print(f"  {args.images} images in one request / one request each = {many:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
