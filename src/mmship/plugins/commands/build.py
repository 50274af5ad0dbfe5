"""``mmship build``: a model folder or hub id -> a verified bundle."""

from __future__ import annotations

from pathlib import Path

import typer

from mmship import hookimpl
from mmship.core.cli.console import console
from mmship.core.errors import BuildError


def parse_fraction(text: str) -> float:
    """``0.5%`` -> 0.005; ``0.005`` -> 0.005."""
    value = text.strip()
    try:
        return float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise BuildError(
            f"--max-accuracy-loss expects a fraction like 0.005 or a percentage like 0.5%, got {text!r}",
            hint="write e.g. --max-accuracy-loss 0.5%",
        ) from None


@hookimpl
def mmship_register_commands(app: typer.Typer) -> None:
    """Add the ``build`` command to ``app``."""

    @app.command("build")
    def build(
        source: str = typer.Argument(..., help="A Hugging Face hub id or a folder written by save_pretrained."),
        out: Path = typer.Option(..., "--out", "-o", help="Bundle folder to write."),
        adapter: str = typer.Option("auto", "--adapter", help="Adapter name, or auto-detect from config.json."),
        precision: list[str] | None = typer.Option(
            None, "--precision", "-p",
            help="Precisions to build (repeat): fp32, fp16, bf16, int8 (default: fp32 + int8 for onnxruntime; "
            "fp32, bf16 where the CPU has it, and int8 for OpenVINO when installed).",
        ),
        runtime: list[str] | None = typer.Option(
            None, "--runtime", "-r",
            help="Runtimes to build for (repeat): onnxruntime, openvino (default: onnxruntime and every installed "
            "runtime). Naming runtimes builds and times only those (plus the fp32 onnxruntime reference graph).",
        ),
        config: Path | None = typer.Option(None, "--config", help="deploy_config.yaml: adapter, revision and serving_params."),
        revision: str | None = typer.Option(None, "--revision", help="Hub revision (branch, tag or commit)."),
        trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow code from the model repo (off by default)."),
        max_accuracy_loss: str = typer.Option("0.5%", "--max-accuracy-loss", help="Fail when a precision loses more than this against fp32."),
        int8_mode: str = typer.Option("dynamic", "--int8-mode", help="dynamic, or static (calibrated on the probe set)."),
        per_channel: bool = typer.Option(False, "--per-channel", help="Per-channel int8 weights."),
        optimize: str = typer.Option("extended", "--optimize", help="Graph optimization: none, basic, extended."),
        opset: int = typer.Option(17, "--opset", help="ONNX opset."),
        name: str | None = typer.Option(None, "--name", help="Model name in the bundle (default: the source's name)."),
        force: bool = typer.Option(False, "--force", help="Replace an existing bundle at --out."),
        measure: bool = typer.Option(
            True, "--measure/--no-measure",
            help="Time every verified variant and serve the fastest per tower (--no-measure: serve onnxruntime's).",
        ),
    ) -> None:
        """Build a bundle: aligned preprocessing, graph variants per runtime and precision, each validated and
        timed (the fastest verified one per tower is served by default), checksums, report."""
        from mmship.core.cli.progress_view import RichStageReporter
        from mmship.core.pipeline import BuildRequest
        from mmship.core.pipeline import build as run_build
        from mmship.core.stages import ExportOptions, OptimizeOptions, QuantizeOptions

        request = BuildRequest(
            source=source, out=out, adapter=adapter, precisions=precision or None, runtimes=runtime or None,
            revision=revision,
            trust_remote_code=trust_remote_code, name=name, max_accuracy_loss=parse_fraction(max_accuracy_loss),
            export=ExportOptions(opset=opset), quantize=QuantizeOptions(mode=int8_mode, per_channel=per_channel),
            optimize=OptimizeOptions(level=optimize), overwrite=force, measure=measure,
        )
        if config is not None:
            from mmship.core.config import load_config

            deploy = load_config(config)
            request.serving_params = deploy.model.serving_params
            request.name = request.name or deploy.model.name
            request.revision = request.revision or deploy.model.revision
            if adapter == "auto" and deploy.model.adapter not in (None, "auto"):
                request.adapter = deploy.model.adapter
            wanted = deploy.model.serving_params.precision
            if request.precisions is not None and wanted not in request.precisions:
                request.precisions = [*request.precisions, wanted]
            elif request.precisions is None and wanted not in ("fp32", "int8", "bf16"):
                request.precisions = ["fp32", "int8", wanted]
        reporter = RichStageReporter()
        path = run_build(request, reporter)
        reporter.summary()
        console.print(f"[bold green]bundle written:[/] {path}")
        console.print(f"next: mmship inspect {path}   |   mmship serve {path}")
