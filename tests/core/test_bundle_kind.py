"""The manifest records whether a bundle holds graphs or weights; bundles written before
``kind`` existed still load, with the kind their graph files imply."""

from __future__ import annotations

import pytest
import yaml

from mmship.core.bundle import MANIFEST, Bundle, BundleManifest, GraphFile, SourceInfo
from mmship.core.errors import BundleError
from mmship.core.specs import GraphSpec, ServingParams, TensorSpec
from tests.plugins.targets.bundles import make_graphs_bundle, make_weights_bundle

SPEC = TensorSpec(name="x", dtype="float32", shape=[-1, 4], modality="embedding")
GRAPH = GraphFile(name="g", precision="fp32", file="graphs/g.fp32.onnx", inputs=["x"], outputs=["x"])


def manifest(**fields) -> BundleManifest:
    return BundleManifest(
        name="m", adapter="fixture", source=SourceInfo(path="/m"), inputs=[SPEC], outputs=[SPEC],
        graph_specs=[GraphSpec(name="g", inputs=["x"], outputs=["x"])], serving_params=ServingParams(), **fields,
    )


def test_kind_is_derived_when_not_given():
    assert manifest(graphs=[GRAPH]).kind == "graphs"
    assert manifest().kind == "weights"


def test_a_kind_that_contradicts_the_graphs_is_refused():
    with pytest.raises(ValueError, match="kind is 'graphs' but the manifest lists no graph files"):
        manifest(kind="graphs")
    with pytest.raises(ValueError, match="kind is 'weights' but the manifest lists 1 graph files"):
        manifest(kind="weights", graphs=[GRAPH])


@pytest.mark.parametrize(("make", "kind"), [(make_graphs_bundle, "graphs"), (make_weights_bundle, "weights")])
def test_bundles_written_before_kind_existed_still_load(make, kind, tmp_path):
    path = make(tmp_path / "b")
    raw = yaml.safe_load((path / MANIFEST).read_text())
    assert raw["kind"] == kind  # written by this version
    del raw["kind"]  # as an older mmship wrote it (mmship.yaml itself carries no checksum)
    (path / MANIFEST).write_text(yaml.safe_dump(raw, sort_keys=False))
    assert Bundle.load(path).manifest.kind == kind


def test_a_manifest_with_a_wrong_kind_is_reported_as_damaged(tmp_path):
    path = make_weights_bundle(tmp_path / "b")
    raw = yaml.safe_load((path / MANIFEST).read_text())
    raw["kind"] = "graphs"
    (path / MANIFEST).write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(BundleError, match="damaged") as info:
        Bundle.load(path)
    assert "no graph files" in info.value.message


def test_the_build_records_the_adapters_kind(tiny_clip_bundle, vlm_bundle):
    assert Bundle.load(tiny_clip_bundle).manifest.kind == "graphs"
    assert Bundle.load(vlm_bundle).manifest.kind == "weights"
