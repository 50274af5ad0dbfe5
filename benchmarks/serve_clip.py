"""Serving benchmark: full-size random-weight CLIP ViT-B/32 over HTTP, one item a request,
mmship against its peers, on one machine in one run.

Measured in one run with the same load generator (`mmship bench`'s, closed loop, on the same
cores as the servers):
  * the machine: CPU model and flags, the int8 matmul peak measured now (cpu_peak.py);
  * mmship serving each variant of ``--variants``: ``auto`` (no flags: the variant the build
    chose per tower, where the bundle records one) and ``runtime:precision`` pairs (passed as
    ``--runtime R --precision P``; skipped with a note when `mmship serve` has no ``--runtime``
    flag or the bundle lacks the variant): images/s and texts/s with p50/p95 per concurrency,
    and the server's memory;
  * the in-process engine of each variant at batch 16 (engine_ceiling.py, its own process):
    the ceiling any server could reach, and its memory;
  * infinity-emb 0.0.78 with its torch engine (setup_infinity.sh, its own venv);
  * a naive server: FastAPI + transformers eager, one request one forward pass.
Prints a table, the ratios, the fraction of the int8 peak reached, and memory per model.

    python benchmarks/serve_clip.py [--duration 8] [--concurrency 1,16] [--work .bench]
        [--variants auto,onnxruntime:int8,openvino:int8,openvino:bf16,onnxruntime:fp32]
        [--quantize dynamic|static|dynamic,static]
        [--skip-naive] [--skip-infinity] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cpu_peak
import infinity_baseline
import psutil
import serve_report

from mmship.bench.loadgen import BenchPlan, bench_url, default_image, run_level
from mmship.core.bundle import Bundle
from mmship.core.pipeline import BuildRequest, build
from mmship.core.specs import PRECISIONS
from mmship.core.stages import QuantizeOptions
from mmship.serving.process import free_port, spawn_server, stop_process, wait_ready
from mmship.testing.models import make_random_clip

HERE = Path(__file__).resolve().parent
CAPTION = "a photo of a cat sitting on a wooden table next to a cup of coffee"
#: ``auto``: no --runtime/--precision, the variant the build chose per tower.
DEFAULT_VARIANTS = "auto,onnxruntime:int8,openvino:int8,openvino:bf16"
MODALITIES = ("image", "text")


def say(message: str) -> None:
    print(message, flush=True)


def parse_variants(text: str) -> list[tuple[str, str]]:
    """``"auto,onnxruntime:int8,openvino:bf16"`` -> [("auto", "auto"), ("onnxruntime", "int8"),
    ("openvino", "bf16")]."""
    variants = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        if item == "auto":
            variants.append(("auto", "auto"))
            continue
        runtime, sep, precision = item.partition(":")
        if not sep or not runtime or not precision:
            raise SystemExit(f"--variants: {item!r} is not runtime:precision (e.g. onnxruntime:int8)")
        variants.append((runtime, precision))
    return variants


def serve_has_runtime_flag() -> bool:
    """Whether this mmship's ``serve`` command takes ``--runtime``."""
    done = subprocess.run([sys.executable, "-m", "mmship", "serve", "--help"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, check=False)
    return "--runtime" in done.stdout


def bundle_variants(bundle_dir: Path) -> set[tuple[str, str]]:
    """(runtime, precision) pairs for which the bundle has a graph of every tower."""
    manifest = Bundle.load(bundle_dir).manifest
    towers = {g.name for g in manifest.graph_specs}
    pairs: dict[tuple[str, str], set[str]] = {}
    for graph in manifest.graphs:
        pairs.setdefault((graph.runtime, graph.precision), set()).add(graph.name)
    return {pair for pair, names in pairs.items() if names >= towers}


def prepare(work: Path, modes: list[str], variants: list[tuple[str, str]]) -> tuple[Path, dict[str, Path]]:
    """The random-weight model and one bundle per int8 quantization mode.

    An mmship that builds variants per runtime (its ``BuildRequest`` has ``runtimes``) builds
    its default plan: onnxruntime fp32 + int8 and every installed runtime's variants, the
    fastest verified one per tower recorded as the choice. An older one builds fp32, int8 and
    the precisions ``variants`` name that it knows."""
    model = work / "clip-vit-b32-random-real-tokenizer"
    if not (model / "config.json").exists():
        say(f"making {model}")
        make_random_clip(model, real_tokenizer=True)
    if "runtimes" in {f.name for f in dataclasses.fields(BuildRequest)}:
        extra: dict = {}
        what = "the build's default variants for every installed runtime"
    else:
        wanted = ["fp32", *dict.fromkeys(p for r, p in variants if p not in ("fp32", "auto"))]
        extra = {"precisions": [p for p in wanted if p in PRECISIONS]}
        what = ", ".join(extra["precisions"]) + " on onnxruntime (this mmship builds no other runtime)"
    bundles = {}
    for mode in modes:
        bundle = work / f"bundle-int8-{mode}"
        if not (bundle / "mmship.yaml").exists():
            say(f"building {bundle}: {what}; int8 {mode}")
            build(BuildRequest(source=str(model), out=bundle, quantize=QuantizeOptions(mode=mode), **extra))
        bundles[mode] = bundle
    return model, bundles


def chosen_pairs(bundle_dir: Path) -> set[tuple[str, str]]:
    """The (runtime, precision) pairs the build chose, over all towers (empty: no choice recorded)."""
    chosen = getattr(Bundle.load(bundle_dir).manifest, "chosen", None) or {}
    return {(c.runtime, c.precision) for c in chosen.values()}


def chosen_variants(bundle_dir: Path) -> str | None:
    """The variant the build chose per tower (``image onnxruntime int8, text ...``), or None
    when the bundle records no choice (then ``mmship serve`` serves its serving precision)."""
    chosen = getattr(Bundle.load(bundle_dir).manifest, "chosen", None) or {}
    return ", ".join(f"{tower} {c.runtime} {c.precision}" for tower, c in chosen.items()) or None


def plan_servers(bundles: dict[str, Path], variants: list[tuple[str, str]], has_runtime: bool) -> list[tuple]:
    """(name, bundle, runtime, precision, note) per mmship server to run; a note says why one is skipped."""
    plan = []
    first = next(iter(bundles))
    for mode, bundle in bundles.items():
        built = bundle_variants(bundle)
        for runtime, precision in variants:
            if mode != first and precision not in ("int8", "auto"):
                continue  # fp32 / bf16 are the same in every int8 bundle: serve them once
            suffix = f" ({mode})" if len(bundles) > 1 and precision in ("int8", "auto") else ""
            if runtime == "auto":
                chosen = chosen_variants(bundle)
                note = None if chosen else ("the bundle records no chosen variant: `mmship serve` without flags serves "
                                            "its serving precision, measured as that onnxruntime variant")
                plan.append((f"mmship default [{chosen or 'none'}]{suffix}", bundle, runtime, precision, note))
                continue
            name = f"mmship {runtime} {precision}{suffix}"
            note = None
            if ("auto", "auto") in variants and chosen_pairs(bundle) == {(runtime, precision)}:
                note = "the build chose this variant for every tower: measured as the default"
            elif (runtime, precision) not in built:
                note = f"the bundle has no {runtime} {precision} graphs (built: {', '.join(' '.join(v) for v in sorted(built))})"
            elif runtime != "onnxruntime" and not has_runtime:
                note = "`mmship serve` has no --runtime flag here"
            plan.append((name, bundle, runtime, precision, note))
    return plan


def engine_ceiling(bundle: Path, runtime: str, precision: str, seconds: float) -> dict | None:
    """engine_ceiling.py in its own process; None (with the reason printed) when it cannot run."""
    done = subprocess.run([sys.executable, str(HERE / "engine_ceiling.py"), str(bundle), "--runtime", runtime,
                           "--precision", precision, "--seconds", str(seconds)], capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else {"skipped": f"exit {done.returncode}: {done.stderr.strip()[-500:]}"}
    if "skipped" in result:
        say(f"    in-process engine not measured: {result['skipped']}")
        return None
    return result


def memory_mb(pid: int) -> dict[str, float]:
    """RSS now and peak RSS (VmHWM) of ``pid`` plus its children, in MiB."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    rss = peak = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error, OSError):
            rss += process.memory_info().rss
            status = Path(f"/proc/{process.pid}/status").read_text()
            peak += next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM")), 0)
    return {"rss_mb": rss / 2**20, "peak_mb": peak / 2**20}


@contextlib.contextmanager
def served(bundle: Path, flags: list[str]) -> Iterator[tuple[str, int]]:
    """``mmship serve`` on a free loopback port: (url, pid)."""
    port = free_port()
    child = spawn_server([str(bundle), "--host", "127.0.0.1", "--port", str(port), *flags])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, child, 300)
        yield url, child.pid
    finally:
        stop_process(child.pid)


def on_level(level) -> None:  # noqa: ANN001
    errors = f" errors {level.errors} {level.error_kinds}" if level.errors else ""
    say(f"    {level.modality:5} c={level.concurrency:<3} {level.rps:7.1f}/s p50 {level.p50 or 0:7.1f} ms{errors}")


def _summary(level) -> dict:  # noqa: ANN001
    """A level's figures without its raw latencies."""
    return {k: v for k, v in level.to_dict().items() if k != "latencies_ms"}


def bench_mmship(url: str, concurrency: list[int], duration: float) -> dict[str, dict]:
    plan = BenchPlan(concurrency=concurrency, duration_s=duration, modalities=list(MODALITIES), text=CAPTION, protocol="embed")
    result = bench_url(url, plan, on_level=on_level)
    return {f"{lv.modality}@{lv.concurrency}": _summary(lv) for lv in result.levels}


def bench_encoded(url: str, requests: dict, concurrency: list[int], duration: float) -> dict[str, dict]:
    """The same closed-loop levels for a server mmship's client does not speak (infinity)."""
    levels = {}
    for modality, request in requests.items():
        for c in concurrency:
            level = asyncio.run(run_level(url, request, modality, c, duration))
            on_level(level)
            levels[f"{modality}@{c}"] = _summary(level)
    return levels


def run_naive(model: Path, concurrency: list[int], duration: float) -> dict:
    port = free_port()
    child = subprocess.Popen([sys.executable, str(HERE / "naive_server.py"), str(model), "--port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, child, 300)
        levels = bench_mmship(url, concurrency, duration)
        return {"levels": levels, "memory": memory_mb(child.pid)}
    finally:
        stop_process(child.pid)


def run_infinity(work: Path, model: Path, concurrency: list[int], duration: float) -> dict:
    log = work / "infinity.log"
    say(f"  setting up its venv if needed (benchmarks/setup_infinity.sh; log {log})")
    exe = infinity_baseline.ensure_venv(work / "infinity-venv", log)
    if exe is None:
        return {"note": f"setup_infinity.sh failed; see {log}"}
    folder = infinity_baseline.transformers4_copy(model, work / "clip-infinity-transformers4")
    port = free_port()
    child = infinity_baseline.start(exe, folder, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        infinity_baseline.wait_ready(url, child, log)
        requests = infinity_baseline.requests(folder.name, default_image(), CAPTION)
        for request in requests.values():
            infinity_baseline.check_answer(url, request, 512)
        levels = bench_encoded(url, requests, concurrency, duration)
        return {"levels": levels, "memory": memory_mb(child.pid)}
    except RuntimeError as exc:
        return {"note": str(exc)}
    finally:
        stop_process(child.pid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per concurrency level")
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--work", type=Path, default=Path(".bench"))
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help="runtime:precision pairs served by mmship")
    parser.add_argument("--quantize", default="dynamic", help="int8 bundles to build and serve: dynamic, static or both")
    parser.add_argument("--engine-seconds", type=float, default=5.0)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--skip-infinity", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    concurrency = [int(c) for c in args.concurrency.split(",")]
    variants = parse_variants(args.variants)
    modes = [m.strip() for m in args.quantize.split(",") if m.strip()]
    args.work.mkdir(parents=True, exist_ok=True)
    began = time.time()
    load_start = os.getloadavg()

    info = cpu_peak.cpu_info()
    say("measuring the int8 matmul peak (onnxruntime, torch, OpenVINO where installed; 3 shapes)")
    peak = cpu_peak.int8_peak(threads=os.cpu_count() or 1, seconds=1.0)
    for line in cpu_peak.describe(info, peak):
        say(line)

    model, bundles = prepare(args.work, modes, variants)
    has_runtime = serve_has_runtime_flag()
    results: dict[str, dict] = {}
    for name, bundle, runtime, precision, note in plan_servers(bundles, variants, has_runtime):
        if note:
            say(f"{name}: skipped, {note}")
            results[name] = {"note": note}
            continue
        say(f"{name}: in-process engine, batch 16")
        entry: dict = {"engine": engine_ceiling(bundle, runtime, precision, args.engine_seconds)}
        if entry["engine"]:
            say(f"    {json.dumps({k: round(v, 1) for k, v in entry['engine'].items()})}")
        flags = [] if runtime == "auto" else ["--precision", precision, *(["--runtime", runtime] if has_runtime else [])]
        say(f"{name}: mmship serve {' '.join(flags) or '(no flags: the bundle default)'}")
        with served(bundle, flags) as (url, pid):
            entry["levels"] = bench_mmship(url, concurrency, args.duration)
            entry["memory"] = memory_mb(pid)
        results[name] = entry
    if not args.skip_infinity:
        say("infinity-emb 0.0.78, torch engine (fp32 eager)")
        results["infinity-emb torch"] = run_infinity(args.work, model, concurrency, args.duration)
        if "note" in results["infinity-emb torch"]:
            say(f"  infinity not measured: {results['infinity-emb torch']['note']}")
    if not args.skip_naive:
        say("naive FastAPI + transformers eager")
        results["naive"] = run_naive(model, concurrency, args.duration)

    text_tokens = next((int(r["engine"]["text_tokens"]) for r in results.values() if r.get("engine")), 18)
    macs = cpu_peak.clip_macs(model / "config.json", text_tokens)
    meta = {"cpu": info, "peak": peak, "macs": macs, "concurrency": concurrency, "duration_s": args.duration,
            "load_average_start": load_start, "load_average_end": os.getloadavg(), "wall_s": time.time() - began}
    serve_report.print_report(results, meta)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
