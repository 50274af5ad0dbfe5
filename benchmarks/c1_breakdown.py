"""Where one image request's time goes at concurrency 1: the server's steps, timed inside it.

Starts ``mmship serve BUNDLE`` in a child process whose steps are wrapped with timers
(preprocessing, the hop to the preprocessing pool, the batcher, the graph run, the route,
the whole ASGI app), sends N one-image ``POST /embed`` requests one after the other over a
keep-alive connection, and prints the round trip's median beside each step's median. With
the small model of ``http_path.py --small`` the model costs ~1 ms, so what shows is the
request's own path (issue 12: image p50 at c=1 within 3 ms of the engine's batch-1 time).
At concurrency 1 a request now takes the one-trip path (``DynamicBatcher.run_alone``, see
``c1_run_alone.py``): its row replaces those of the preprocessing pool and the batcher.

    .venv/bin/python benchmarks/http_path.py --small --work .bench     # builds .bench/bundle-small-int8
    .venv/bin/python benchmarks/c1_breakdown.py --bundle .bench/bundle-small-int8 --requests 300
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).parent))

from c1_client import one_image_server  # noqa: E402

#: Run in the child: wrap the server's steps with timers, serve, write medians on SIGTERM.
TIMED_SERVER = r'''
import collections, functools, json, signal, statistics, sys, time
out = sys.argv[1]
T = collections.defaultdict(list)
def timed(owner, name, label, is_async):
    f = getattr(owner, name)
    if is_async:
        async def w(*a, **k):
            t = time.perf_counter(); r = await f(*a, **k); T[label].append(time.perf_counter() - t); return r
    else:
        def w(*a, **k):
            t = time.perf_counter(); r = f(*a, **k); T[label].append(time.perf_counter() - t); return r
    setattr(owner, name, functools.wraps(f)(w))
from fastapi import Request
from mmship.preprocess.pixels import ImagePreprocessor
from mmship.serving import batcher, engine, middleware, routes, service
timed(ImagePreprocessor, "__call__", "preprocess (decode, resize, normalise)", False)
timed(service.ModelService, "_features", "preprocessing awaited (incl. the hop to the pool)", True)
timed(engine.GraphRunner, "__call__", "graph run (engine)", False)
timed(batcher.DynamicBatcher, "submit", "batcher (queue, hop to its thread, run)", True)
timed(batcher.DynamicBatcher, "run_alone", "one trip to the batcher's thread (preprocess + graph run)", True)
timed(service.ModelService, "infer", "model service (preprocessing + batcher)", True)
make_endpoint = routes._endpoint
def timed_endpoint(*a, **k):
    inner = make_endpoint(*a, **k)
    async def endpoint(request: Request):
        t = time.perf_counter(); r = await inner(request); T["route (decode body, embed, encode answer)"].append(time.perf_counter() - t); return r
    return endpoint
routes._endpoint = timed_endpoint
guard = middleware.GuardMiddleware.__call__
async def whole_app(self, scope, receive, send):
    t = time.perf_counter(); await guard(self, scope, receive, send)
    if scope["type"] == "http" and scope.get("path") == "/embed": T["ASGI app (FastAPI, middleware, route)"].append(time.perf_counter() - t)
middleware.GuardMiddleware.__call__ = whole_app
def dump(*_):
    with open(out, "w") as fh:
        json.dump({k: statistics.median(v[20:] or v) * 1000 for k, v in T.items()}, fh)
    sys.exit(0)
signal.signal(signal.SIGTERM, dump)
sys.argv = ["mmship", "serve", *sys.argv[2:]]
from mmship.core.cli.app import run
run()
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        steps = Path(scratch) / "steps.json"
        with one_image_server(TIMED_SERVER, [str(steps), str(args.bundle)]) as round_trip:
            for _ in range(20):
                round_trip()
            trips = [round_trip() for _ in range(args.requests)]
        medians = json.loads(steps.read_text())  # written by the server when it was stopped
    print(f"| step (median of {args.requests} one-image requests, c=1) | ms |")
    print("|---|---|")
    print(f"| round trip (client: http.client, keep-alive) | {statistics.median(trips):.2f} |")
    for label, ms in sorted(medians.items(), key=lambda item: -item[1]):
        print(f"| {label} | {ms:.2f} |")


if __name__ == "__main__":
    main()
