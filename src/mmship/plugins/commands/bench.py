"""``mmship bench``: load a served model at several concurrency levels; table, plot, JSON."""

from __future__ import annotations

from pathlib import Path

import typer

from mmship import hookimpl
from mmship.core.cli.console import console, err_console
from mmship.core.errors import MmshipError


def parse_levels(text: str) -> list[int]:
    """``1,4,16`` -> ``[1, 4, 16]``."""
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise MmshipError(f"--concurrency expects whole numbers like 1,4,16, got {text!r}", hint="write e.g. --concurrency 1,4,16") from None
    if not levels or any(level < 1 for level in levels):
        raise MmshipError(f"--concurrency levels must be positive, got {text!r}", hint="write e.g. --concurrency 1,4,16")
    return levels


def parse_modalities(text: str) -> list[str]:
    """``image,text`` -> ``["image", "text"]``."""
    from mmship.bench.loadgen import MODALITIES

    modalities = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown or not modalities:
        raise MmshipError(f"--modality takes image and/or text, got {text!r}", hint="write e.g. --modality image,text")
    return list(dict.fromkeys(modalities))


@hookimpl
def mmship_register_commands(app: typer.Typer) -> None:
    """Add the ``bench`` command to ``app``."""

    @app.command("bench")
    def bench(
        target: str = typer.Argument(..., help="The server's base URL, or a bundle folder (served on a loopback port for the run)."),
        concurrency: str = typer.Option("1,4,16", "--concurrency", "-c", help="Comma-separated concurrency levels."),
        duration: float = typer.Option(10.0, "--duration", "-d", help="Seconds per level."),
        modality: str = typer.Option("image,text", "--modality", help="image, text, or image,text."),
        image: Path | None = typer.Option(None, "--image", help="Image to send (default: the bundled cat photo)."),
        text: str = typer.Option("a photo of a cat", "--text", help="Text to send."),
        protocol: str = typer.Option("embed", "--protocol", help="embed (POST /embed), v2 or v2-binary."),
        model: str | None = typer.Option(None, "--model", "-m", help="Model name for v2 (default: asked from the server)."),
        api_key: str | None = typer.Option(None, "--api-key", envvar="MMSHIP_API_KEY", show_envvar=True, help="Bearer API key."),
        timeout: float = typer.Option(30.0, "--timeout", help="Seconds per request."),
        max_requests: int | None = typer.Option(None, "--max-requests", help="Stop a level after this many requests."),
        plot: Path | None = typer.Option(None, "--plot", help="Save throughput and latency vs concurrency as a PNG."),
        json_path: Path | None = typer.Option(None, "--json", help="Save the raw results (every latency) as JSON."),
        serve_args: list[str] = typer.Option(
            [], "--serve-arg", metavar="FLAG",
            help="A `mmship serve` argument for a bundle folder served for the run, e.g. --serve-arg=--jpeg-scaled-decode (repeatable).",
        ),
    ) -> None:
        """Measure req/s and p50/p95/p99 latency at each concurrency level, per modality."""
        from mmship.bench.loadgen import BenchPlan, bench_url
        from mmship.bench.report import save_json, save_plot, tables
        from mmship.bench.urls import resolve_target
        from mmship.payload.images import to_image_bytes

        plan = BenchPlan(
            concurrency=parse_levels(concurrency), duration_s=duration, modalities=parse_modalities(modality),
            image=to_image_bytes(image, f"--image {image}") if image is not None else None, text=text,
            protocol=protocol, model=model, api_key=api_key, timeout_s=timeout, max_requests=max_requests,
        )
        plan.validate()
        levels = len(plan.concurrency) * len(plan.modalities)
        err_console.print(f"bench: {levels} levels x {duration:g} s ({protocol})")
        with resolve_target(target, api_key=api_key, serve_args=serve_args) as url:
            result = bench_url(
                url, plan,
                on_level=lambda lv: err_console.print(
                    f"  {lv.modality} c={lv.concurrency}: {lv.rps:.1f} req/s, {lv.errors} errors"
                ),
            )
        for rendered in tables(result):
            console.print(rendered)
        if plot is not None:
            console.print(f"plot written: {save_plot(result, plot)}")
        if json_path is not None:
            console.print(f"results written: {save_json(result, json_path)}")
