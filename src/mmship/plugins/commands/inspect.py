"""``mmship inspect``: a bundle's manifest and report as tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mmship import hookimpl
from mmship.core.cli.console import console, table

if TYPE_CHECKING:
    from mmship.core.bundle import Bundle


def _num(value: object, digits: int = 6) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


@hookimpl
def mmship_register_commands(app: typer.Typer) -> None:
    """Add the ``inspect`` command to ``app``."""

    @app.command("inspect")
    def inspect_bundle(
        bundle: Path = typer.Argument(..., help="A bundle folder written by `mmship build`."),
        as_json: bool = typer.Option(False, "--json", help="Print manifest and report as JSON."),
    ) -> None:
        """Verify a bundle's checksums and show its manifest and report."""
        from mmship.core.bundle import Bundle
        from mmship.scoring import Scorer

        loaded = Bundle.load(bundle)
        m, report = loaded.manifest, loaded.report
        if as_json:
            console.print_json(json.dumps({"manifest": m.model_dump(mode="json"), "report": report}))
            return
        source = m.source.hub_id or m.source.path
        console.print(f"[bold]{m.name}[/]  adapter [bold]{m.adapter}[/]  from {source}"
                      + (f"@{m.source.revision}" if m.source.revision else "")
                      + f"  (mmship {m.mmship_version}, {m.created_at}); checksums verified")
        console.print(table("tensors", ["", "name", "modality", "dtype", "shape"], [
            (kind, s.name, s.modality, s.dtype, s.shape_text())
            for kind, specs in (("input", m.inputs), ("output", m.outputs)) for s in specs
        ]))
        console.print(variants_table(loaded))
        parity = report.get("parity", {})
        console.print(table("export parity vs eager PyTorch", ["graph", "min cosine", "max abs diff"], [
            (name, _num(p.get("min_cosine")), _num(p.get("max_abs_diff"), 8)) for name, p in parity.items()
        ]))
        accuracy = report.get("accuracy", {})
        console.print(table("accuracy vs fp32 (probe set)", ["precision", "min cosine", "mean cosine", "accuracy loss", "zero-shot top-1 agreement"], [
            (p, _num(a.get("min_cosine")), _num(a.get("mean_cosine")), f"{a.get('accuracy_loss', 0):.3%}",
             _num(a.get("zero_shot_top1_agreement", "n/a"), 3))
            for p, a in accuracy.items()
        ]))
        scaled = report.get("scaled_jpeg_decode")
        if scaled:
            console.print(f"JPEG scaled decode (serve --jpeg-scaled-decode), probe photos upscaled {scaled['upscaled']}x: "
                          f"mean cosine {scaled['mean_cosine']:.5f}, min {scaled['min_cosine']:.5f} to full decoding (fp32)")
        scoring = Scorer.for_manifest(m).spec
        console.print(f"scoring: {scoring.kind}" + (
            f" of logit_scale {scoring.logit_scale:.4g} x cosine({scoring.image_embeds}, {scoring.text_embeds})"
            + (f" + logit_bias {scoring.logit_bias:.4g}" if scoring.logit_bias else "") if scoring.scores else ""
        ) + ("" if m.scoring else " (bundle from before scoring was recorded)"))
        for tower, c in m.chosen.items():
            console.print(f"served by default: {tower} on {c.runtime} {c.precision} ({c.reason})")
        skipped = {**report.get("variants_skipped", {}), **report.get("dropped", {})}
        for key, reason in skipped.items():
            console.print(f"[yellow]left out:[/] {key}: {reason}")
        sp = m.serving_params
        console.print(f"serving: precision {sp.precision} (without the chosen variants), batch {sp.default_batch_size}..{sp.max_batch_size}, "
                      f"max delay {sp.max_delay_ms} ms, accelerator {sp.accelerator}")
        stages = report.get("stages", {})
        if stages:
            console.print("build stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in stages.items()))


def variants_table(loaded: Bundle) -> object:
    """Every graph variant: runtime, precision, file and size, load options, accuracy to
    fp32 and the build machine's timing; the variant served by default per tower starred."""
    from mmship.core.variants import variant_key

    m, report = loaded.manifest, loaded.report
    sizes = {f: loaded.path(f).stat().st_size for f in m.files if f.startswith("graphs/")}
    optimize = report.get("optimize", {})
    rematched = {(r.get("tower"), key): ms for r in report.get("head_to_head") or [] for key, ms in r.get("ms", {}).items()}
    rows = []
    for g in m.graphs:
        chosen = m.chosen.get(g.name)
        star = "*" if chosen is not None and (chosen.runtime, chosen.precision) == (g.runtime, g.precision) else ""
        files = [f for f in sizes if f.rsplit(".", 1)[0] == g.file.rsplit(".", 1)[0]]
        timing = g.timing_ms
        rows.append((
            f"{g.name}{star}", g.runtime, g.precision, f"{sum(sizes[f] for f in files) / 1e6:.1f}",
            ",".join(str(v) for v in g.runtime_options.values()) or "-",
            _num(g.accuracy.get("mean_cosine", "-"), 4),
            f"{timing['batch1']:.1f}" if "batch1" in timing else "-",
            f"{timing['batch']:.1f}" if "batch" in timing else "-",
            _num(rematched.get((g.name, variant_key(g.runtime, g.precision)), "-"), 1),
            _optimize_text(optimize.get(f"{g.name}.{variant_key(g.runtime, g.precision)}")),
        ))
    batch = next((int(g.timing_ms["batch_size"]) for g in m.graphs if "batch_size" in g.timing_ms), None)
    title = ("graph variants (* served by default: the fastest verified here at build time; h2h: close ones timed "
             "again together)" if m.chosen else "graphs")
    return table(title, ["graph", "runtime", "prec", "MB", "load", "cosine", "ms b1",
                         f"ms b{batch}" if batch else "ms batch", "h2h", "opt"], rows)


def _optimize_text(figures: dict | None) -> str:
    if not figures:
        return "-"
    verdict = "yes" if figures.get("applied") else "no"
    return f"{verdict} ({figures.get('speedup', 0):.2f}x)"
