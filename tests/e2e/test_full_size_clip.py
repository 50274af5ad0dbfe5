"""The real ViT-B/32 cost: a full-size random-weight CLIP with the real 49408-token
tokenizer builds to fp32, fp16 and int8."""

from __future__ import annotations

import pytest

from mmship.core.bundle import Bundle
from mmship.core.pipeline import BuildRequest, build
from mmship.testing.models import make_random_clip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def full_bundle(tmp_path_factory):
    work = tmp_path_factory.mktemp("full-clip")
    model = make_random_clip(work / "model", real_tokenizer=True)
    return Bundle.load(build(BuildRequest(source=str(model), out=work / "bundle", precisions=["fp32", "fp16", "int8"],
                                             runtimes=["onnxruntime"], measure=False)))


def test_parity_with_eager_pytorch(full_bundle):
    for graph in ("image", "text"):
        parity = full_bundle.report["parity"][graph]
        assert parity["min_cosine"] >= 0.99999, parity
        assert set(parity) >= {"batch1", "batch3"}


def test_every_precision_has_accuracy_figures_within_the_limit(full_bundle):
    accuracy = full_bundle.report["accuracy"]
    assert set(accuracy) == {"fp32", "fp16", "int8"}
    for precision in ("fp16", "int8"):
        figures = accuracy[precision]
        assert 0.99 < figures["min_cosine"] <= 1.0
        assert figures["accuracy_loss"] <= 0.005
        assert 0.0 <= figures["zero_shot_top1_agreement"] <= 1.0
    assert accuracy["fp16"]["mean_cosine"] > accuracy["int8"]["mean_cosine"]


def test_every_graph_runs_at_batch_1_and_32(full_bundle):
    batches = full_bundle.report["batches"]
    assert len(batches) == 6
    for name, shapes in batches.items():
        dim = 512
        assert list(shapes["batch1"].values()) == [[1, dim]], name
        assert list(shapes["batch32"].values()) == [[32, dim]], name


def test_int8_graphs_are_a_quarter_of_fp32(full_bundle):
    sizes = {(g.name, g.precision): full_bundle.path(g.file).stat().st_size for g in full_bundle.manifest.graphs}
    for graph in ("image", "text"):
        assert sizes[(graph, "int8")] < 0.3 * sizes[(graph, "fp32")]
        assert sizes[(graph, "fp16")] < 0.55 * sizes[(graph, "fp32")]
