"""The ``vlm`` adapter: Hugging Face vision-language chat models (LLaVA family).

A LLaVA-style model is a vision tower (CLIP or SigLIP), a two-layer projector and a
causal language model: the projector maps each image patch's vision feature
(``vision_config.hidden_size`` times the number of vision feature layers) into the text
model's embedding space (``text_config.hidden_size``); the language model then generates
text. Such models are served by platforms that run Hugging Face checkpoints themselves
(FriendliAI Dedicated Endpoints), so the adapter's bundles carry the safetensors, config
and processor (``bundle_kind = "weights"``) and no ONNX graphs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from mmship import hookimpl
from mmship.core.adapter import Adapter, LoadOptions
from mmship.core.errors import AdapterError, DimensionMismatchError
from mmship.core.specs import GraphSpec, ServingParams, TensorSpec

#: Weight names of the projector's two linear layers (``[out, in]`` shapes), matched as
#: suffixes because transformers 4 and 5 save them with different prefixes.
PROJECTOR_IN = "multi_modal_projector.linear_1.weight"
PROJECTOR_OUT = "multi_modal_projector.linear_2.weight"
EMBED_TOKENS = "embed_tokens.weight"


def _find(shapes: Mapping[str, list[int]], suffix: str, exclude: str = "vision") -> tuple[str, list[int]] | None:
    for name, shape in sorted(shapes.items()):
        if name.endswith(suffix) and exclude not in name:
            return name, shape
    return None


class VLMAdapter(Adapter):
    """LLaVA-style ``*ForConditionalGeneration`` chat models with an image processor."""

    name = "vlm"
    description = "vision-language chat models (LLaVA, LLaVA-NeXT, LLaVA-OneVision), served from the checkpoint"
    model_types = ("llava", "llava_next", "llava_onevision")
    architectures = (
        "LlavaForConditionalGeneration",
        "LlavaNextForConditionalGeneration",
        "LlavaOnevisionForConditionalGeneration",
    )
    bundle_kind = "weights"
    #: llava-hf/llava-1.5-7b-hf's shape: CLIP ViT-L/14-336 vision tower, Llama-2-7B text.
    example_config: ClassVar[Mapping[str, Any]] = {
        "model_type": "llava",
        "architectures": ["LlavaForConditionalGeneration"],
        "image_token_index": 32000,
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "vision_config": {"model_type": "clip_vision_model", "hidden_size": 1024, "image_size": 336, "patch_size": 14},
        "text_config": {"model_type": "llama", "hidden_size": 4096, "vocab_size": 32064},
    }

    # --- config ----------------------------------------------------------------------

    def _sub(self, key: str) -> dict[str, Any]:
        value = self.hf_config.get(key)
        if not isinstance(value, Mapping):
            raise AdapterError(
                f"config.json of this {self.hf_config.get('model_type')!r} model has no {key} section",
                hint="save the model with save_pretrained so config.json holds vision_config and text_config",
            )
        return dict(value)

    @property
    def vision_hidden(self) -> int:
        """``vision_config.hidden_size``."""
        return int(self._sub("vision_config").get("hidden_size", 1024))

    @property
    def text_hidden(self) -> int:
        """``text_config.hidden_size``."""
        return int(self._sub("text_config").get("hidden_size", 4096))

    @property
    def feature_layers(self) -> int:
        """How many vision layers are concatenated before the projector."""
        layer = self.hf_config.get("vision_feature_layer", -2)
        return len(layer) if isinstance(layer, (list, tuple)) else 1

    @property
    def image_size(self) -> int:
        """Side of the square image the vision tower takes."""
        size = self._sub("vision_config").get("image_size", 336)
        return int(size[0] if isinstance(size, (list, tuple)) else size)

    # --- specs -----------------------------------------------------------------------

    def input_specs(self) -> list[TensorSpec]:
        size = self.image_size
        return [
            TensorSpec(
                name="pixel_values", dtype="float32", shape=[-1, 3, size, size], modality="image", layout="NCHW",
                description="images after the model's image processor",
            ),
            TensorSpec(
                name="input_ids", dtype="int64", shape=[-1, -1], modality="text",
                description="the chat prompt, tokenized, with the image token where each image goes",
            ),
        ]

    def output_specs(self) -> list[TensorSpec]:
        return [
            TensorSpec(
                name="generated_text", dtype="bytes", shape=[-1], modality="text",
                description="the model's reply (the serving platform runs generation)",
            )
        ]

    def graph_specs(self) -> list[GraphSpec]:
        return []  # served from the checkpoint: no ONNX graphs

    def default_serving_params(self) -> ServingParams:
        return ServingParams(default_batch_size=1, max_batch_size=16, max_delay_ms=10.0)

    # --- dimensions ------------------------------------------------------------------

    def check_dimensions(self, weight_shapes: Mapping[str, list[int]] | None = None) -> None:
        """Vision features (x feature layers) -> projector -> text hidden size must agree,
        and the image token must lie inside the text vocabulary."""
        vision_in = self.vision_hidden * self.feature_layers
        text = self.text_hidden
        layers = f" x {self.feature_layers} vision_feature_layer entries" if self.feature_layers > 1 else ""
        text_cfg = self._sub("text_config")
        vocab = text_cfg.get("vocab_size")
        image_token = self.hf_config.get("image_token_index", self.hf_config.get("image_token_id"))
        if vocab is not None and image_token is not None and int(image_token) >= int(vocab):
            raise DimensionMismatchError(
                f"image_token_index is {image_token} but text_config.vocab_size is {vocab}: the image "
                "token lies outside the text model's vocabulary",
                hint="add the <image> token to the tokenizer, resize the token embeddings "
                "(model.resize_token_embeddings(len(tokenizer))) and set image_token_index to its id",
            )
        if not weight_shapes:
            return
        found = _find(weight_shapes, PROJECTOR_IN)
        if found is not None:
            key, (out_dim, in_dim) = found[0], found[1][:2]
            if in_dim != vision_in:
                raise DimensionMismatchError(
                    f"the projector takes {in_dim} features ({key} has shape {found[1]}) but the vision tower "
                    f"gives {vision_in} (vision_config.hidden_size = {self.vision_hidden}{layers})",
                    hint="set vision_config.hidden_size (and vision_feature_layer) in config.json to match the "
                    "checkpoint's vision tower, or use the projector trained for this vision tower",
                )
            if out_dim != text:
                raise DimensionMismatchError(
                    f"the projector gives {out_dim} features ({key} has shape {found[1]}) but the text model's "
                    f"text_config.hidden_size is {text}",
                    hint="set text_config.hidden_size in config.json to the language model's hidden size, or "
                    "use the projector trained for this language model",
                )
        second = _find(weight_shapes, PROJECTOR_OUT)
        if second is not None and second[1][0] != text:
            raise DimensionMismatchError(
                f"the projector's last layer gives {second[1][0]} features ({second[0]}) but "
                f"text_config.hidden_size is {text}",
                hint="set text_config.hidden_size in config.json to the language model's hidden size",
            )
        embed = _find(weight_shapes, EMBED_TOKENS)
        if embed is not None and embed[1][1] != text:
            raise DimensionMismatchError(
                f"the language model's token embeddings are {embed[1][1]}-dimensional ({embed[0]}) but "
                f"text_config.hidden_size is {text}",
                hint="set text_config.hidden_size in config.json to the checkpoint's embedding width",
            )
        if embed is not None and image_token is not None and int(image_token) >= embed[1][0]:
            raise DimensionMismatchError(
                f"image_token_index is {image_token} but the checkpoint's token embeddings have "
                f"{embed[1][0]} rows ({embed[0]})",
                hint="resize the token embeddings after adding the <image> token "
                "(model.resize_token_embeddings(len(tokenizer))) and save again",
            )

    # --- heavy parts -----------------------------------------------------------------

    def load_model(self, folder: Path, options: LoadOptions) -> Any:
        """Load the eager model (safetensors only); used by tests and local checks, not
        by the build, which copies the checkpoint."""
        from transformers import AutoModelForImageTextToText

        return AutoModelForImageTextToText.from_pretrained(
            folder, revision=options.revision, trust_remote_code=options.trust_remote_code, use_safetensors=True
        ).eval()


@hookimpl
def mmship_register_adapters(register: Any) -> None:
    """Register the vision-language chat adapter."""
    register(VLMAdapter)
