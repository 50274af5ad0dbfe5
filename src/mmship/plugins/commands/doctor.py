"""``mmship doctor``: is this environment fit to build and serve?

The seed's teams lost days to a torch version that broke quantization; this lists the
versions mmship depends on against the ranges it was built for, onnxruntime's execution
providers, the CPU's matrix instructions, hub settings, and plugins that failed to load.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import typer
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from mmship import hookimpl
from mmship.core.cli.console import console, table

OPTIONAL = {
    "openvino": "OpenVINO variants: serving (mmship[openvino])", "nncf": "OpenVINO int8 builds (mmship[openvino-build])",
    "ray": "ray target", "tritonclient": "tests / Triton clients", "matplotlib": "bench --plot",
}
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def expected_ranges() -> dict[str, str]:
    """Each required distribution's range, as mmship's own metadata declares it."""
    ranges = {}
    for line in metadata.requires("mmship") or []:
        requirement = Requirement(line)
        if requirement.marker is None:  # extras (dev, ray, ...) carry a marker
            ranges[requirement.name] = str(requirement.specifier) or "any"
    return ranges


def version_rows() -> tuple[list[tuple[str, str, str, str]], int]:
    """(package, installed, expected, verdict) rows and how many are wrong."""
    rows, bad = [], 0
    for name, spec in expected_ranges().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            rows.append((name, "missing", spec, "[red]missing[/]"))
            bad += 1
            continue
        ok = spec == "any" or Version(installed.split("+")[0]) in SpecifierSet(spec)
        bad += not ok
        rows.append((name, installed, spec, "[green]ok[/]" if ok else "[red]outside the tested range[/]"))
    for name, purpose in OPTIONAL.items():
        try:
            rows.append((name, metadata.version(name), "optional", f"ok ({purpose})"))
        except metadata.PackageNotFoundError:
            rows.append((name, "not installed", "optional", f"needed for {purpose}"))
    return rows, bad


def cpu_flags() -> list[str]:
    """The matrix-related instruction sets this CPU reports (Linux)."""
    try:
        words = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return []
    return [flag for flag in CPU_FLAGS if flag in words]


@hookimpl
def mmship_register_commands(app: typer.Typer) -> None:
    """Add the ``doctor`` command to ``app``."""

    @app.command("doctor")
    def doctor() -> None:
        """Check versions, execution providers, CPU instructions, hub settings and plugins."""
        import onnxruntime

        from mmship.core.manager import get_plugin_manager

        rows, bad = version_rows()
        console.print(table("packages", ["package", "installed", "tested range", "verdict"], rows))
        flags = cpu_flags()
        console.print(f"cpu: {os.cpu_count()} cores; matrix instructions: {', '.join(flags) or 'none found'}")
        if "amx_int8" not in flags:
            console.print("  no AMX: int8 (VNNI) is the fast precision here; fp16 is not faster than fp32 on CPUs")
        console.print(f"onnxruntime providers: {', '.join(onnxruntime.get_available_providers())}")
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in {"", "0"}
        console.print(f"hugging face hub: {'offline (HF_HUB_OFFLINE=1): local folders only' if offline else 'online (hub ids are fetched)'}"
                      f"; token {'set' if os.environ.get('HF_TOKEN') else 'not set'}")
        failed = get_plugin_manager().failures()
        for record in failed:
            console.print(f"[red]plugin {record.name} failed:[/] {record.error}")
        if bad or failed:
            console.print(f"[bold red]{bad} package(s) outside the tested ranges, {len(failed)} plugin(s) failed[/]")
            raise typer.Exit(1)
        console.print("[bold green]environment looks right[/]")
