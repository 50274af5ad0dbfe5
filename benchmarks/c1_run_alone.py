"""One-image requests at concurrency 1, with and without the one-trip path, in one server.

``mmship serve BUNDLE`` runs in a child process whose model service takes the one-trip
path (:meth:`~mmship.serving.batcher.DynamicBatcher.run_alone`: decode, resize and graph
run in the batcher's thread) for every other request and the usual path (preprocessing
pool, then the batcher) for the rest, so both see the same machine at the same moments.
Prints the median and 90th percentile round trip of each, per round.

    .venv/bin/python benchmarks/http_path.py --small --work .bench     # builds .bench/bundle-small-int8
    .venv/bin/python benchmarks/c1_run_alone.py --bundle .bench/bundle-small-int8 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).parent))

from c1_client import one_image_server  # noqa: E402

#: Run in the child: every other request may take the one-trip path, the rest may not.
ALTERNATING_SERVER = r'''
import itertools, sys
from mmship.serving import service
runs_alone = service.ModelService._runs_alone
turn = itertools.count()
def every_other(self, inputs):
    return runs_alone(self, inputs) if next(turn) % 2 == 0 else None
service.ModelService._runs_alone = every_other
sys.argv = ["mmship", "serve", *sys.argv[1:]]
from mmship.core.cli.app import run
run()
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=400, help="per round, both paths together")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with one_image_server(ALTERNATING_SERVER, [str(args.bundle)]) as round_trip:
        for _ in range(20):  # warm-up; an even count keeps the one-trip requests on even turns
            round_trip()
        print("| round | one trip p50 ms | usual path p50 ms | one trip p90 ms | usual path p90 ms |")
        print("|---|---|---|---|---|")
        for number in range(1, args.rounds + 1):
            trips = [round_trip() for _ in range(args.requests)]
            alone, usual = trips[0::2], trips[1::2]
            print(f"| {number} | {statistics.median(alone):.2f} | {statistics.median(usual):.2f} | "
                  f"{statistics.quantiles(alone, n=10)[-1]:.2f} | {statistics.quantiles(usual, n=10)[-1]:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
