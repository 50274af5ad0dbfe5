"""load_model + export_modules: the wrappers give what the eager model's own API gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch  # noqa: E402

from mmship.adapters.clip import CLIPAdapter  # noqa: E402
from mmship.adapters.flava import FLAVAAdapter  # noqa: E402
from mmship.adapters.fusion import FusionAdapter  # noqa: E402
from mmship.adapters.scoring import DEFAULT_LOGIT_SCALE  # noqa: E402
from mmship.core.adapter import LoadOptions  # noqa: E402
from mmship.core.errors import MmshipError  # noqa: E402
from mmship.core.model_source import read_hf_config  # noqa: E402

ATOL = 1e-5


@pytest.fixture(scope="module")
def clip(tiny_clip_dir: Path):
    adapter = CLIPAdapter(read_hf_config(tiny_clip_dir))
    return adapter, adapter.load_model(tiny_clip_dir, LoadOptions())


@pytest.fixture(scope="module")
def flava(tiny_flava_dir: Path):
    adapter = FLAVAAdapter(read_hf_config(tiny_flava_dir))
    return adapter, adapter.load_model(tiny_flava_dir, LoadOptions())


@pytest.fixture(scope="module")
def fusion(tiny_fusion_dir: Path):
    adapter = FusionAdapter(read_hf_config(tiny_fusion_dir))
    return adapter, adapter.load_model(tiny_fusion_dir, LoadOptions())


def _modules(adapter, model, batch_size: int = 3):
    items = adapter.export_modules(model, batch_size=batch_size)
    assert [i.graph for i in items] == adapter.graph_specs()
    for item in items:
        assert len(item.example_inputs) == len(item.graph.inputs)
        for name, tensor in zip(item.graph.inputs, item.example_inputs):
            spec = adapter.spec(name)
            assert str(tensor.dtype) == f"torch.{spec.dtype}"
            assert tensor.shape[0] == batch_size
            assert all(d == -1 or d == got for d, got in zip(spec.shape, tensor.shape))
    return {i.graph.name: i for i in items}


def _run(item):
    with torch.no_grad():
        return item.module(*item.example_inputs)


def test_load_model_is_eval_float32(clip) -> None:
    _, model = clip
    assert type(model).__name__ == "CLIPModel"
    assert not model.training
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_load_model_refuses_pickle_checkpoints(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "clip"}')
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(MmshipError, match="safetensors"):
        CLIPAdapter({"model_type": "clip"}).load_model(tmp_path, LoadOptions())


def test_example_texts_are_not_degenerate(clip) -> None:
    adapter, model = clip
    ids, mask = _modules(adapter, model)["text"].example_inputs
    lengths = mask.sum(dim=1).tolist()
    assert len(set(lengths)) == 3 and min(lengths) > 2
    eos = model.config.text_config.eos_token_id
    for row, length in enumerate(lengths):
        assert ids[row, 0] == model.config.text_config.bos_token_id
        assert ids[row, length - 1] == eos
        assert (ids[row, : length - 1] == eos).sum() == 0


def test_clip_wrappers_match_get_features(clip) -> None:
    adapter, model = clip
    items = _modules(adapter, model)
    (pixels,) = items["image"].example_inputs
    ids, mask = items["text"].example_inputs
    with torch.no_grad():
        image_ref = model.get_image_features(pixel_values=pixels).pooler_output
        text_ref = model.get_text_features(input_ids=ids, attention_mask=mask).pooler_output
        out = model(input_ids=ids, attention_mask=mask, pixel_values=pixels)
    image, text = _run(items["image"]), _run(items["text"])
    assert image.shape == (3, adapter.projection_dim) and text.shape == (3, adapter.projection_dim)
    torch.testing.assert_close(image, image_ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(text, text_ref, atol=ATOL, rtol=0)
    # normalised, they are CLIPModel.forward's embeddings; scored, its logits
    torch.testing.assert_close(image / image.norm(dim=-1, keepdim=True), out.image_embeds, atol=ATOL, rtol=0)
    scores = adapter.score(image.numpy(), text.numpy(), adapter.logit_scale(model))
    np.testing.assert_allclose(scores, out.logits_per_image.numpy(), atol=1e-4)


def test_clip_logit_scale(clip, tiny_clip_dir: Path) -> None:
    adapter, model = clip
    expected = float(model.logit_scale.detach().exp())
    assert adapter.logit_scale(model) == pytest.approx(expected)
    assert adapter.logit_scale(folder=tiny_clip_dir) == pytest.approx(expected)
    assert adapter.logit_scale() == DEFAULT_LOGIT_SCALE
    scoring = adapter.scoring(model)
    assert scoring.kind == "softmax" and scoring.logit_scale == pytest.approx(expected) and scoring.logit_bias == 0
    assert adapter.scoring().logit_scale == DEFAULT_LOGIT_SCALE


def test_clip_score_is_scaled_cosine() -> None:
    adapter = CLIPAdapter.from_example()
    image = np.array([[3.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    text = np.array([[1.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    scores = adapter.score(image, text, logit_scale=10.0)
    np.testing.assert_allclose(scores, [[10.0, 10 / np.sqrt(2)], [0.0, 10 / np.sqrt(2)]], rtol=1e-6)
    assert adapter.score(image, text).max() == pytest.approx(DEFAULT_LOGIT_SCALE)


def test_flava_wrappers_match_model(flava) -> None:
    adapter, model = flava
    items = _modules(adapter, model)
    (pixels,) = items["image"].example_inputs
    ids, mask = items["text"].example_inputs
    with torch.no_grad():
        # transformers 5 projects every token: the embedding is the [CLS] one
        image_ref = model.get_image_features(pixel_values=pixels).pooler_output[:, 0]
        text_ref = model.get_text_features(input_ids=ids, attention_mask=mask).pooler_output[:, 0]
        mm_ref = model(pixel_values=pixels, input_ids=ids, attention_mask=mask).multimodal_embeddings[:, 0]
    image, text, mm = _run(items["image"]), _run(items["text"]), _run(items["multimodal"])
    assert image.shape == (3, 24) and text.shape == (3, 24) and mm.shape == (3, 48)
    torch.testing.assert_close(image, image_ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(text, text_ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(mm, mm_ref, atol=ATOL, rtol=0)
    scoring = adapter.scoring(model)
    assert scoring.kind == "softmax" and scoring.logit_scale == pytest.approx(float(model.logit_scale.detach().exp()))


def test_fusion_wrapper_matches_model(fusion) -> None:
    adapter, model = fusion
    assert type(model).__name__ == "MmshipFusionModel" and not model.training
    items = _modules(adapter, model)
    pixels, ids, mask = items["fused"].example_inputs
    with torch.no_grad():
        out = model(input_ids=ids, pixel_values=pixels, attention_mask=mask)
        text_cls = model.text_model(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
        image_cls = model.vision_model(pixel_values=pixels).last_hidden_state[:, 0]
        by_hand = model.fusion_head(torch.cat([text_cls, image_cls], dim=-1))
    fused = _run(items["fused"])
    assert fused.shape == (3, 16)
    torch.testing.assert_close(fused, out.fused_embeds, atol=ATOL, rtol=0)
    torch.testing.assert_close(fused, by_hand, atol=ATOL, rtol=0)
    assert adapter.bundle_data(model) == {}


def test_batch_rows_are_independent(clip, flava, fusion) -> None:
    """Row 0 alone gives what it gives in a batch (no padding leaks across rows)."""
    for adapter, model in (clip, flava, fusion):
        big = {i.graph.name: i for i in adapter.export_modules(model, batch_size=3)}
        for name, item in big.items():
            single = tuple(t[:1] for t in item.example_inputs)
            with torch.no_grad():
                torch.testing.assert_close(item.module(*single), _run(item)[:1], atol=1e-4, rtol=0)


@pytest.mark.parametrize("which", ["clip", "flava", "fusion"])
def test_mmship_export_hook_exports_every_graph_with_parity(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The wrappers trace: the mmship_export hook exports each graph and it matches eager
    PyTorch at batch 1 and 3 (the export plugin's parity check)."""
    from mmship.core.manager import get_plugin_manager
    from mmship.core.stages import ExportOptions

    adapter, model = request.getfixturevalue(which)
    graphs = get_plugin_manager().hook.mmship_export(
        adapter=adapter, model=model, workdir=tmp_path, options=ExportOptions(batch_size=2)
    )
    assert [g.name for g in graphs] == [g.name for g in adapter.graph_specs()]
    for graph in graphs:
        assert graph.path.is_file()
        assert graph.report["parity"]["min_cosine"] > 0.9999
        assert all(spec.shape[0] == -1 for spec in (*graph.inputs, *graph.outputs))


def test_exported_text_graphs_take_other_lengths(clip, fusion, tmp_path: Path) -> None:
    """The sequence axis stays dynamic: a graph traced at the example length runs shorter texts."""
    from mmship.ort import make_session, run
    from mmship.plugins.stages.export_onnx import export_module

    for adapter, model, graph_name in ((*clip, "text"), (*fusion, "fused")):
        item = next(i for i in adapter.export_modules(model, batch_size=2) if i.graph.name == graph_name)
        graph = export_module(adapter, item, tmp_path / f"{graph_name}.onnx", opset=17)
        short = tuple(t[..., :9] if t.dtype == torch.int64 else t for t in item.example_inputs)
        ids_pos = item.graph.inputs.index("input_ids")
        ids = short[ids_pos].clone()
        eos = getattr(model.config.text_config, "eos_token_id", None)
        if isinstance(eos, int):
            ids[:, -1] = eos  # CLIP pools at the end-of-text token
        short = short[:ids_pos] + (ids,) + short[ids_pos + 1 :]
        with torch.no_grad():
            expected = item.module(*short).numpy()
        got = run(make_session(graph.path), {n: t.numpy() for n, t in zip(item.graph.inputs, short)})
        np.testing.assert_allclose(got[item.graph.outputs[0]], expected, atol=1e-4)
