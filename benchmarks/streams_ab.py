"""``mmship serve --streams``: one batch per graph on every thread against N batches at once.

One run, one machine, one bundle (OpenVINO variants), servers alternating (1, N, N, 1, ...)
so both settings see the same moments of the VM. Each server is measured as in
``http_path.py``: image p50 at concurrency 1, images/s and texts/s at concurrency 16
(``POST /embed``, one item a request), server CPU per item. Usage:

    python benchmarks/streams_ab.py --bundle .bench/bundle-named [--streams 2] [--rounds 2] [--duration 6]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from aio_load import machine_note  # noqa: E402
from http_path import server_figures  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--streams", type=int, default=2, help="the N compared with 1")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of servers, order alternating")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per load level")
    parser.add_argument("--variant", default="auto", help="auto or runtime:precision (http_path.py's --variant)")
    args = parser.parse_args()
    print(f"machine: {machine_note()}", flush=True)
    runs: dict[int, list[dict[str, float]]] = {1: [], args.streams: []}
    for round_ in range(args.rounds):
        for streams in ((1, args.streams) if round_ % 2 == 0 else (args.streams, 1)):
            figures = server_figures(args.bundle, args.variant, args.duration, ["--streams", str(streams)])
            runs[streams].append(figures)
            print(f"  streams {streams}: images/s c=16 {figures['image_c16']:.1f}, texts/s c=16 {figures['text_c16']:.1f}, "
                  f"image p50 c=1 {figures['image_p50_c1_ms']:.1f} ms, errors {figures['image_errors']}/{figures['text_errors']}",
                  flush=True)
    print("\n| streams | images/s c=16 | texts/s c=16 | image p50 c=1 ms | server CPU ms per image | per text |")
    print("|---|---|---|---|---|---|")
    for streams, rows in runs.items():
        print(f"| {streams} | " + " / ".join(f"{r['image_c16']:.1f}" for r in rows) + " | "
              + " / ".join(f"{r['text_c16']:.1f}" for r in rows) + " | "
              + " / ".join(f"{r['image_p50_c1_ms']:.1f}" for r in rows) + " | "
              + " / ".join(f"{r['image_cpu_ms_per_item']:.1f}" for r in rows) + " | "
              + " / ".join(f"{r['text_cpu_ms_per_item']:.2f}" for r in rows) + " |")

    def median(streams: int, key: str) -> float:
        return statistics.median(r[key] for r in runs[streams])

    print(f"\nstreams {args.streams} / 1 (medians): images/s {median(args.streams, 'image_c16') / median(1, 'image_c16'):.2f}x, "
          f"texts/s {median(args.streams, 'text_c16') / median(1, 'text_c16'):.2f}x, image p50 c=1 "
          f"{median(args.streams, 'image_p50_c1_ms') / median(1, 'image_p50_c1_ms'):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
