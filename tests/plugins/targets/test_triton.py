"""The triton target: config.pbtxt checked against Triton's own ModelConfig schema and the
ONNX graphs, the KServe manifest, atomic writes and --force."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import onnx
import pytest
import yaml

from mmship.core.bundle import Bundle
from mmship.core.config import DeployConfig
from mmship.core.errors import BundleError, DeployError
from mmship.core.runtime import ServingBackend
from mmship.plugins.targets.triton import model_config as triton_config
from mmship.plugins.targets.triton.kserve import STORAGE_PLACEHOLDER, dns_name
from mmship.plugins.targets.triton.target import (
    KSERVE_FILE,
    TritonSettings,
    TritonTarget,
)

CONFIG = {
    "compute": {"instance_type": "gpu.large", "min_replicas": 1, "max_replicas": 5},
    "model": {"name": "clip-multimodal", "serving_params": {"default_batch_size": 4, "max_batch_size": 16, "max_delay_ms": 2.5}},
    "autoscaling": {"metrics": [{"type": "cpu_utilization", "threshold": "60%"},
                                {"type": "memory_utilization", "threshold": "70%"}], "cooldown": 300},
}
ONNX_TYPES = {1: "TYPE_FP32", 7: "TYPE_INT64", 10: "TYPE_FP16"}
MARKER_FILE = ".mmship-repository"  # what the target writes with every repository


@pytest.fixture(scope="module")
def model_config_pb2():
    """Triton's ModelConfig protobuf from tritonclient (loaded without its grpc package)."""
    import google.protobuf  # noqa: F401  (model_config_pb2 needs it)
    import tritonclient

    path = Path(tritonclient.__file__).parent / "grpc" / "model_config_pb2.py"
    assert path.is_file(), "tritonclient ships no model_config_pb2"
    spec = importlib.util.spec_from_file_location("_mmship_test_triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_config(pb2, path: Path):
    from google.protobuf import text_format

    return text_format.Parse(path.read_text(), pb2.ModelConfig())


def deploy(bundle_path: Path, out: Path, config: dict = CONFIG, **settings):
    target = TritonTarget(TritonSettings(out=out, **settings))
    bundle = Bundle.load(bundle_path)
    config = DeployConfig.model_validate(config)
    plan = target.plan(bundle, config)
    return target.deploy(bundle, config, plan), plan, bundle


def check_repository(pb2, repo: Path, bundle: Bundle, precision: str, max_batch_size: int) -> None:
    """Every graph is a model whose config matches the ONNX file and the adapter specs."""
    m = bundle.manifest
    specs = {s.name: s for s in (*m.inputs, *m.outputs)}
    models = sorted(p.name for p in repo.iterdir() if p.is_dir())
    assert models == sorted(f"{m.name}-{g.name}" for g in m.graph_specs)
    for graph in m.graph_specs:
        folder = repo / f"{m.name}-{graph.name}"
        config = parse_config(pb2, folder / "config.pbtxt")
        assert config.name == folder.name
        assert config.platform == "onnxruntime_onnx"
        assert config.max_batch_size == max_batch_size
        onnx_file = folder / "1" / "model.onnx"
        assert onnx_file.read_bytes() == bundle.graph_path(graph.name, precision).read_bytes()
        model = onnx.load(str(onnx_file))
        for declared, actual in ((config.input, model.graph.input), (config.output, model.graph.output)):
            assert [t.name for t in declared] == [v.name for v in actual]
            for tensor, value in zip(declared, actual):
                spec_dims = specs[tensor.name].shape[1:]
                assert list(tensor.dims) == spec_dims  # batch axis left out
                onnx_dims = [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim]
                assert len(onnx_dims) == len(spec_dims) + 1
                assert all(o in (-1, s) for o, s in zip(onnx_dims[1:], spec_dims))
                assert pb2.DataType.Name(tensor.data_type) == ONNX_TYPES[value.type.tensor_type.elem_type]


def test_repository_matches_graphs_specs_and_config(graphs_bundle, tmp_path, model_config_pb2):
    repo = tmp_path / "repo"
    deployment, plan, bundle = deploy(graphs_bundle, repo)
    check_repository(model_config_pb2, repo, bundle, precision="int8", max_batch_size=16)
    config = parse_config(model_config_pb2, repo / "tiny-clip-image" / "config.pbtxt")
    assert config.dynamic_batching.max_queue_delay_microseconds == 2500
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 16]
    assert [model_config_pb2.ModelInstanceGroup.Kind.Name(g.kind) for g in config.instance_group] == ["KIND_CPU"]
    assert deployment.status == "written" and deployment.details["models"] == ["tiny-clip-image", "tiny-clip-text"]
    assert plan.settings["max_batch_size"].startswith("16")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_gpu_and_tensorrt_accelerators(graphs_bundle, tmp_path, model_config_pb2):
    for accelerator, kind in (("cuda", "KIND_GPU"), ("tensorrt", "KIND_GPU")):
        config = {**CONFIG, "model": {"name": "clip", "serving_params": {"precision": "fp32", "accelerator": accelerator}}}
        repo = tmp_path / accelerator
        deploy(graphs_bundle, repo, config=config)
        parsed = parse_config(model_config_pb2, repo / "tiny-clip-text" / "config.pbtxt")
        assert model_config_pb2.ModelInstanceGroup.Kind.Name(parsed.instance_group[0].kind) == kind
        accelerators = parsed.optimization.execution_accelerators.gpu_execution_accelerator
        if accelerator == "tensorrt":
            assert accelerators[0].name == "tensorrt" and accelerators[0].parameters["precision_mode"] == "FP32"
        else:
            assert len(accelerators) == 0
        manifest = yaml.safe_load((repo / KSERVE_FILE).read_text())
        assert manifest["spec"]["predictor"]["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_kserve_manifest(graphs_bundle, tmp_path):
    repo = tmp_path / "repo"
    _, plan, _ = deploy(graphs_bundle, repo)
    manifest = yaml.safe_load((repo / KSERVE_FILE).read_text())
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1" and manifest["kind"] == "InferenceService"
    assert manifest["metadata"]["name"] == "tiny-clip"
    assert manifest["metadata"]["annotations"]["autoscaling.knative.dev/scale-down-delay"] == "300s"
    predictor = manifest["spec"]["predictor"]
    assert predictor["minReplicas"] == 1 and predictor["maxReplicas"] == 5
    assert predictor["scaleMetric"] == "cpu" and predictor["scaleTarget"] == 60
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "triton"} and model["protocolVersion"] == "v2"
    assert model["storageUri"] == STORAGE_PLACEHOLDER
    assert any("memory_utilization is not used" in v for k, v in plan.settings.items() if k.startswith("note"))
    readme = (repo / "README.md").read_text()
    assert "tritonserver --model-repository=/models" in readme and "tiny-clip-image" in readme
    assert "kubectl apply -f kserve-inferenceservice.yaml" in readme


def test_storage_uri_namespace_and_dns_names(graphs_bundle, tmp_path):
    repo = tmp_path / "repo"
    deploy(graphs_bundle, repo, storage_uri="s3://bucket/models", namespace="ml", model_prefix="My_CLIP")
    manifest = yaml.safe_load((repo / KSERVE_FILE).read_text())
    assert manifest["spec"]["predictor"]["model"]["storageUri"] == "s3://bucket/models"
    assert manifest["metadata"] == {"name": "my-clip", "namespace": "ml",
                                    "annotations": {"autoscaling.knative.dev/scale-down-delay": "300s"}}
    assert (repo / "My_CLIP-image" / "config.pbtxt").is_file()
    assert dns_name("9 Lives!") == "m-9-lives"


def test_refuses_to_overwrite_without_force_and_replaces_its_own_with_it(graphs_bundle, tmp_path):
    repo = tmp_path / "repo"
    deploy(graphs_bundle, repo)
    assert json.loads((repo / MARKER_FILE).read_text())["written_by"] == "mmship"
    (repo / "stale.txt").write_text("left by an earlier run")
    with pytest.raises(DeployError) as info:
        deploy(graphs_bundle, repo)
    assert "--force" in info.value.hint and (repo / "stale.txt").exists()
    deploy(graphs_bundle, repo, force=True)
    assert not (repo / "stale.txt").exists() and (repo / "tiny-clip-image" / "1" / "model.onnx").is_file()


@pytest.mark.parametrize("marker", [None, "not json", '{"written_by": "someone"}', "symlink"])
def test_force_never_replaces_a_folder_mmship_did_not_write(graphs_bundle, tmp_path, marker):
    """A folder of notes given as --out with --force is refused, whatever it holds."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.md").write_text("my notes")
    (notes / "drafts").mkdir()
    if marker == "symlink":
        (tmp_path / "real-marker").write_text('{"written_by": "mmship"}')
        (notes / MARKER_FILE).symlink_to(tmp_path / "real-marker")
    elif marker is not None:
        (notes / MARKER_FILE).write_text(marker)
    with pytest.raises(DeployError) as info:
        deploy(graphs_bundle, notes, force=True)
    assert f"{notes} was not written by mmship (it has no {MARKER_FILE}), so --force will not replace it" in info.value.message
    assert "todo.md" in info.value.message and "move that folder's contents away" in info.value.hint
    assert (notes / "todo.md").read_text() == "my notes" and (notes / "drafts").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["notes", *(["real-marker"] if marker == "symlink" else [])])


def test_an_empty_folder_or_a_file_as_out(graphs_bundle, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    deploy(graphs_bundle, empty)  # nothing to lose: used without --force
    assert (empty / MARKER_FILE).is_file()
    note = tmp_path / "note.txt"
    note.write_text("keep")
    with pytest.raises(DeployError, match="exists and is not a folder"):
        deploy(graphs_bundle, note, force=True)
    assert note.read_text() == "keep"


def test_a_folder_changed_between_plan_and_write_is_not_replaced(graphs_bundle, tmp_path):
    out = tmp_path / "repo"
    target = TritonTarget(TritonSettings(out=out, force=True))
    bundle = Bundle.load(graphs_bundle)
    config = DeployConfig.model_validate(CONFIG)
    plan = target.plan(bundle, config)  # out did not exist yet
    out.mkdir()
    (out / "todo.md").write_text("written meanwhile")
    with pytest.raises(DeployError, match="was not written by mmship"):
        target.deploy(bundle, config, plan)
    assert (out / "todo.md").read_text() == "written meanwhile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]


def test_failed_write_leaves_the_old_repository(graphs_bundle, tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    deploy(graphs_bundle, repo)
    before = sorted(p.relative_to(repo) for p in repo.rglob("*"))

    def boom(model):
        raise RuntimeError("disk full")

    monkeypatch.setattr("mmship.plugins.targets.triton.target.render_config", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        deploy(graphs_bundle, repo, force=True)
    assert sorted(p.relative_to(repo) for p in repo.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["repo"]


def test_needs_out_and_a_built_precision_and_graphs(graphs_bundle, weights_bundle, tmp_path):
    bundle = Bundle.load(graphs_bundle)
    defaults = DeployConfig.defaults(bundle.manifest.name)
    with pytest.raises(DeployError, match="needs a folder"):
        TritonTarget(TritonSettings()).plan(bundle, defaults)
    with pytest.raises(BundleError) as info:
        TritonTarget(TritonSettings(out=tmp_path / "r", precision="fp16")).plan(bundle, defaults)
    assert "fp32, int8" in info.value.message
    with pytest.raises(DeployError) as info:
        TritonTarget(TritonSettings(out=tmp_path / "r")).plan(Bundle.load(weights_bundle), defaults)
    assert "--target friendli" in info.value.hint


def test_spec_and_graph_disagreement_is_caught(graphs_bundle):
    bundle = Bundle.load(graphs_bundle)
    specs = {s.name: s for s in bundle.manifest.inputs + bundle.manifest.outputs}
    specs["pixel_values"] = specs["pixel_values"].model_copy(update={"shape": [-1, 3, 224, 224]})
    with pytest.raises(DeployError, match="axis 2 is 8 .* spec says 224"):
        triton_config.describe_graph(
            model_name="m", graph="image", path=bundle.graph_path("image", "fp32"), input_names=["pixel_values"],
            output_names=["image_embeds"], specs=specs, max_batch_size=8, preferred_batch_sizes=[4], max_delay_ms=1,
            accelerator="cpu", precision="fp32", backend=ServingBackend("onnxruntime", platform="onnxruntime_onnx"),
        )


@pytest.fixture(scope="module")
def real_clip_bundle(tiny_clip_dir, tmp_path_factory):
    """A tiny CLIP built by the real pipeline (fp32 only, to stay fast)."""
    from mmship.core.manager import get_plugin_manager
    from mmship.core.pipeline import BuildRequest, build

    assert "clip" in get_plugin_manager().adapters(), "the built-in clip adapter is not registered"
    return build(BuildRequest(source=str(tiny_clip_dir), out=tmp_path_factory.mktemp("real") / "tiny-clip", precisions=["fp32"], name="tiny-clip"))


def test_real_tiny_clip_build_to_triton(real_clip_bundle, tmp_path, model_config_pb2):
    repo = tmp_path / "repo"
    config = {"model": {"name": "tiny-clip", "serving_params": {"precision": "fp32", "max_batch_size": 8, "default_batch_size": 2}}}
    _, _, bundle = deploy(real_clip_bundle, repo, config=config)
    check_repository(model_config_pb2, repo, bundle, precision="fp32", max_batch_size=8)
    text = parse_config(model_config_pb2, repo / "tiny-clip-text" / "config.pbtxt")
    assert [t.name for t in text.input] == [g for g in bundle.manifest.graph("text", "fp32").inputs]
