"""The triton target asks the runtime registry which Triton backend runs each graph: a
runtime plugin (here an OpenVINO-style one) maps to its backend without any change to the
target; a graph for a runtime with no Triton backend, or one not installed, is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmship
from mmship.core.bundle import (
    Bundle,
    BundleManifest,
    BundleWriter,
    GraphFile,
    SourceInfo,
)
from mmship.core.config import DeployConfig
from mmship.core.errors import DeployError
from mmship.core.manager import get_plugin_manager
from mmship.core.runtime import InferenceRuntime, ServingBackend
from mmship.core.specs import GraphSpec, ServingParams, TensorSpec
from mmship.plugins.targets.triton.target import TritonSettings, TritonTarget
from tests.plugins.targets.test_triton import model_config_pb2, parse_config  # noqa: F401 (fixture)


class XmlRuntime(InferenceRuntime):
    """An OpenVINO-style runtime: a graph is an .xml file plus its .bin weights."""

    name = "xml-runtime"
    file_suffixes = (".xml",)
    serving_backends = {"triton": ServingBackend("openvino")}

    @classmethod
    def graph_files(cls, path: Path) -> list[Path]:
        return [path, path.with_suffix(".bin")]

    def providers(self, accelerator: str = "cpu") -> list[str]:
        return ["CPU"]

    def load(self, path, *, threads=None, accelerator="cpu", options=None):
        raise AssertionError("the triton target must not load graphs")


class NoTritonRuntime(XmlRuntime):
    name = "no-triton"
    serving_backends = {}


class RuntimePlugin:
    @mmship.hookimpl
    def mmship_register_runtimes(self, register):
        register(XmlRuntime)
        register(NoTritonRuntime)


@pytest.fixture
def runtimes():
    get_plugin_manager().register(RuntimePlugin(), "xml-runtimes")


def xml_bundle(dest: Path, runtime: str) -> Bundle:
    """Two towers stored as graphs/<graph>.fp32.xml + .bin for ``runtime``."""
    specs = [
        TensorSpec(name="pixel_values", dtype="float32", shape=[-1, 3, 8, 8], modality="image", layout="NCHW"),
        TensorSpec(name="input_ids", dtype="int64", shape=[-1, 7], modality="text"),
        TensorSpec(name="image_embeds", dtype="float32", shape=[-1, 4], modality="embedding"),
        TensorSpec(name="text_embeds", dtype="float32", shape=[-1, 4], modality="embedding"),
    ]
    graph_specs = [GraphSpec(name="image", inputs=["pixel_values"], outputs=["image_embeds"]),
                   GraphSpec(name="text", inputs=["input_ids"], outputs=["text_embeds"])]
    with BundleWriter(dest) as writer:
        graphs = writer.dir("graphs")
        files = []
        for spec in graph_specs:
            (graphs / f"{spec.name}.fp32.xml").write_text(f"<net name='{spec.name}'/>")
            (graphs / f"{spec.name}.fp32.bin").write_bytes(spec.name.encode() * 4)
            files.append(GraphFile(name=spec.name, precision="fp32", file=f"graphs/{spec.name}.fp32.xml",
                                   inputs=spec.inputs, outputs=spec.outputs, runtime=runtime))
        manifest = BundleManifest(
            name="xml-clip", adapter="clip", source=SourceInfo(hub_id="org/xml-clip"), inputs=specs[:2], outputs=specs[2:],
            graph_specs=graph_specs, graphs=files, serving_params=ServingParams(max_batch_size=8), precisions=["fp32"],
        )
        return Bundle.load(writer.commit(manifest, {}))


def test_a_runtime_plugin_maps_its_graphs_to_its_triton_backend(runtimes, tmp_path, model_config_pb2):
    bundle = xml_bundle(tmp_path / "bundle", "xml-runtime")
    repo = tmp_path / "repo"
    target = TritonTarget(TritonSettings(out=repo))
    config = DeployConfig.defaults(bundle.manifest.name)
    plan = target.plan(bundle, config)
    assert plan.settings["platform"] == "backend openvino"
    target.deploy(bundle, config, plan)
    image = parse_config(model_config_pb2, repo / "xml-clip-image" / "config.pbtxt")
    assert (image.backend, image.platform, image.max_batch_size) == ("openvino", "", 8)
    assert [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in image.input] == [
        ("pixel_values", "TYPE_FP32", [3, 8, 8])
    ]
    text = parse_config(model_config_pb2, repo / "xml-clip-text" / "config.pbtxt")
    assert [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in text.input] == [
        ("input_ids", "TYPE_INT64", [7])
    ]
    version = repo / "xml-clip-image" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["model.bin", "model.xml"]
    assert (version / "model.bin").read_bytes() == b"image" * 4


def test_onnx_graphs_keep_the_onnxruntime_platform(graphs_bundle, tmp_path, model_config_pb2):
    bundle = Bundle.load(graphs_bundle)
    target = TritonTarget(TritonSettings(out=tmp_path / "repo"))
    config = DeployConfig.defaults(bundle.manifest.name)
    target.deploy(bundle, config, target.plan(bundle, config))
    parsed = parse_config(model_config_pb2, tmp_path / "repo" / "tiny-clip-image" / "config.pbtxt")
    assert (parsed.platform, parsed.backend) == ("onnxruntime_onnx", "")


def test_a_runtime_without_a_triton_backend_is_refused(runtimes, tmp_path):
    bundle = xml_bundle(tmp_path / "bundle", "no-triton")
    with pytest.raises(DeployError) as info:
        TritonTarget(TritonSettings(out=tmp_path / "repo")).plan(bundle, DeployConfig.defaults("x"))
    assert "inference runtime 'no-triton', which declares no Triton backend" in info.value.message
    assert "runtimes that do: onnxruntime, openvino, xml-runtime" in info.value.message
    assert "--target local" in info.value.hint
    assert not (tmp_path / "repo").exists()


def test_a_runtime_that_is_not_installed_is_named(tmp_path):
    bundle = xml_bundle(tmp_path / "bundle", "xml-runtime")  # its plugin is not registered here
    with pytest.raises(DeployError) as info:
        TritonTarget(TritonSettings(out=tmp_path / "repo")).plan(bundle, DeployConfig.defaults("x"))
    assert "runtime 'xml-runtime', which is not installed here (runtimes: onnxruntime, openvino)" in info.value.message
