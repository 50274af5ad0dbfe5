"""The on-disk bundle: the unit that is served and deployed.

```
bundle/
  mmship.yaml     manifest: adapter, source, specs, preprocessing, serving params,
                  graphs per precision, sha256 of every file
  graphs/         <graph>.<precision>.onnx (onnxruntime), <graph>.<runtime>-<precision>.xml/.bin
                  (e.g. OpenVINO IR)
  processor/      tokenizer and image-processor files as saved by Hugging Face
  hf/             config.json (and, for weight-served targets, the safetensors)
  report.json     parity and accuracy figures
```

Bundles are written into a temporary sibling folder and renamed into place, so an
interrupted build leaves nothing half-written. Loading checks that every path stays inside
the folder, that the folder holds no symlink and no file the manifest does not list, and
every checksum, refusing a damaged bundle and naming the file (see
:mod:`mmship.core.bundle_files` for what this proves and what it does not). Files that are
used (graphs) are then read once through :meth:`Bundle.read`, hashed, and handed over as
those bytes.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mmship import __version__
from mmship.core.bundle_files import check_path, path_problem, read_verified, sha256_files, verify_files, verify_tree
from mmship.core.config.yaml_loader import safe_load
from mmship.core.errors import BundleError
from mmship.core.specs import (
    GraphSpec,
    PreprocessSpec,
    ScoringSpec,
    ServingParams,
    TensorSpec,
)

MANIFEST = "mmship.yaml"
REPORT = "report.json"
#: 2: the manifest records ``kind`` and ``scoring``; 3: graph variants per runtime with
#: their accuracy and timing, and the chosen variant per tower. Format-1 and 2 bundles
#: still load (their graphs are onnxruntime graphs, served at ``serving_params.precision``).
FORMAT_VERSION = 3

#: What a bundle carries: ``graphs`` (graph files that mmship's runtimes, Ray and Triton
#: serve) or ``weights`` (the Hugging Face checkpoint, for platforms that serve it).
BundleKind = Literal["graphs", "weights"]


class SourceInfo(BaseModel):
    """Where the model came from."""

    model_config = ConfigDict(extra="forbid")
    path: str | None = None
    hub_id: str | None = None
    revision: str | None = None


class GraphFile(BaseModel):
    """One graph file of the bundle at one precision."""

    model_config = ConfigDict(extra="forbid")
    name: str
    precision: str
    file: str
    inputs: list[str]
    outputs: list[str]
    opset: int | None = None
    runtime: str = Field("onnxruntime", description="the inference runtime that loads this file")
    runtime_options: dict[str, Any] = Field(default_factory=dict, description="load options for the runtime")
    accuracy: dict[str, float] = Field(
        default_factory=dict, description="mean_cosine / min_cosine of this graph's outputs to fp32 on the probe set"
    )
    timing_ms: dict[str, float] = Field(
        default_factory=dict,
        description="median ms per call measured at build time: batch1, batch (the serving batch), batch_size",
    )

    @field_validator("file")
    @classmethod
    def _inside_the_bundle(cls, value: str) -> str:
        problem = path_problem(value)
        if problem is not None:
            raise ValueError(f"graph file {value!r} {problem}")
        return value


class ChosenVariant(BaseModel):
    """The variant of one tower served by default: the fastest that met the accuracy
    budget, measured on the build machine."""

    model_config = ConfigDict(extra="forbid")
    runtime: str
    precision: str
    batch1_ms: float | None = None
    batch_ms: float | None = Field(None, description="median ms per call at the serving batch")
    batch_size: int | None = None
    mean_cosine: float | None = Field(None, description="to fp32 on the probe set")
    reason: str = ""


class BundleManifest(BaseModel):
    """``mmship.yaml``: everything a runtime or target needs to know about a bundle."""

    model_config = ConfigDict(extra="forbid")
    format_version: int = FORMAT_VERSION
    mmship_version: str = __version__
    created_at: str = Field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    name: str
    adapter: str
    kind: BundleKind = Field(description="graphs or weights (derived from `graphs` when absent: older bundles)")
    source: SourceInfo
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    graph_specs: list[GraphSpec]
    graphs: list[GraphFile] = Field(default_factory=list)
    preprocess: PreprocessSpec | None = None
    serving_params: ServingParams
    precisions: list[str] = Field(default_factory=list)
    adapter_data: dict[str, Any] = Field(default_factory=dict)
    scoring: ScoringSpec | None = Field(
        None, description="what the model's image-text score means (absent in bundles built before it was recorded)"
    )
    chosen: dict[str, ChosenVariant] = Field(
        default_factory=dict, description="tower -> the variant served by default (empty before format 3)"
    )
    files: dict[str, str] = Field(default_factory=dict, description="relative path -> sha256")

    @model_validator(mode="before")
    @classmethod
    def _derive_kind(cls, data: Any) -> Any:
        """Bundles written before ``kind`` was recorded: the graph files say it."""
        if isinstance(data, dict) and data.get("kind") is None:
            data = {**data, "kind": "graphs" if data.get("graphs") else "weights"}
        return data

    @field_validator("files")
    @classmethod
    def _files_inside_the_bundle(cls, value: dict[str, str]) -> dict[str, str]:
        for relative in value:
            problem = path_problem(relative)
            if problem is not None:
                raise ValueError(f"file {relative!r} {problem}")
        return value

    @model_validator(mode="after")
    def _kind_matches_graphs(self) -> BundleManifest:
        if self.kind == "graphs" and not self.graphs:
            raise ValueError("kind is 'graphs' but the manifest lists no graph files")
        if self.kind == "weights" and self.graphs:
            raise ValueError(f"kind is 'weights' but the manifest lists {len(self.graphs)} graph files")
        return self

    def graph(self, name: str, precision: str, runtime: str | None = None) -> GraphFile:
        """The graph file for one tower at one precision (on ``runtime``; by default the
        onnxruntime graph when there is one, else the first built)."""
        found = [g for g in self.graphs if g.name == name and g.precision == precision]
        if runtime is not None:
            found = [g for g in found if g.runtime == runtime]
        if found:
            return next((g for g in found if g.runtime == "onnxruntime"), found[0])
        have = ", ".join(sorted({g.precision for g in self.graphs if g.name == name})) or "none"
        raise BundleError(
            f"the bundle has no {precision} graph for {name!r} (precisions built: {have})",
            hint=f"rebuild with `mmship build ... --precision {precision}` or serve one of: {have}",
        )


class Bundle:
    """A loaded bundle: its folder, manifest and report."""

    def __init__(self, root: Path, manifest: BundleManifest, report: dict[str, Any]) -> None:
        self.root = Path(root)
        self.manifest = manifest
        self.report = report

    @classmethod
    def load(cls, root: str | Path, verify: bool = True) -> Bundle:
        """Read a bundle; with ``verify`` (the default) check its tree and every file's sha256."""
        root = Path(root)
        manifest_path = root / MANIFEST
        if manifest_path.is_symlink():
            raise BundleError(
                f"{manifest_path} is a symlink; a bundle holds only its own files",
                hint="replace the link with the file it points to (e.g. `cp -L`), or rebuild the bundle",
            )
        if not manifest_path.is_file():
            raise BundleError(
                f"{root} is not an mmship bundle (no {MANIFEST})",
                hint="build one with `mmship build MODEL --out BUNDLE`",
            )
        try:
            raw = safe_load(manifest_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise BundleError(f"{manifest_path} is damaged: {exc}", hint="rebuild the bundle with `mmship build`") from exc
        version = raw.get("format_version") if isinstance(raw, dict) else None
        if isinstance(version, int) and version > FORMAT_VERSION:  # before validating: newer keys are expected
            raise BundleError(
                f"{root} uses bundle format {version}; this mmship reads up to {FORMAT_VERSION}",
                hint="upgrade mmship",
            )
        try:
            manifest = BundleManifest.model_validate(raw)
        except ValidationError as exc:
            raise BundleError(
                f"{manifest_path} is damaged: {exc}", hint="rebuild the bundle with `mmship build`"
            ) from exc
        for graph in manifest.graphs:
            if graph.file not in manifest.files:
                raise BundleError(
                    f"bundle {root}: graph {graph.name!r} ({graph.precision}) is {graph.file}, which is not among "
                    "the files the manifest checksums",
                    hint="rebuild the bundle with `mmship build`",
                )
        if verify:
            verify_tree(root, manifest.files, unlisted_ok={MANIFEST})
            verify_files(root, manifest.files)
        report_path = root / REPORT
        report = json.loads(report_path.read_text()) if report_path.is_file() else {}
        return cls(root, manifest, report)

    def path(self, relative: str) -> Path:
        """Absolute path of a file inside the bundle."""
        return self.root / relative

    def graph_path(self, name: str, precision: str, runtime: str | None = None) -> Path:
        """Absolute path of the graph for ``name`` at ``precision`` (see :meth:`BundleManifest.graph`)."""
        return self.root / self.manifest.graph(name, precision, runtime).file

    def relative(self, path: str | Path) -> str:
        """The manifest key of ``path``: a ``str`` is taken as one already (``graphs/x.onnx``);
        a :class:`~pathlib.Path` must lie under :attr:`root` (as :meth:`path` builds them)."""
        if isinstance(path, Path):
            for base in (self.root, self.root.absolute()):
                if path.parts[: len(base.parts)] == base.parts:
                    path = path.relative_to(base).as_posix()
                    break
            else:
                raise BundleError(
                    f"{path} is outside bundle {self.root}", hint="a bundle's graphs use only the bundle's own files"
                )
        check_path(self.root, path, "file")
        return path

    def read(self, path: str | Path) -> bytes:
        """The bytes of one of the bundle's listed files (a manifest key, or a path under
        :attr:`root`), read once and checked against its sha256: hand these to a runtime or
        copy them, so what is used is what was verified. Refuses a path outside the bundle
        and a file the manifest does not list."""
        relative = self.relative(path)
        return read_verified(self.root, relative, self.manifest.files.get(relative))


class BundleWriter:
    """Write a bundle into a temporary sibling folder and rename it into place.

    Use as a context manager; on an exception the temporary folder is removed and an
    existing bundle at ``dest`` is left untouched.
    """

    def __init__(self, dest: str | Path, overwrite: bool = False) -> None:
        self.dest = Path(dest).resolve()
        self.overwrite = overwrite
        if self.dest.exists() and not overwrite:
            raise BundleError(
                f"{self.dest} already exists", hint="pass --force to replace it, or choose another --out"
            )
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.tmp-", dir=self.dest.parent))

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def dir(self, relative: str) -> Path:
        """A folder inside the bundle being written (created)."""
        path = self.tmp / relative
        path.mkdir(parents=True, exist_ok=True)
        return path

    def commit(self, manifest: BundleManifest, report: dict[str, Any]) -> Path:
        """Write report and manifest (with checksums of every file) and move into place."""
        (self.tmp / REPORT).write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
        written = [p for p in sorted(self.tmp.rglob("*")) if p.is_file() and p.name != MANIFEST]
        manifest.files = {p.relative_to(self.tmp).as_posix(): digest for p, digest in zip(written, sha256_files(written))}
        text = yaml.safe_dump(manifest.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
        (self.tmp / MANIFEST).write_text(text, encoding="utf-8")
        backup = None
        if self.dest.exists():
            backup = self.dest.with_name(f".{self.dest.name}.old-{os.getpid()}")
            os.replace(self.dest, backup)
        os.replace(self.tmp, self.dest)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
        return self.dest
