"""Phone photos over HTTP: full JPEG decoding against ``--jpeg-scaled-decode``, one run.

A 12-megapixel photo (4032x3024, JPEG quality 90, scikit-image's ``chelsea`` upscaled)
costs ~200 ms to decode and resize on one core of a 2-core VM: a server that must decode
it in full is bound by its preprocessing, whatever its engine. This script measures, on
one machine and in one run:

  * in-process: milliseconds to turn the photo into pixel values, full and scaled;
  * over HTTP (``POST /embed``, one photo a request, the aiohttp load generator of
    ``aio_load.py``), the same bundle served both ways, rounds alternating
    (full, scaled, scaled, full, ...): images/s at concurrency 16, p50 at concurrency 1,
    server CPU per image;
  * what scaled decoding does to the answer: the cosine of the two servers' embeddings
    of the photo.

Usage:

    python benchmarks/phone_photos.py --bundle .bench/bundle-named [--duration 8] [--rounds 2]
        [--size 4032x3024] [--serve-arg=--runtime --serve-arg=onnxruntime]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from aio_load import machine_note, run_level  # noqa: E402

from mmship.serving.process import free_port, spawn_server, stop_process, wait_ready  # noqa: E402


def phone_photo(width: int, height: int) -> bytes:
    """scikit-image's ``chelsea`` upscaled to ``width`` x ``height``, JPEG quality 90."""
    import skimage.data
    from PIL import Image

    image = Image.fromarray(skimage.data.chelsea()).resize((width, height), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def preprocessing_ms(bundle: Path, photo: bytes, scaled: bool, runs: int = 10) -> float:
    """Median milliseconds of the bundle's image preprocessing of ``photo``."""
    from mmship.core.bundle import Bundle
    from mmship.preprocess.pixels import ImagePreprocessor

    spec = Bundle.load(bundle).manifest.preprocess.image
    preprocessor = ImagePreprocessor(spec, jpeg_scaled_decode=scaled)
    preprocessor([photo])
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        preprocessor([photo])
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def serve_and_measure(bundle: Path, body: bytes, scaled: bool, duration: float, extra: list[str]) -> dict[str, object]:
    """One server of ``bundle``; images/s at c=16, p50 at c=1, CPU per image, one answer."""
    import httpx

    port = free_port()
    flags = ["--jpeg-scaled-decode"] if scaled else []
    child = spawn_server([str(bundle), "--port", str(port), *flags, *extra], log=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, child, 300)
        answer = httpx.post(f"{url}/embed", content=body, headers={"content-type": "application/json"}, timeout=60)
        answer.raise_for_status()
        run_level(url, body, 4, 2.0)  # warm-up
        c1 = run_level(url, body, 1, duration, pid=child.pid)
        c16 = run_level(url, body, 16, duration, pid=child.pid)
        return {
            "c16": c16.goodput, "c16_p50_ms": c16.percentile(50), "c1_p50_ms": c1.percentile(50),
            "cpu_ms_per_image": c16.server_cpu_s * 1000 / max(1, len(c16.latencies_ms)),
            "errors": c16.refused + sum(c16.errors.values()) + c1.refused + sum(c1.errors.values()),
            "embedding": answer.json()["image_embeds"][0],
        }
    finally:
        stop_process(child.pid)


def cosine(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(x @ y / np.sqrt((x @ x) * (y @ y)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--size", default="4032x3024", help="the photo's WIDTHxHEIGHT")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per load level")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of servers (full, scaled), order alternating")
    parser.add_argument("--serve-arg", action="append", default=[], help="extra `mmship serve` argument (repeatable)")
    parser.add_argument("--json", type=Path, default=None, help="append the figures as one JSON line")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    photo = phone_photo(width, height)
    body = json.dumps({"images": [base64.b64encode(photo).decode()]}).encode()
    print(f"machine: {machine_note()}", flush=True)
    prep = {scaled: preprocessing_ms(args.bundle, photo, scaled) for scaled in (False, True)}
    print(f"photo {width}x{height}, {len(photo) / 1e6:.2f} MB; preprocessing in-process: full {prep[False]:.1f} ms, "
          f"scaled {prep[True]:.1f} ms ({prep[False] / prep[True]:.1f}x)", flush=True)
    runs: dict[bool, list[dict[str, object]]] = {False: [], True: []}
    for round_ in range(args.rounds):
        for scaled in ((False, True) if round_ % 2 == 0 else (True, False)):
            figures = serve_and_measure(args.bundle, body, scaled, args.duration, args.serve_arg)
            runs[scaled].append(figures)
            print(f"  {'scaled' if scaled else 'full  '}: {figures['c16']:.1f} images/s c=16 (p50 {figures['c16_p50_ms']:.0f} ms), "
                  f"p50 c=1 {figures['c1_p50_ms']:.1f} ms, server CPU {figures['cpu_ms_per_image']:.1f} ms per image, "
                  f"errors {figures['errors']}", flush=True)
    print("\n| decoding | images/s c=16 | p50 c=1 ms | server CPU ms per image |")
    for scaled in (False, True):
        rows = runs[scaled]
        print(f"| {'scaled (--jpeg-scaled-decode)' if scaled else 'full (default)'} | "
              + " / ".join(f"{r['c16']:.1f}" for r in rows) + " | "
              + " / ".join(f"{r['c1_p50_ms']:.1f}" for r in rows) + " | "
              + " / ".join(f"{r['cpu_ms_per_image']:.1f}" for r in rows) + " |")
    ratio = statistics.median(r["c16"] for r in runs[True]) / statistics.median(r["c16"] for r in runs[False])
    agreement = cosine(runs[False][0]["embedding"], runs[True][0]["embedding"])
    print(f"\nscaled / full images/s at c=16: {ratio:.2f}x; cosine of the two answers for the photo: {agreement:.5f}")
    if args.json:
        with args.json.open("a", encoding="utf-8") as fh:
            slim = {str(k): [{n: v for n, v in r.items() if n != "embedding"} for r in rs] for k, rs in runs.items()}
            fh.write(json.dumps({"machine": machine_note(), "size": args.size, "preprocessing_ms": prep,
                                 "servers": slim, "ratio": ratio, "cosine": agreement}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
