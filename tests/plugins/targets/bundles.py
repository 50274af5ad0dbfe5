"""Small bundles for target tests, written with the real BundleWriter (no torch needed).

* :func:`make_weights_bundle`: what the ``vlm`` adapter builds (checkpoint files, no graphs).
* :func:`make_graphs_bundle`: a CLIP-shaped bundle with two tiny ONNX graphs (image and
  text tower) made with ``onnx.helper``, at fp32 and int8, shapes matching its specs.
* :func:`make_vlm_folder`: a tiny LLaVA (Llama text + CLIP vision) saved like
  ``save_pretrained`` with a LLaVA processor, for the real build pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mmship.core.bundle import BundleManifest, BundleWriter, GraphFile, SourceInfo
from mmship.core.specs import (
    GraphSpec,
    ImagePreprocessSpec,
    PreprocessSpec,
    ServingParams,
    TensorSpec,
    TextPreprocessSpec,
)

IMAGE = 8
SEQ = 7
DIM = 4


def make_weights_bundle(dest: Path, *, hub_id: str | None = "org/tiny-llava", revision: str | None = "main",
                        name: str = "tiny-llava") -> Path:
    """A weights bundle (adapter ``vlm``) from a hub id, or from a local path when ``hub_id`` is None."""
    with BundleWriter(dest) as writer:
        hf = writer.dir("hf")
        (hf / "config.json").write_text(json.dumps({"model_type": "llava", "architectures": ["LlavaForConditionalGeneration"]}))
        (hf / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
        manifest = BundleManifest(
            name=name, adapter="vlm",
            source=SourceInfo(hub_id=hub_id, revision=revision, path=None if hub_id else "/models/tiny-llava"),
            inputs=[TensorSpec(name="pixel_values", dtype="float32", shape=[-1, 3, 32, 32], modality="image", layout="NCHW"),
                    TensorSpec(name="input_ids", dtype="int64", shape=[-1, -1], modality="text")],
            outputs=[TensorSpec(name="generated_text", dtype="bytes", shape=[-1], modality="text")],
            graph_specs=[], serving_params=ServingParams(default_batch_size=1, max_batch_size=16),
        )
        return writer.commit(manifest, {})


def _graph(path: Path, input_name: str, input_shape: list[Any], input_type: int, output_name: str, features: int) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.linspace(-1, 1, features * DIM, dtype=np.float32).reshape(features, DIM), "W")
    nodes = []
    current = input_name
    if input_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [current], ["as_float"], to=TensorProto.FLOAT))
        current = "as_float"
    nodes.append(helper.make_node("Flatten", [current], ["flat"], axis=1))
    nodes.append(helper.make_node("MatMul", ["flat", "W"], [output_name]))
    graph = helper.make_graph(
        nodes, path.stem,
        [helper.make_tensor_value_info(input_name, input_type, input_shape)],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", DIM])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def make_graphs_bundle(dest: Path, *, name: str = "tiny-clip", serving: ServingParams | None = None,
                       precisions: tuple[str, ...] = ("fp32", "int8")) -> Path:
    """A CLIP-shaped graphs bundle: image tower and text tower, tiny ONNX graphs."""
    from onnx import TensorProto

    inputs = [
        TensorSpec(name="pixel_values", dtype="float32", shape=[-1, 3, IMAGE, IMAGE], modality="image", layout="NCHW"),
        TensorSpec(name="input_ids", dtype="int64", shape=[-1, SEQ], modality="text"),
    ]
    outputs = [
        TensorSpec(name="image_embeds", dtype="float32", shape=[-1, DIM], modality="embedding"),
        TensorSpec(name="text_embeds", dtype="float32", shape=[-1, DIM], modality="embedding"),
    ]
    specs = [GraphSpec(name="image", inputs=["pixel_values"], outputs=["image_embeds"]),
             GraphSpec(name="text", inputs=["input_ids"], outputs=["text_embeds"])]
    with BundleWriter(dest) as writer:
        graphs_dir = writer.dir("graphs")
        files = []
        for precision in precisions:
            _graph(graphs_dir / f"image.{precision}.onnx", "pixel_values", ["batch", 3, IMAGE, IMAGE], TensorProto.FLOAT,
                   "image_embeds", 3 * IMAGE * IMAGE)
            _graph(graphs_dir / f"text.{precision}.onnx", "input_ids", ["batch", SEQ], TensorProto.INT64, "text_embeds", SEQ)
            for spec in specs:
                files.append(GraphFile(name=spec.name, precision=precision, file=f"graphs/{spec.name}.{precision}.onnx",
                                       inputs=spec.inputs, outputs=spec.outputs, opset=17))
        (writer.dir("processor") / "tokenizer_config.json").write_text("{}")
        manifest = BundleManifest(
            name=name, adapter="clip", source=SourceInfo(hub_id="openai/clip-vit-base-patch32"),
            inputs=inputs, outputs=outputs, graph_specs=specs, graphs=files,
            preprocess=PreprocessSpec(
                image=ImagePreprocessSpec(resize_shortest_edge=IMAGE, crop_height=IMAGE, crop_width=IMAGE,
                                          mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]),
                text=TextPreprocessSpec(max_length=SEQ),
            ),
            serving_params=serving or ServingParams(default_batch_size=4, max_batch_size=32, max_delay_ms=5.0, precision="int8"),
            precisions=list(precisions),
        )
        return writer.commit(manifest, {})


LLAVA_CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {% for c in m['content'] %}{% if c['type'] == 'image' %}<image>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}\n{% endfor %}"
)


def make_vlm_folder(folder: Path, *, vision_hidden: int = 32, text_hidden: int = 48, seed: int = 0) -> Path:
    """A tiny LLaVA (CLIP vision tower 32x32/8, 2-layer Llama) plus its processor."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    from tests.helpers.tokenizers import make_clip_tokenizer

    tokenizer = make_clip_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    image_token = tokenizer.convert_tokens_to_ids("<image>")
    vision = CLIPVisionConfig(hidden_size=vision_hidden, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=16)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=text_hidden, intermediate_size=96, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_token, image_seq_length=16)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=LLAVA_CHAT_TEMPLATE,
    )
    processor.save_pretrained(folder)
    return folder
