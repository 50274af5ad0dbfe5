"""The baseline people write first: FastAPI + transformers eager, one request one forward.

Serves the same ``POST /embed`` request shape as mmship (base64 images, texts) so one load
generator measures both. Run: ``python benchmarks/naive_server.py MODEL_DIR --port 8100``.
"""

from __future__ import annotations

import argparse
import base64
import io

import torch
import uvicorn
from fastapi import FastAPI
from PIL import Image
from pydantic import BaseModel
from transformers import CLIPModel, CLIPProcessor


class EmbedRequest(BaseModel):
    images: list[str] = []
    texts: list[str] = []
    normalize: bool = True


def create_app(model_dir: str) -> FastAPI:
    model = CLIPModel.from_pretrained(model_dir).eval()
    processor = CLIPProcessor.from_pretrained(model_dir)
    app = FastAPI()

    @app.get("/v2/health/ready")
    def ready() -> dict:
        return {"ready": True}

    @app.post("/embed")
    def embed(body: EmbedRequest) -> dict:
        out: dict = {"model": "naive"}
        with torch.no_grad():
            if body.images:
                images = [Image.open(io.BytesIO(base64.b64decode(s))).convert("RGB") for s in body.images]
                pixels = processor(images=images, return_tensors="pt")["pixel_values"]
                out["image_embeds"] = model.get_image_features(pixel_values=pixels).pooler_output.tolist()
            if body.texts:
                tokens = processor(text=body.texts, padding="max_length", truncation=True, max_length=77, return_tensors="pt")
                out["text_embeds"] = model.get_text_features(**tokens).pooler_output.tolist()
        return out

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args()
    uvicorn.run(create_app(args.model_dir), host="127.0.0.1", port=args.port, log_level="warning")
