"""The printed half of serve_clip.py: tables, ratios, fraction of the int8 peak, memory, targets."""

from __future__ import annotations

import cpu_peak

#: The issue's targets on 2 cores (benchmark figures, not tests).
PEERS = ("infinity-emb torch", "naive")


def _rps(entry: dict, modality: str, c: int) -> float | None:
    level = entry.get("levels", {}).get(f"{modality}@{c}")
    return float(level["rps"]) if level else None


def _p50(entry: dict, modality: str, c: int) -> float | None:
    level = entry.get("levels", {}).get(f"{modality}@{c}")
    return float(level["p50_ms"]) if level and level.get("p50_ms") is not None else None


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def print_report(results: dict[str, dict], meta: dict) -> None:
    """Print every table of the run."""
    concurrency: list[int] = meta["concurrency"]
    top = max(concurrency)
    peak_gops = float(meta["peak"]["int8_gops"])
    macs = meta["macs"]
    print("\n## Machine")
    for line in cpu_peak.describe(meta["cpu"], meta["peak"]):
        print(line)
    print(f"MACs per item: image {macs['image'] / 1e9:.2f} G, text ({int(macs['text_tokens'])} tokens) {macs['text'] / 1e9:.3f} G")
    start, end = meta["load_average_start"], meta["load_average_end"]
    print(f"load average at start {start[0]:.2f} / {start[1]:.2f} / {start[2]:.2f}, at end {end[0]:.2f} / {end[1]:.2f} / {end[2]:.2f}; "
          f"run took {meta['wall_s'] / 60:.1f} min; {meta['duration_s']:.0f} s per level; the load generator shares the cores")

    print("\n## Over HTTP, one item a request\n")
    print("| server | modality | concurrency | items/s | p50 ms | p95 ms | errors |\n|---|---|---|---|---|---|---|")
    for name, entry in results.items():
        if "note" in entry:
            print(f"| {name} | - | - | not measured: {entry['note'][:120]} | | | |")
            continue
        for key, level in entry.get("levels", {}).items():
            modality, c = key.split("@")
            print(f"| {name} | {modality} | {c} | {level['rps']:.1f} | {level['p50_ms'] or 0:.1f} | "
                  f"{level['p95_ms'] or 0:.1f} | {level['errors']} |")

    engines = {name: entry["engine"] for name, entry in results.items() if entry.get("engine")}
    if engines:
        batch = int(next(iter(engines.values()))["batch"])
        print("\n## In-process engine (inputs prepared once; its own process)\n")
        print(f"| variant | images/s b{batch} | image b1 ms | texts/s b{batch} | text b1 ms | engine memory MiB | process RSS MiB |")
        print("|---|---|---|---|---|---|---|")
        for name, e in engines.items():
            print(f"| {name} | {e['image']:.1f} | {e['image_b1_ms']:.1f} | {e['text']:.1f} | {e['text_b1_ms']:.1f} | "
                  f"{e['rss_mb'] - e['rss_before_mb']:.0f} | {e['rss_mb']:.0f} |")

    print("\n## Memory per model server (process and children, after the run)\n")
    print("| server | RSS MiB | peak RSS MiB |\n|---|---|---|")
    for name, entry in results.items():
        memory = entry.get("memory")
        if memory:
            print(f"| {name} | {memory['rss_mb']:.0f} | {memory['peak_mb']:.0f} |")

    print(f"\n## Ratios at concurrency {top}")
    for name, entry in results.items():
        if not name.startswith("mmship") or "levels" not in entry:
            continue
        for modality in ("image", "text"):
            mine = _rps(entry, modality, top)
            parts = [f"vs {peer}: {_ratio(mine, _rps(results[peer], modality, top))}" for peer in PEERS if peer in results]
            if entry.get("engine"):
                parts.append(f"HTTP / in-process engine: {_ratio(mine, entry['engine'][modality])}")
            print(f"  {name} {modality}: " + "; ".join(parts))

    print(f"\n## Fraction of the measured int8 peak ({peak_gops:.0f} GOPS; items/s x MACs x 2 / peak)")
    for name, entry in results.items():
        if "levels" not in entry:
            continue
        parts = []
        for modality in ("image", "text"):
            ops = 2.0 * macs[modality]
            server = _rps(entry, modality, top)
            if server:
                parts.append(f"{modality} server c={top} {server * ops / 1e9:.0f} GOPS = {server * ops / 1e9 / peak_gops:.2f}")
            if entry.get("engine"):
                rate = float(entry["engine"][modality])
                parts.append(f"{modality} engine {rate * ops / 1e9:.0f} GOPS = {rate * ops / 1e9 / peak_gops:.2f}")
        print(f"  {name}: " + "; ".join(parts))
    print("  (not every MAC runs in int8: attention products, layer norms and the fp32 variants run in float)")

    if 1 in concurrency and top == 16:
        print("\n## The issue's targets (2 cores): images/s c=16 >= 140, image p50 c=1 <= 12 ms, texts/s c=16 >= 800")
        for name, entry in results.items():
            if not name.startswith("mmship") or "levels" not in entry:
                continue
            images, p50, texts = _rps(entry, "image", 16), _p50(entry, "image", 1), _rps(entry, "text", 16)
            verdict = [
                f"images {images or 0:.0f}/s {'met' if images and images >= 140 else 'missed'}",
                f"p50 {p50 or 0:.1f} ms {'met' if p50 and p50 <= 12 else 'missed'}",
                f"texts {texts or 0:.0f}/s {'met' if texts and texts >= 800 else 'missed'}",
            ]
            print(f"  {name}: " + ", ".join(verdict))
