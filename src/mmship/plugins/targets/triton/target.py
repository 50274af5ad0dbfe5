"""The ``triton`` deploy target: a Triton model repository and a KServe manifest.

``mmship deploy BUNDLE --target triton --out REPO`` writes::

    REPO/
      <bundle>-<graph>/config.pbtxt     one model per graph, at the serving precision
      <bundle>-<graph>/1/model.onnx     copied from the bundle (model.<suffix> for other formats)
      kserve-inferenceservice.yaml      serving.kserve.io/v1beta1, Triton, protocol v2
      mmship-preprocess.json            what clients must do to images and texts
      README.md                         how to run tritonserver and apply the manifest
      .mmship-repository                marker: mmship wrote this folder (JSON)

Each graph's Triton backend is the one its inference runtime declares
(``serving_backends["triton"]`` on the runtime class: onnxruntime -> platform
``onnxruntime_onnx``); a graph whose runtime declares none is refused. Triton loads every
sub-folder of the repository as a model and ignores plain files, so the extras sit at the
top. The repository is written into a temporary sibling folder and
renamed into place, marker included; an existing folder is replaced only with ``--force``
and only when it holds that marker (a folder mmship did not write is never deleted; an
empty one is simply used).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from mmship import __version__, hookimpl
from mmship.core.errors import DeployError
from mmship.core.manager import get_plugin_manager
from mmship.core.runtime import ServingBackend
from mmship.core.specs import Precision
from mmship.core.target import Deployment, DeployPlan, Target, TargetOption
from mmship.core.variants import select_graphs
from mmship.plugins.targets.triton.kserve import KServeManifest, build_manifest
from mmship.plugins.targets.triton.model_config import (
    GPU_ACCELERATORS,
    TritonModel,
    describe_graph,
    render_config,
)

if TYPE_CHECKING:
    from mmship.core.bundle import Bundle, GraphFile
    from mmship.core.config import DeployConfig

KSERVE_FILE = "kserve-inferenceservice.yaml"
PREPROCESS_FILE = "mmship-preprocess.json"
#: Written into every repository with it: ``--force`` replaces only folders holding it.
MARKER_FILE = ".mmship-repository"


class TritonSettings(BaseModel):
    """``target:`` keys for ``name: triton``."""

    model_config = ConfigDict(extra="forbid")
    out: Path | None = Field(None, description="model repository folder to write (--out)")
    precision: Precision | None = Field(
        None, description="graph precision (default: the config's serving_params.precision, else the build's choice per tower)"
    )
    runtime: str | None = Field(
        None, description="inference runtime of the graphs (default: the build's choice per tower; onnxruntime on GPUs)"
    )
    model_prefix: str | None = Field(None, description="model name prefix (default: the bundle's name)")
    instance_count: int = Field(1, ge=1, description="instance_group count per model")
    preferred_batch_sizes: list[int] | None = Field(None, description="default: default_batch_size and max_batch_size")
    storage_uri: str | None = Field(None, description="KServe storageUri (default: a placeholder to edit)")
    namespace: str | None = Field(None, description="KServe metadata.namespace")
    runtime_version: str | None = Field(None, description="KServe runtimeVersion (Triton image tag)")
    triton_image: str = Field("nvcr.io/nvidia/tritonserver:25.01-py3", description="image named in the README")
    force: bool = Field(False, description="replace a repository mmship wrote at --out (never another folder)")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "model"


class TritonTarget(Target):
    """Write a Triton model repository (each graph on its runtime's backend) and a KServe manifest."""

    name = "triton"
    description = "a Triton model repository (config.pbtxt + graph per graph) and a KServe InferenceService"
    settings_model = TritonSettings
    cli_options = (
        TargetOption("--out", "out", "the model repository folder to write", short="-o"),
        TargetOption("--force", "force", "replace a repository mmship wrote at --out", is_flag=True),
    )

    settings: TritonSettings

    def _out(self) -> Path:
        if self.settings.out is None:
            raise DeployError(
                "the triton target writes a model repository and needs a folder for it",
                hint="pass --out REPO (or set target.out in deploy_config.yaml)",
            )
        out = Path(self.settings.out).expanduser().resolve()
        check_replaceable(out, self.settings.force)
        return out

    def models(self, bundle: Bundle, config: DeployConfig) -> list[TritonModel]:
        """One :class:`TritonModel` per graph at the serving precision."""
        self.require_graphs(bundle)
        m = bundle.manifest
        serving = config.serving_params(bundle)
        precision = self.settings.precision or (
            serving.precision if "precision" in config.model.serving_params.model_fields_set else None
        )
        # a named precision without a runtime keeps its meaning from before variants (the
        # ONNX graph); GPUs run onnxruntime graphs; else the build's choice per tower
        named = precision is not None or serving.accelerator in GPU_ACCELERATORS
        runtime = self.settings.runtime or ("onnxruntime" if named else None)
        selection = select_graphs(m, get_plugin_manager().runtimes(), precision, runtime, check_available=False)
        specs = {s.name: s for s in (*m.inputs, *m.outputs)}
        preferred = self.settings.preferred_batch_sizes or [serving.default_batch_size, serving.max_batch_size]
        prefix = _safe(self.settings.model_prefix or m.name)
        result = []
        for graph in m.graph_specs:
            file = selection.files[graph.name]
            backend, files, parameters = self._backend(file, bundle)
            result.append(describe_graph(
                model_name=f"{prefix}-{_safe(graph.name)}", graph=graph.name, path=files[0], companions=files[1:],
                backend=backend,
                input_names=file.inputs, output_names=file.outputs, specs=specs,
                max_batch_size=serving.max_batch_size, preferred_batch_sizes=preferred,
                max_delay_ms=serving.max_delay_ms, accelerator=serving.accelerator, precision=file.precision,
                instance_count=self.settings.instance_count, parameters=parameters,
            ))
        return result

    def _backend(self, file: GraphFile, bundle: Bundle) -> tuple[ServingBackend, list[Path], dict[str, str]]:
        """The Triton backend the graph's runtime declares, the graph's files and the
        backend parameters for its load options."""
        runtimes = get_plugin_manager().runtimes()
        path = bundle.path(file.file)
        if file.runtime not in runtimes:
            raise DeployError(
                f"graph {file.name!r} ({file.file}) runs on inference runtime {file.runtime!r}, which is not "
                f"installed here (runtimes: {', '.join(runtimes.names()) or 'none'})",
                hint="install the plugin that provides that runtime (see `mmship plugins`)",
            )
        runtime = runtimes.get(file.runtime)
        backend = runtime.serving_backends.get(self.name)
        if backend is None:
            able = [r.name for r in runtimes if self.name in r.serving_backends]
            raise DeployError(
                f"graph {file.name!r} ({file.file}) runs on inference runtime {file.runtime!r}, which declares "
                f"no Triton backend (runtimes that do: {', '.join(able) or 'none'})",
                hint="serve this bundle with --target local or --target ray, or rebuild it for a runtime Triton runs",
            )
        return backend, runtime.graph_files(path), runtime.serving_parameters(self.name, file.runtime_options)

    def plan(self, bundle: Bundle, config: DeployConfig) -> DeployPlan:
        out = self._out()
        models = self.models(bundle, config)
        serving = config.serving_params(bundle)
        manifest = self._kserve(bundle, config, serving.accelerator)
        first = models[0]
        backends = dict.fromkeys(mm.backend.platform or f"backend {mm.backend.backend}" for mm in models)
        settings: dict[str, Any] = {
            "repository": str(out),
            "models": ", ".join(f"{mm.name} ({mm.graph})" for mm in models),
            "platform": ", ".join(backends),
            "precision": ", ".join(f"{mm.graph} {mm.precision}" for mm in models),
            "max_batch_size": f"{first.max_batch_size}   (from serving_params.max_batch_size)",
            "dynamic_batching.max_queue_delay_microseconds": f"{first.max_queue_delay_us}   (serving_params.max_delay_ms x 1000)",
            "dynamic_batching.preferred_batch_size": str(first.preferred_batch_sizes),
            "instance_group": f"{first.instance_count} x {first.instance_kind}   (from serving_params.accelerator={serving.accelerator})",
        }
        if first.tensorrt_precision:
            settings["optimization"] = f"TensorRT execution accelerator, precision_mode {first.tensorrt_precision}"
        for mm in models:
            for t in mm.inputs:
                settings[f"{mm.name} input {t.name}"] = f"{t.data_type} dims {t.dims}"
            for t in mm.outputs:
                settings[f"{mm.name} output {t.name}"] = f"{t.data_type} dims {t.dims}"
        predictor = manifest.body["spec"]["predictor"]
        settings["kserve minReplicas/maxReplicas"] = f"{predictor['minReplicas']}/{predictor['maxReplicas']}   (from compute)"
        if "scaleMetric" in predictor:
            settings["kserve scaleMetric/scaleTarget"] = f"{predictor['scaleMetric']}/{predictor.get('scaleTarget')}   (from autoscaling.metrics)"
        settings["kserve storageUri"] = predictor["model"]["storageUri"]
        for i, note in enumerate(manifest.notes):
            settings[f"note {i + 1}"] = note
        return DeployPlan(
            target=self.name,
            summary=f"write a Triton model repository with {len(models)} model(s) and a KServe manifest to {out}",
            settings=settings,
            steps=[
                f"copy {len(models)} graph(s) and write config.pbtxt for each",
                f"write {KSERVE_FILE}, {PREPROCESS_FILE} and README.md",
                f"rename the finished repository into place at {out}",
            ],
        )

    def _kserve(self, bundle: Bundle, config: DeployConfig, accelerator: str) -> KServeManifest:
        s = self.settings
        return build_manifest(
            name=s.model_prefix or bundle.manifest.name, config=config, storage_uri=s.storage_uri,
            gpu=accelerator in GPU_ACCELERATORS, namespace=s.namespace, runtime_version=s.runtime_version,
        )

    def deploy(self, bundle: Bundle, config: DeployConfig, plan: DeployPlan) -> Deployment:
        out = self._out()
        models = self.models(bundle, config)
        serving = config.serving_params(bundle)
        manifest = self._kserve(bundle, config, serving.accelerator)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            for model in models:
                version = tmp / model.name / "1"
                version.mkdir(parents=True)
                for source, name in model.files:  # the graph, then weights stored beside it
                    # the verified bytes of a file the bundle lists: nothing from outside it
                    (version / name).parent.mkdir(parents=True, exist_ok=True)
                    (version / name).write_bytes(bundle.read(source))
                (tmp / model.name / "config.pbtxt").write_text(render_config(model), encoding="utf-8")
            (tmp / KSERVE_FILE).write_text(manifest.to_yaml(), encoding="utf-8")
            preprocess = bundle.manifest.preprocess
            (tmp / PREPROCESS_FILE).write_text(
                json.dumps(preprocess.model_dump(mode="json") if preprocess else {}, indent=2) + "\n", encoding="utf-8"
            )
            (tmp / "README.md").write_text(readme(bundle, models, self.settings, manifest), encoding="utf-8")
            (tmp / MARKER_FILE).write_text(
                json.dumps({"written_by": "mmship", "version": __version__, "bundle": bundle.manifest.name}) + "\n",
                encoding="utf-8",
            )
            check_replaceable(out, self.settings.force)  # again: the folder may have changed since the plan
            _replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return Deployment(
            self.name, manifest.body["metadata"]["name"], out.as_uri(), "written",
            {"repository": str(out), "models": [m.name for m in models], "kserve": str(out / KSERVE_FILE)},
        )


def written_by_mmship(folder: Path) -> bool:
    """True when ``folder`` holds the marker mmship writes with every repository."""
    marker = folder / MARKER_FILE
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("written_by") == "mmship"
    except (OSError, ValueError, AttributeError):
        return False


def check_replaceable(out: Path, force: bool) -> None:
    """Refuse to write over ``out`` unless it is absent, an empty folder, or (with
    ``force``) a repository mmship wrote."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise DeployError(f"{out} exists and is not a folder", hint="choose another --out")
    contents = sorted(p.name for p in out.iterdir())
    if not contents:
        return
    if not force:
        raise DeployError(f"{out} already exists", hint="pass --force to replace it, or choose another --out")
    if not written_by_mmship(out):
        shown = ", ".join(contents[:5]) + (f" and {len(contents) - 5} more" if len(contents) > 5 else "")
        raise DeployError(
            f"{out} was not written by mmship (it has no {MARKER_FILE}), so --force will not replace it; it holds: {shown}",
            hint="choose another --out (a new or empty folder), or move that folder's contents away yourself",
        )


def _replace(tmp: Path, out: Path) -> None:
    backup = None
    if out.exists():
        backup = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, backup)
    os.replace(tmp, out)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def readme(bundle: Bundle, models: list[TritonModel], settings: TritonSettings, manifest: KServeManifest) -> str:
    """The repository's README: what is in it and the commands to serve it."""
    m = bundle.manifest
    first = models[0]
    rows = "\n".join(
        f"| `{mm.name}` | {mm.graph} | " + ", ".join(f"`{t.name}` {t.data_type} {t.dims}" for t in mm.inputs)
        + " | " + ", ".join(f"`{t.name}` {t.data_type} {t.dims}" for t in mm.outputs) + " |"
        for mm in models
    )
    gpu = " --gpus all" if first.instance_kind == "KIND_GPU" else ""
    note_text = "".join(f"- {n}\n" for n in manifest.notes) or "- none\n"
    service = manifest.body["metadata"]["name"]
    return f"""# Triton model repository for `{m.name}`

Written by mmship from bundle `{bundle.root}` (adapter `{m.adapter}`). Dims leave out the
batch axis (Triton adds it; `max_batch_size: {first.max_batch_size}`); `-1` is dynamic.

| model | graph | inputs | outputs |
|---|---|---|---|
{rows}

## Run Triton

```bash
docker run --rm{gpu} -p 8000:8000 -p 8001:8001 -p 8002:8002 \\
  -v "$PWD/{Path(str(settings.out)).name}":/models {settings.triton_image} \\
  tritonserver --model-repository=/models
curl -s localhost:8000/v2/health/ready && echo ready
curl -s localhost:8000/v2/models/{first.name}
```

Triton takes tensors, not images or texts: preprocess on the client exactly as
`{PREPROCESS_FILE}` says (the bundle's `processor/` folder holds the tokenizer), e.g. with
`tritonclient[http]`, or serve the bundle with `mmship serve`, which does it for you.

## Deploy on KServe

```bash
aws s3 cp --recursive {Path(str(settings.out)).name} s3://YOUR-BUCKET/path/to/model-repository
# edit storageUri in {KSERVE_FILE} (or redeploy with --set storage_uri=s3://...)
kubectl apply -f {KSERVE_FILE}
kubectl get inferenceservice {service}
```

Notes:
{note_text}"""


@hookimpl
def mmship_register_targets(register: Any) -> None:
    """Register the Triton target."""
    register(TritonTarget)
