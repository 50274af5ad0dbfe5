"""What decoding JPEGs at a reduced scale (``mmship serve --jpeg-scaled-decode``) does to
the embeddings, measured at build time on the probe photos.

The probe photos are small (256 pixels high), so each is first upscaled to
:data:`UPSCALE` times its size and saved as a JPEG, as a phone photo would arrive: the
scaled decode then reads it at 1/4 of its size. Both decodings run through the fp32 image
graphs; the figures (min and mean cosine per output, the worst of them) go to report.json
as ``scaled_jpeg_decode`` and are shown when a server turns the option on.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Any

from mmship.core.specs import ExportedGraph, ImagePreprocessSpec
from mmship.evaluation.compare import compare
from mmship.evaluation.feeds import load_probe_set
from mmship.evaluation.sessions import GraphSessions, session_for

#: How many times each probe photo is upscaled (both sides) before it is encoded.
UPSCALE = 4
#: The JPEG quality the upscaled photos are saved at (a phone camera's range).
JPEG_QUALITY = 90
#: Below this mean cosine to full decoding the server warns when the option is on.
MIN_MEAN_COSINE = 0.99


@lru_cache(maxsize=1)
def large_probe_photos() -> tuple[bytes, ...]:
    """The probe photos upscaled :data:`UPSCALE` times and encoded as JPEG."""
    from PIL import Image

    photos = []
    for data in load_probe_set()[0]:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        large = image.resize((image.width * UPSCALE, image.height * UPSCALE), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        large.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        photos.append(buffer.getvalue())
    return tuple(photos)


def _image_only(graph: ExportedGraph) -> bool:
    return bool(graph.inputs) and all(s.modality == "image" for s in graph.inputs)


def measure_scaled_decode(
    reference: list[ExportedGraph], spec: ImagePreprocessSpec | None, sessions: GraphSessions | None = None
) -> dict[str, Any] | None:
    """Cosine of the fp32 image graphs' outputs with scaled against full JPEG decoding on
    the upscaled probe photos; ``None`` when no graph takes images only or the spec does
    not resize (nothing to decode at a reduced scale)."""
    from mmship.preprocess.pixels import ImagePreprocessor, resize_target

    graphs = [g for g in reference if _image_only(g)]
    if spec is None or not graphs or resize_target(1024, 1024, spec) is None:
        return None
    photos = list(large_probe_photos())
    full = ImagePreprocessor(spec, max_pixels=None)(photos)
    scaled = ImagePreprocessor(spec, max_pixels=None, jpeg_scaled_decode=True)(photos)
    outputs: dict[str, dict[str, float]] = {}
    for graph in graphs:
        session = session_for(graph, sessions)
        expected = session.run({s.name: full for s in graph.inputs})
        got = session.run({s.name: scaled for s in graph.inputs})
        outputs.update({name: compare(expected[name], got[name]) for name in expected})
    return {
        "photos": len(photos),
        "upscaled": UPSCALE,
        "outputs": outputs,
        "min_cosine": min(v["min_cosine"] for v in outputs.values()),
        "mean_cosine": min(v["mean_cosine"] for v in outputs.values()),
    }


def describe_scaled_decode(report: dict[str, Any]) -> str:
    """What a server with ``--jpeg-scaled-decode`` says about the bundle built as ``report``."""
    figures = report.get("scaled_jpeg_decode")
    if not figures:
        return ("JPEG scaled decode is on; this bundle's build did not measure what it does to the embeddings "
                "(rebuild with this mmship to see the figures in `mmship inspect`)")
    text = (f"JPEG scaled decode is on: on the probe photos upscaled {figures['upscaled']}x, the embeddings' "
            f"mean cosine to full decoding is {figures['mean_cosine']:.5f} (min {figures['min_cosine']:.5f})")
    if figures["mean_cosine"] < MIN_MEAN_COSINE:
        text += f", under {MIN_MEAN_COSINE}: serve without --jpeg-scaled-decode for this model"
    return text
