"""infinity-emb 0.0.78 (torch engine) as a baseline server for serve_clip.py.

Its venv is built by ``setup_infinity.sh`` (torch 2.13.0 CPU first, ``infinity-emb[server,torch]``,
transformers 4, Pillow, aiohttp, no torchvision). Infinity is started from that venv as a child
process on loopback, offline, and driven with mmship's load generator through its OpenAI-style
``POST /embeddings``: ``{"input": [text]}`` for a text, ``{"input": ["data:image/jpeg;base64,..."],
"modality": "image"}`` for an image (its convention for images; URLs would work too but this
measures the same bytes mmship gets).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from mmship.core.payload import EncodedRequest

SETUP = Path(__file__).with_name("setup_infinity.sh")
#: Files of the random model that transformers 4 reads as they are.
_SHARED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
           "special_tokens_map.json", "vocab.json", "merges.txt")


def ensure_venv(venv: Path, log: Path) -> Path | None:
    """Run the setup script (a no-op when the venv is ready); the ``infinity_emb`` CLI or None."""
    exe = venv / "bin" / "infinity_emb"
    with log.open("ab") as out:
        done = subprocess.run(["bash", str(SETUP), str(venv)], stdout=out, stderr=subprocess.STDOUT, check=False)
    return exe if done.returncode == 0 and exe.exists() else None


def transformers4_copy(model: Path, out: Path) -> Path:
    """A folder transformers 4 can load: the same weights and tokenizer (hard links or copies),
    with the image processor written as a top-level ``preprocessor_config.json`` (transformers 5
    nests it under ``image_processor`` in ``processor_config.json``, which 4.x does not read)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in _SHARED:
        source, target = model / name, out / name
        if source.exists() and not target.exists():
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)
    processor = json.loads((model / "processor_config.json").read_text()) if (model / "processor_config.json").exists() else {}
    image = processor.get("image_processor")
    if image is None and (model / "preprocessor_config.json").exists():
        image = json.loads((model / "preprocessor_config.json").read_text())
    if image is None:
        raise FileNotFoundError(f"{model} has no image processor config")
    image = {**image, "processor_class": "CLIPProcessor"}
    (out / "preprocessor_config.json").write_text(json.dumps(image, indent=2))
    return out


def start(exe: Path, model: Path, port: int, log: Path, threads: int | None = None) -> subprocess.Popen[bytes]:
    """``infinity_emb v2 --engine torch`` on 127.0.0.1:``port``, offline, no telemetry."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0",
                "DO_NOT_TRACK": "1", "HF_HOME": str(log.parent / "hf-home")})
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    command = [str(exe), "v2", "--model-id", str(model), "--engine", "torch", "--device", "cpu",
               "--host", "127.0.0.1", "--port", str(port), "--no-bettertransformer", "--url-prefix", ""]
    return subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def wait_ready(url: str, child: subprocess.Popen[bytes], log: Path, timeout_s: float = 300.0) -> None:
    """Poll ``/health`` until 200; raise with the log's tail when the child exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"infinity exited with code {child.returncode}; its log ends:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"infinity was not ready within {timeout_s:.0f} s; see {log}")


def requests(model_name: str, image: bytes, text: str) -> dict[str, EncodedRequest]:
    """One encoded ``POST /embeddings`` per modality, in infinity's request shape."""
    headers = {"content-type": "application/json"}
    uri = "data:image/jpeg;base64," + base64.b64encode(image).decode()
    bodies = {
        "image": {"model": model_name, "input": [uri], "modality": "image"},
        "text": {"model": model_name, "input": [text], "modality": "text"},
    }
    return {m: EncodedRequest("POST", "/embeddings", json.dumps(b).encode(), headers) for m, b in bodies.items()}


def check_answer(url: str, request: EncodedRequest, dim: int) -> None:
    """Send ``request`` once and check that an embedding of ``dim`` floats comes back."""
    response = httpx.request(request.method, url + request.path, content=request.body, headers=request.headers, timeout=120)
    if response.status_code != 200:
        raise RuntimeError(f"infinity answered {response.status_code}: {response.text[:500]}")
    embedding = response.json()["data"][0]["embedding"]
    if len(embedding) != dim:
        raise RuntimeError(f"infinity returned {len(embedding)} floats, expected {dim}")
