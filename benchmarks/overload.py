"""Overload benchmark: goodput and latency at ~50x overload against the c=16 figure, same run.

The full-size random-weight CLIP ViT-B/32 bundle (int8 dynamic, as ``serve_clip.py``
builds it) served by ``mmship serve`` (default latency budget), one image per request
(``POST /embed``), with the aiohttp load generator of ``aio_load.py``:

  1. concurrency 16 (the server's working point): goodput, p50/p99, server CPU per answer;
  2. concurrency 800 (~50x): goodput (answered requests/s), p50/p99 of the admitted
     requests, the refusals (503) and their latency, server CPU, and the CPU one refusal
     costs: (server CPU - answers x CPU per answer at c=16) / refusals.

Refused workers wait ``Retry-After`` (capped by ``--max-pause``, 4 s: under uvicorn's 5 s
keep-alive, so a worker's connection is still open when it comes back; at exactly 5 s the
client races the server's close and counts a reset) before their next request, as
well-behaved clients do; ``--max-pause 0.05`` makes a flood that comes back
at once. Usage:

    python benchmarks/overload.py [--small] [--duration 20] [--overload 800] [--budget-ms 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from aio_load import embed_body, machine_note, raise_file_limit, run_level  # noqa: E402

from mmship.bench.loadgen import default_image  # noqa: E402
from mmship.serving.process import free_port, spawn_server, stop_process, wait_ready  # noqa: E402


def refusal_path_cpu_us(calls: int = 20000) -> float:
    """CPU microseconds one refusal costs in the app's own middleware (the guard, then
    admission answering 503), called in-process without HTTP: a floor under the figure
    measured over HTTP, which adds uvicorn's parsing and the socket."""
    import asyncio
    import time

    from mmship.serving.admission import AdmissionController
    from mmship.serving.admission_gate import AdmissionMiddleware, ServerAdmission
    from mmship.serving.metrics import ServerMetrics
    from mmship.serving.middleware import GuardMiddleware

    async def never(scope, receive, send):  # the app behind: must not be reached
        raise AssertionError("a refused request reached the app")

    admission = AdmissionController(budget_s=1.0, max_inflight=10_000)
    admission.observe_batch("image", 1, 1, 0.05)
    for _ in range(100):  # 5 s of work ahead
        admission.try_admit()
    metrics = ServerMetrics()
    gate = ServerAdmission({"model": admission}, lambda name: "model", metrics.registry)
    app = GuardMiddleware(AdmissionMiddleware(never, gate), metrics=metrics, max_body_bytes=1 << 25, api_key=None)
    scope = {"type": "http", "method": "POST", "path": "/embed",
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), (b"content-length", b"34000")]}
    sent = []

    async def receive():
        raise AssertionError("the body was read")

    async def send(message):
        sent.append(message["type"])

    async def run() -> float:
        start = time.process_time()
        for _ in range(calls):
            await app(scope, receive, send)
        return time.process_time() - start

    seconds = asyncio.run(run())
    assert len(sent) == 2 * calls
    return seconds / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--base", type=int, default=16, help="the working-point concurrency")
    parser.add_argument("--overload", type=int, default=800, help="the overload concurrency")
    parser.add_argument("--budget-ms", type=float, default=None, help="--latency-budget-ms (default: the server's)")
    parser.add_argument("--max-pause", type=float, default=4.0, help="longest wait after a 503 (Retry-After capped)")
    parser.add_argument("--modality", choices=("image", "text"), default="image")
    parser.add_argument("--work", type=Path, default=Path(".bench"))
    parser.add_argument("--bundle", type=Path, default=None, help="default: WORK/bundle-int8-dynamic")
    parser.add_argument("--small", action="store_true", help="the small model of http_path.py (built if missing)")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    raise_file_limit()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.small:
        from http_path import prepare_small

        args.bundle = prepare_small(args.work)
    bundle = args.bundle or args.work / "bundle-int8-dynamic"
    if not (bundle / "mmship.yaml").exists():
        from serve_clip import prepare

        bundle = prepare(args.work)[1]["dynamic"]
    print(f"machine: {machine_note()}", flush=True)
    extra = ["--latency-budget-ms", str(args.budget_ms)] if args.budget_ms is not None else []
    port = free_port()
    child = spawn_server([str(bundle), "--port", str(port), "--precision", args.precision, *extra], log=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    body = embed_body(args.modality, default_image())
    try:
        wait_ready(url, child, 300)
        run_level(url, body, 4, 3.0)  # warm-up
        base = run_level(url, body, args.base, args.duration, pid=child.pid, max_pause_s=args.max_pause)
        print(f"c={args.base}: {json.dumps(base.summary())}", flush=True)
        over = run_level(url, body, args.overload, args.duration, pid=child.pid, max_pause_s=args.max_pause)
        print(f"c={args.overload}: {json.dumps(over.summary())}", flush=True)
    finally:
        stop_process(child.pid)
    cpu_per_answer = base.server_cpu_s / max(1, len(base.latencies_ms))
    refusal_cpu = (over.server_cpu_s - len(over.latencies_ms) * cpu_per_answer) / max(1, over.refused)
    ratio = over.goodput / base.goodput if base.goodput else 0.0
    p99 = over.percentile(99)
    print(f"\n| level | goodput {args.modality}s/s | admitted p50 ms | admitted p99 ms | refused (503) | refusal p50 ms | other errors | server CPU s | load generator CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, level in ((f"c={args.base}", base), (f"c={args.overload}", over)):
        s = level.summary()
        print(f"| {name} | {s['goodput']} | {s['p50_ms']} | {s['p99_ms']} | {s['refused']} | {s['refused_p50_ms']} | "
              f"{sum(level.errors.values())} | {s['server_cpu_s']} | {s['client_cpu_s']} |")
    print(f"\ngoodput under {args.overload / args.base:.0f}x overload / at c={args.base}: {ratio:.2f} (target >= 0.9)")
    print(f"admitted p99 under overload: {(p99 or 0) / 1000:.2f} s (target <= 2 s)")
    if refusal_cpu > 0:
        per_refusal = f"{refusal_cpu * 1000:.3f} ms ((server CPU - answers x CPU per answer) / refusals; target well under 1 ms)"
    else:  # the answers' share of the CPU is below their c=16 cost: fuller batches under overload
        per_refusal = ("too small to see: the answers cost less CPU each under overload (fuller batches) than at "
                       f"c={args.base}, which hides the refusals' share; the middleware figure below is the floor")
    print(f"server CPU per answer at c={args.base}: {cpu_per_answer * 1000:.1f} ms; per refusal under overload: {per_refusal}")
    floor = refusal_path_cpu_us()
    print(f"the refusal in the app's middleware alone (in-process, no HTTP): {floor:.0f} us of CPU")
    if args.json:
        with args.json.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({
                "machine": machine_note(), "budget_ms": args.budget_ms, "max_pause_s": args.max_pause,
                "base": base.summary(), "overload": over.summary(), "goodput_ratio": ratio,
                "cpu_per_answer_ms": cpu_per_answer * 1000, "cpu_per_refusal_ms": refusal_cpu * 1000,
                "middleware_refusal_us": floor,
            }) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
