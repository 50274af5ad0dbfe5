"""mmship.scoring: the one copy of the score math, and how a bundle's scoring is applied."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from mmship.core.errors import BuildError, DimensionMismatchError
from mmship.core.specs import ScoringSpec, TensorSpec
from mmship.evaluation.feeds import example_feeds
from mmship.payload.datatypes import v2_datatype
from mmship.scoring import (
    Scorer,
    cosine_matrix,
    legacy_scoring,
    row_cosines,
    sigmoid,
    softmax,
    unit_rows,
)

IMAGE = np.array([[3.0, 0.0], [0.0, 2.0]], np.float32)
TEXT = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, -4.0]], np.float32)


def test_vector_helpers():
    np.testing.assert_allclose(cosine_matrix(IMAGE, TEXT), [[1, 2**-0.5, 0], [0, 2**-0.5, -1]], atol=1e-12)
    np.testing.assert_allclose(row_cosines(IMAGE, IMAGE[::-1]), [0.0, 0.0])
    assert np.array_equal(unit_rows(np.zeros((1, 3))), np.zeros((1, 3)))  # zero stays zero, no NaN
    with pytest.raises(DimensionMismatchError, match="2-dim but text embeddings are 3-dim"):
        cosine_matrix(IMAGE, np.ones((1, 3)))


def test_softmax_and_sigmoid_are_stable_for_large_logits():
    np.testing.assert_allclose(softmax([[1000.0, 1000.0, -1000.0]]), [[0.5, 0.5, 0.0]])
    np.testing.assert_allclose(sigmoid([-1000.0, 0.0, 1000.0]), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(sigmoid([2.0, -3.0]), 1 / (1 + np.exp([-2.0, 3.0])))


def test_softmax_scorer_is_clips():
    scorer = Scorer(ScoringSpec(kind="softmax", logit_scale=10.0))
    logits = scorer.logits(IMAGE, TEXT)
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, 10 * cosine_matrix(IMAGE, TEXT), rtol=1e-6)
    probs = scorer.probabilities(logits)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert scorer.top1({"image_embeds": IMAGE, "text_embeds": TEXT}).tolist() == [0, 1]


def test_sigmoid_scorer_is_siglips():
    scorer = Scorer(ScoringSpec(kind="sigmoid", logit_scale=10.0, logit_bias=-5.0))
    logits = scorer.logits(IMAGE, TEXT)
    np.testing.assert_allclose(logits, 10 * cosine_matrix(IMAGE, TEXT) - 5, rtol=1e-6)
    probs = scorer.probabilities(logits)
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-logits.astype(np.float64))), rtol=1e-12)
    assert not np.allclose(probs.sum(axis=1), 1.0)


def test_a_model_without_a_score():
    scorer = Scorer(None)
    outputs = {"image_embeds": IMAGE, "text_embeds": TEXT}
    assert scorer.kind == "none" and not scorer.applies(outputs) and scorer.output_metadata() is None
    assert scorer.add_logits(dict(outputs)).keys() == outputs.keys() and scorer.top1(outputs) is None
    with pytest.raises(ValueError, match="no image-text score"):
        scorer.probabilities([[0.0]])


def test_scorer_uses_the_declared_outputs():
    spec = ScoringSpec(kind="softmax", image_embeds="img", text_embeds="txt", output="scores")
    outputs = Scorer(spec).add_logits({"img": IMAGE, "txt": TEXT})
    assert outputs["scores"].shape == (2, 3) and "logits_per_image" not in outputs
    assert not Scorer(spec).applies({"image_embeds": IMAGE, "text_embeds": TEXT})


def test_legacy_scoring_is_what_bundles_from_before_were_served_with():
    assert legacy_scoring({}, ["image_embeds", "text_embeds"]) == ScoringSpec(kind="softmax", logit_scale=100.0)
    assert legacy_scoring({"logit_scale": 42.5}, ["image_embeds", "text_embeds", "multimodal_embeds"]).logit_scale == 42.5
    assert legacy_scoring({"logit_scale": 42.5}, ["fused_embeds"]).kind == "none"


def test_scoring_spec_refuses_nonsense():
    with pytest.raises(ValidationError):
        ScoringSpec(kind="cosine")
    with pytest.raises(ValidationError):
        ScoringSpec(kind="softmax", logit_scale=0)
    with pytest.raises(ValidationError):
        ScoringSpec(kind="softmax", temperature=1.0)


def test_the_build_refuses_scoring_of_outputs_the_adapter_lacks():
    from mmship.adapters.clip import CLIPAdapter
    from mmship.core.pipeline import _checked_scoring

    adapter = CLIPAdapter.from_example()
    assert _checked_scoring(adapter, adapter.scoring()).kind == "softmax"
    with pytest.raises(BuildError, match="no output 'pooled'"):
        _checked_scoring(adapter, ScoringSpec(kind="sigmoid", text_embeds="pooled"))
    assert _checked_scoring(adapter, ScoringSpec(kind="none", text_embeds="pooled")).kind == "none"


def test_v2_datatype_is_derived_from_the_one_table():
    assert [v2_datatype(d) for d in ("float32", "float16", "int64", "int32", "uint8", "bytes")] == [
        "FP32", "FP16", "INT64", "INT32", "UINT8", "BYTES"]
    assert v2_datatype(np.dtype("<f8")) == "FP64" and v2_datatype("bool") == "BOOL"


def test_example_feeds_are_unpadded_texts():
    specs = [
        TensorSpec(name="input_ids", dtype="int64", shape=[-1, -1], modality="text"),
        TensorSpec(name="attention_mask", dtype="int64", shape=[-1, -1], modality="text"),
        TensorSpec(name="token_type_ids", dtype="int64", shape=[-1, -1], modality="text"),
        TensorSpec(name="pixel_values", dtype="float32", shape=[-1, 3, 4, 4], modality="image"),
    ]
    feeds = example_feeds(specs, batch=2, sequence=5)
    assert (feeds["attention_mask"] == 1).all() and (feeds["token_type_ids"] == 0).all()
    assert feeds["input_ids"].shape == (2, 5) and 1 <= feeds["input_ids"].min() and feeds["input_ids"].max() < 16
    assert feeds["pixel_values"].dtype == np.float32
