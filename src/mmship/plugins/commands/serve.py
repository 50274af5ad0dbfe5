"""``mmship serve``: serve one bundle or several over HTTP with mmship's own server.

``mmship serve B1 B2``, ``mmship serve clip=B1 siglip=B2`` or ``mmship serve FOLDER``
(every bundle in it): each model answers under its name; the first is the default of
requests that name none (see :mod:`mmship.serving.served_bundles`).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from mmship import hookimpl


@hookimpl
def mmship_register_commands(app: typer.Typer) -> None:
    """Add ``serve`` to the CLI."""
    _add_serve(app)


def _add_serve(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        bundles: list[str] = typer.Argument(
            ..., metavar="BUNDLE",
            help="Bundle folders written by `mmship build`, as PATH or NAME=PATH (served as NAME), or a folder of "
            "bundles; several are served together, the first being the default model.",
        ),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (non-loopback needs --api-key)."),
        port: int = typer.Option(8000, "--port", help="Port to bind (0: any free port)."),
        precision: list[str] = typer.Option(
            [], "--precision", metavar="[NAME=]PRECISION",
            help="fp32, fp16, bf16 or int8 for every model, or NAME=int8 for one (repeat; default: the variant each bundle's build chose per tower).",
        ),
        runtime: str | None = typer.Option(
            None, "--runtime", help="onnxruntime or openvino for every model (default: the variant the build chose per tower)."
        ),
        max_batch_size: int | None = typer.Option(None, "--max-batch-size", help="Rows per graph run."),
        max_delay_ms: float | None = typer.Option(None, "--max-delay-ms", help="How long a request waits for company."),
        max_queue: int = typer.Option(256, "--max-queue", help="Rows waiting per graph before 503 + Retry-After."),
        timeout: float = typer.Option(30.0, "--timeout", help="Per-request deadline in seconds (504 after)."),
        latency_budget_ms: float = typer.Option(
            1000.0, "--latency-budget-ms",
            help="Refuse a request at arrival (503 + Retry-After, body unread) when its estimated latency is over this.",
        ),
        max_body_mb: float = typer.Option(32.0, "--max-body-mb", help="Largest request body accepted."),
        max_items: int = typer.Option(256, "--max-items", help="Images + texts + raw-tensor rows per request."),
        max_image_pixels: int = typer.Option(40_000_000, "--max-image-pixels", help="Largest image (width x height), decoded and after resizing."),
        max_request_pixels: int = typer.Option(100_000_000, "--max-request-pixels", help="Pixels of all images of one request."),
        max_aspect_ratio: float = typer.Option(100.0, "--max-aspect-ratio", help="Longest over shortest side of an image."),
        jpeg_scaled_decode: bool = typer.Option(
            False, "--jpeg-scaled-decode",
            help="Decode large JPEGs at 1/2, 1/4 or 1/8 scale, never below the model's input size: ~8x faster on "
            "phone photos, not bit-identical to the HF processor (the build reports the embeddings' cosine).",
        ),
        max_text_chars: int = typer.Option(100_000, "--max-text-chars", help="Characters of all texts of one request."),
        label_cache_size: int = typer.Option(
            10_000, "--label-cache-size", help="Label embeddings /classify and /rank keep between requests (0: no cache)."
        ),
        label_cache_mb: float = typer.Option(64.0, "--label-cache-mb", help="Memory the label-embedding cache may use."),
        threads: int | None = typer.Option(None, "--threads", help="Threads per graph session (default: all cores)."),
        streams: int = typer.Option(
            1, "--streams", min=1,
            help="Batches each OpenVINO graph runs at once, the threads split between them (throughput under load on "
            "shared cores; a lone request still runs on every thread, on a second session: more memory); "
            "onnxruntime graphs run one at a time.",
        ),
        run_slots: int | None = typer.Option(
            None, "--run-slots", min=0,
            help="Graph runs at once across all models (default 0: no limit, measured fastest on 2 cores; 1: one at a time).",
        ),
        accelerator: str | None = typer.Option(None, "--accelerator", help="cpu, cuda or tensorrt (default: the bundle's when present, else cpu)."),
        api_key: str | None = typer.Option(None, "--api-key", envvar="MMSHIP_API_KEY", help="Require 'Authorization: Bearer KEY'.", show_envvar=True),
        insecure: bool = typer.Option(False, "--insecure", help="Allow a non-loopback bind without an API key."),
        memory_log: float | None = typer.Option(None, "--memory-log", help="Sample the server's RSS every SECONDS into a CSV."),
        memory_log_file: Path = typer.Option(Path("mmship-memory.csv"), "--memory-log-file", help="Where --memory-log writes."),
        allow_url_fetch: list[str] = typer.Option(
            [], "--allow-url-fetch", metavar="HOST_PATTERN",
            help="Fetch image URLs from this host (images.example.com, *.example.com, an IP); repeatable. Off by default.",
        ),
        url_fetch_private: bool = typer.Option(False, "--url-fetch-private", help="Let URL fetching reach private, loopback and link-local addresses."),
        url_fetch_max_mb: float = typer.Option(10.0, "--url-fetch-max-mb", help="Largest image file fetched from a URL."),
        url_fetch_timeout: float = typer.Option(10.0, "--url-fetch-timeout", help="Seconds for one URL fetch, redirects included."),
    ) -> None:
        """Serve one bundle or several over HTTP: Open Inference Protocol v2, /embed, /classify, /rank,
        OpenAI's /v1/embeddings, /metrics, and a page to try the models at /."""
        from pydantic import ValidationError

        from mmship.core.cli.console import console
        from mmship.core.errors import ConfigError
        from mmship.evaluation.scaled_decode import describe_scaled_decode
        from mmship.serving.serve import build_server
        from mmship.serving.served_bundles import parse_precisions
        from mmship.serving.settings import ServerSettings, check_api_key

        if api_key is not None:
            check_api_key(api_key)  # an empty --api-key "$UNSET" must not switch auth off
        every_precision, precisions = parse_precisions(precision)
        url_fetch = _url_fetch_settings(allow_url_fetch, url_fetch_private, url_fetch_max_mb, url_fetch_timeout)
        try:
            settings = ServerSettings(
                host=host, port=port, precision=every_precision, runtime=runtime, max_batch_size=max_batch_size, max_delay_ms=max_delay_ms,
                max_queue_rows=max_queue, request_timeout_s=timeout, latency_budget_ms=latency_budget_ms, max_body_bytes=int(max_body_mb * 1024 * 1024),
                max_items_per_request=max_items, max_image_pixels=max_image_pixels, max_request_pixels=max_request_pixels,
                max_aspect_ratio=max_aspect_ratio, jpeg_scaled_decode=jpeg_scaled_decode, max_request_text_chars=max_text_chars,
                label_cache_entries=label_cache_size, label_cache_bytes=int(label_cache_mb * 1024 * 1024),
                threads=threads, streams=streams, accelerator=accelerator, api_key=api_key, insecure=insecure,
                memory_log=str(memory_log_file) if memory_log else None, memory_log_interval_s=memory_log or 5.0,
                url_fetch=url_fetch,
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"invalid server settings: {problems}", hint="fix the flag named above (see `mmship serve --help`)") from None
        server = build_server(bundles, settings, precisions, run_slots)
        services = server.config.app.state.models.services()
        for service in services:
            for note in service.engine.notes:
                console.print(f"[yellow]note:[/] {service.name}: {note}")
            if settings.jpeg_scaled_decode and service.images is not None:
                console.print(f"[yellow]note:[/] {service.name}: {describe_scaled_decode(service.engine.bundle.report)}")
            default = " (default)" if len(services) > 1 and service is services[0] else ""
            console.print(
                f"serving [bold]{service.name}[/]{default} (on {service.engine.accelerator}, graphs: "
                + ", ".join(f"{name} {g.runtime} {g.precision}" for name, g in service.engine.graphs.items()) + ")"
            )
        console.print(f"on http://{host}:{port}  pid {os.getpid()}")
        console.print(f"  try: http://{host}:{port}/ in a browser, or mmship invoke http://{host}:{port} --image cat.jpg --text 'a photo of a cat'   docs: http://{host}:{port}/docs")
        server.run()


def _url_fetch_settings(hosts: list[str], private: bool, max_mb: float, timeout_s: float) -> object:
    """``--allow-url-fetch`` and its limits, refused with the flag named when malformed."""
    from pydantic import ValidationError

    from mmship.core.errors import MmshipError
    from mmship.serving.url_fetch import UrlFetchSettings

    try:
        return UrlFetchSettings(
            allow_hosts=hosts, allow_private=private, max_bytes=max(1, int(max_mb * 1024 * 1024)), timeout_s=timeout_s
        )
    except ValidationError as exc:
        reasons = "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in exc.errors())
        raise MmshipError(
            f"--allow-url-fetch / --url-fetch-*: {reasons}",
            hint="e.g. --allow-url-fetch images.example.com --allow-url-fetch '*.cdn.example.com' --url-fetch-timeout 10",
        ) from None
