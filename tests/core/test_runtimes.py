"""The inference-runtime registry: runtimes are plugins with a small engine contract,
and the engine, the build's validation and the server ask the registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mmship
from mmship.core.errors import RuntimeUnavailableError
from mmship.core.manager import get_plugin_manager
from mmship.core.runtime import GraphSession, InferenceRuntime


class DoublingSession:
    """Runs a pretend graph: every output is the input times two."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def input_names(self):
        return ["x"]

    @property
    def output_names(self):
        return ["y"]

    def run(self, feeds, outputs=None):
        return {"y": np.asarray(feeds["x"]) * 2}


class DoublingRuntime(InferenceRuntime):
    name = "doubling"
    description = "fixture runtime"
    file_suffixes = (".dbl",)
    loaded: list[tuple[Path, dict]] = []

    def providers(self, accelerator="cpu"):
        if accelerator != "cpu":
            raise RuntimeUnavailableError(f"doubling runs on the CPU only, not {accelerator!r}", hint="use cpu")
        return ["cpu"]

    def load(self, path, *, threads=None, accelerator="cpu", options=None):
        self.providers(accelerator)
        DoublingRuntime.loaded.append((Path(path), dict(options or {})))
        return DoublingSession(Path(path))


class DoublingPlugin:
    @mmship.hookimpl
    def mmship_register_runtimes(self, register):
        register(DoublingRuntime)


def test_onnxruntime_is_a_registered_runtime():
    runtimes = get_plugin_manager().runtimes()
    assert "onnxruntime" in runtimes
    assert runtimes.owner("onnxruntime") == "runtime-onnxruntime"
    assert [cls.name for cls in runtimes.for_file("graphs/image.int8.onnx")] == ["onnxruntime"]


def test_a_third_party_runtime_registers_and_loads_through_the_registry(tmp_path):
    from mmship.evaluation.sessions import load_path

    manager = get_plugin_manager()
    manager.register(DoublingPlugin(), name="doubling-plugin")
    assert manager.runtimes().owner("doubling") == "doubling-plugin"
    session = load_path(tmp_path / "g.dbl", runtime="doubling", hint="fast")
    assert isinstance(session, GraphSession)
    assert session.run({"x": np.ones(3)})["y"].tolist() == [2, 2, 2]
    assert DoublingRuntime.loaded[-1] == (tmp_path / "g.dbl", {"hint": "fast"})


def test_unknown_runtime_names_the_known_ones():
    with pytest.raises(RuntimeUnavailableError) as info:
        get_plugin_manager().runtimes().get("onnxruntim")
    assert "did you mean 'onnxruntime'" in info.value.message


def test_the_engine_loads_each_graph_with_the_runtime_the_manifest_names(tiny_clip_bundle, tmp_path):
    """A bundle whose manifest says a graph is for another runtime is loaded by that
    runtime, with the manifest's load options: the engine does not assume onnxruntime."""
    import shutil

    import yaml

    from mmship.core.bundle import MANIFEST, Bundle
    from mmship.serving.engine import Engine

    copy = tmp_path / "bundle"
    shutil.copytree(tiny_clip_bundle, copy)
    manifest = yaml.safe_load((copy / MANIFEST).read_text())
    for graph in manifest["graphs"]:
        if graph["name"] == "text" and graph["precision"] == "fp32":
            graph["runtime"] = "doubling"
            graph["runtime_options"] = {"precision_hint": "bf16"}
    (copy / MANIFEST).write_text(yaml.safe_dump(manifest))
    get_plugin_manager().register(DoublingPlugin(), name="doubling-plugin")
    engine = Engine(Bundle.load(copy), precision="fp32")
    assert engine.graphs["text"].runtime == "doubling"
    assert engine.graphs["image"].runtime == "onnxruntime"
    assert DoublingRuntime.loaded[-1][1] == {"precision_hint": "bf16"}
    assert sorted(engine.runtimes) == ["doubling", "onnxruntime"]
