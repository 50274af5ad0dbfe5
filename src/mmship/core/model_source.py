"""Where a model comes from: a local folder or a Hugging Face hub id.

Only safetensors weights are accepted (pickle-based ``.bin`` files can run code when
loaded). Reading ``config.json`` and tensor shapes needs neither torch nor transformers.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

from mmship.core.errors import AdapterError, MmshipError

#: Files fetched from the hub for a build: weights, configs, tokenizer and processor files.
HUB_ALLOW_PATTERNS = ["*.safetensors", "*.safetensors.index.json", "*.json", "*.txt", "*.model"]


def read_hf_config(folder: Path) -> dict[str, Any]:
    """The ``config.json`` of a model folder, with a clear error when it is missing."""
    path = Path(folder) / "config.json"
    if not Path(folder).is_dir():
        raise AdapterError(
            f"model folder {folder} does not exist",
            hint="pass a folder written by save_pretrained (holding config.json and *.safetensors)",
        )
    if not path.is_file():
        raise AdapterError(
            f"{folder} has no config.json, so it is not a Hugging Face model folder",
            hint="point at the folder save_pretrained wrote, or at a hub id such as openai/clip-vit-base-patch32",
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AdapterError(f"{path} is not valid JSON: {exc}", hint="re-save the model with save_pretrained") from exc


def safetensors_files(folder: Path) -> list[Path]:
    """The safetensors weight files of a folder; refuses pickle-only checkpoints."""
    folder = Path(folder)
    files = sorted(folder.glob("*.safetensors"))
    if files:
        return files
    pickles = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.pt"))
    if pickles:
        raise MmshipError(
            f"{folder} holds only pickle weights ({', '.join(pickles)}); mmship loads safetensors only "
            "because pickle files can run code when loaded",
            hint="convert once in a trusted environment: model.save_pretrained(out, safe_serialization=True)",
        )
    raise MmshipError(
        f"{folder} has no *.safetensors weights",
        hint="save the model with save_pretrained (safetensors is the default) into this folder",
    )


def read_weight_shapes(folder: Path) -> dict[str, list[int]]:
    """Tensor name -> shape for every safetensors file in ``folder`` (reads headers only)."""
    shapes: dict[str, list[int]] = {}
    for path in safetensors_files(folder):
        with path.open("rb") as fh:
            (header_len,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(header_len))
        for name, info in header.items():
            if name != "__metadata__":
                shapes[name] = list(info["shape"])
    return shapes


def weights_size_bytes(folder: Path) -> int:
    """Total size of the safetensors weights in ``folder``."""
    return sum(p.stat().st_size for p in safetensors_files(folder))


def looks_like_hub_id(source: str) -> bool:
    """True for ``org/name`` strings that are not existing paths."""
    parts = source.split("/")
    return len(parts) == 2 and all(parts) and not Path(source).exists() and not source.startswith((".", "~"))


def resolve_source(source: str | Path, revision: str | None = None) -> Path:
    """A local folder for ``source``: the folder itself, or a hub snapshot.

    With ``HF_HUB_OFFLINE=1`` only the local cache is used.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    text = str(source)
    if not looks_like_hub_id(text):
        raise MmshipError(
            f"{text} is neither a model folder nor a hub id like 'org/name'",
            hint="pass the folder save_pretrained wrote, or a Hugging Face hub id",
        )
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(
            repo_id=text,
            revision=revision,
            allow_patterns=HUB_ALLOW_PATTERNS,
            local_files_only=os.environ.get("HF_HUB_OFFLINE", "") not in {"", "0"},
        )
    except Exception as exc:
        raise MmshipError(
            f"could not fetch {text} from the Hugging Face hub ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
            hint="check the network and the repo id (gated repos need HF_TOKEN), or save the model "
            "elsewhere with save_pretrained and pass that folder (works with HF_HUB_OFFLINE=1)",
        ) from exc
    return Path(folder)
