"""What an attacker can put in a request, as hypothesis strategies.

Each strategy mixes nearly-valid input (the right names, datatypes and shapes, with one
thing wrong) with arbitrary input, because the nearly-valid kind reaches deep into the
decoders and the arbitrary kind tries their first checks.
"""

from __future__ import annotations

import base64
import io
import json
import struct
from typing import Any

from hypothesis import strategies as st
from PIL import Image

from mmship.payload.datatypes import DATATYPES

INPUT_NAMES = ("image", "text", "pixel_values", "input_ids", "attention_mask", "token_type_ids")

scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.integers(-5, 600)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=25
)
names = st.sampled_from(INPUT_NAMES) | st.text(max_size=10)
datatypes = st.sampled_from([*DATATYPES, "BF16", "float", "int", "junk", ""]) | json_values
shapes = (
    st.lists(st.integers(0, 4), min_size=1, max_size=4)
    | st.lists(st.integers(-2, 2**40), max_size=3)
    | st.lists(st.just(1), min_size=15, max_size=70)
    | json_values
)


#: The modes each format can write.
MODES = {
    "PNG": ["RGB", "L", "RGBA", "P", "LA", "1", "I;16"], "JPEG": ["RGB", "L", "CMYK"], "WEBP": ["RGB", "RGBA"],
    "GIF": ["P", "L", "RGB"], "BMP": ["RGB", "L", "P", "1"], "TIFF": ["RGB", "L", "CMYK", "RGBA"],
}


@st.composite
def encoded_images(draw: st.DrawFn) -> bytes:
    """Encoded images: valid small ones in every wire format and mode, odd shapes, JPEGs
    large enough for a scaled decode, other formats, truncations, flipped bytes, headers
    claiming any size, bytes with a magic prefix."""
    kind = draw(st.sampled_from(["valid", "valid", "other-format", "truncated", "flipped", "header", "magic"]))
    if kind == "header":
        width, height = draw(st.integers(1, 2**31 - 1)), draw(st.integers(1, 2**31 - 1))
        return png_header(width, height)
    if kind == "magic":
        magic = draw(st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\x00\x00\x00\x00WEBP", b"GIF89a", b"BM"]))
        return magic + draw(st.binary(max_size=64))
    fmt = draw(st.sampled_from(["PNG", "JPEG", "WEBP"] if kind != "other-format" else ["GIF", "BMP", "TIFF"]))
    mode = draw(st.sampled_from(MODES[fmt]))
    width, height = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    if draw(st.booleans()):
        width = draw(st.sampled_from([1, 2, 300, 1500]))
    if fmt == "JPEG" and draw(st.integers(0, 3)) == 0:  # large enough to be decoded at a reduced scale
        width, height = draw(st.sampled_from([(448, 448), (1500, 900), (900, 1500)]))
    image = Image.new(mode, (width, height), draw(st.integers(0, 255)) if mode in ("L", "P", "1", "I;16") else None)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    data = buffer.getvalue()
    if kind == "truncated":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if kind == "flipped":
        mutable = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            mutable[draw(st.integers(0, len(mutable) - 1))] = draw(st.integers(0, 255))
        return bytes(mutable)
    return data


def png_header(width: int, height: int) -> bytes:
    """A PNG of only its header (no pixel data) claiming ``width`` x ``height``."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


image_texts = encoded_images().map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=20) | st.sampled_from(
    ["data:image/png;base64,", "data:,x", "http://127.0.0.1:9/x.png", "file:///etc/hostname", "====", "A" * 4]
)
texts = st.text(max_size=40) | st.sampled_from(["a photo of a cat", "", " ", "\x00", "a" * 500, "😀" * 50])


@st.composite
def v2_entries(draw: st.DrawFn, binary: bool = False) -> tuple[dict[str, Any], bytes | None]:
    """One tensor entry of a v2 request and, in binary mode, its section."""
    name = draw(names)
    if draw(st.integers(0, 4)) == 0:  # anything at all
        return draw(st.dictionaries(st.sampled_from(["name", "datatype", "shape", "data", "parameters", "type"]), json_values, max_size=5)), None
    shape = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)) if draw(st.booleans()) else draw(shapes)
    count = 1
    for dim in shape if isinstance(shape, list) and all(isinstance(d, int) for d in shape) else []:
        count *= max(0, min(dim, 8))
    count = min(count, 64)
    if name == "image":
        datatype, values = "BYTES", draw(st.lists(encoded_images(), min_size=count, max_size=count))
    elif name == "text":
        datatype, values = "BYTES", [t.encode("utf-8", "surrogatepass") for t in draw(st.lists(texts, min_size=count, max_size=count))]
    elif name == "pixel_values":
        datatype = draw(st.sampled_from(["FP32", "FP16", "FP64", "INT64"]))
        values = draw(st.lists(st.floats(width=32) | st.integers(-3, 3), min_size=count, max_size=count))
    else:
        datatype = draw(st.sampled_from(["INT64", "INT32", "FP32", "BOOL", "UINT8"]))
        values = draw(st.lists(st.integers(-2, 600) | st.integers(-(2**63), 2**63 - 1), min_size=count, max_size=count))
    if draw(st.integers(0, 3)) == 0:
        datatype = draw(datatypes)
    entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
    if not binary:
        if name == "image":
            entry["data"] = [base64.b64encode(v).decode() for v in values]
            entry["parameters"] = {"content_type": "base64"}
        elif name == "text":
            entry["data"] = [v.decode("utf-8", "replace") for v in values]
        else:
            entry["data"] = [v if not isinstance(v, float) or v == v and abs(v) != float("inf") else 0.0 for v in values]
        if draw(st.integers(0, 5)) == 0:
            entry["data"] = draw(json_values)
        return entry, None
    section = _section(datatype, values)
    if draw(st.integers(0, 5)) == 0:
        section = draw(st.binary(max_size=64))
    entry["parameters"] = {"binary_data_size": len(section) if draw(st.integers(0, 5)) else draw(st.integers(-1, 100))}
    return entry, section


def _section(datatype: Any, values: list[Any]) -> bytes:
    import numpy as np

    from mmship.payload.binary import serialize_bytes_tensor
    from mmship.payload.datatypes import NUMPY_DTYPES

    if datatype == "BYTES" or not isinstance(datatype, str) or datatype not in NUMPY_DTYPES:
        return serialize_bytes_tensor([v if isinstance(v, bytes) else str(v).encode() for v in values])
    dtype = NUMPY_DTYPES[datatype]
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(values).astype(dtype).tobytes()
    except (OverflowError, ValueError, TypeError):
        return b"\x00" * (dtype.itemsize * len(values))


@st.composite
def v2_json_bodies(draw: st.DrawFn) -> bytes:
    """A JSON infer body: entries, request id, parameters, outputs; sometimes raw junk."""
    if draw(st.integers(0, 6)) == 0:
        return draw(st.binary(max_size=200) | st.sampled_from([b"[" * 5000, b'{"inputs": NaN}', b"{}", b"null"]))
    doc: dict[str, Any] = {"inputs": [draw(v2_entries())[0] for _ in range(draw(st.integers(0, 3)))]}
    if draw(st.booleans()):
        doc["id"] = draw(json_values)
    if draw(st.booleans()):
        doc["parameters"] = draw(st.dictionaries(st.sampled_from(["binary_data_output", "x"]), json_values, max_size=2))
    if draw(st.booleans()):
        doc["outputs"] = draw(st.lists(st.fixed_dictionaries({"name": names}, optional={"parameters": json_values}), max_size=3) | json_values)
    return json.dumps(doc).encode()


@st.composite
def v2_binary_bodies(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """A binary infer body and its headers, the header length mostly right."""
    pairs = [draw(v2_entries(binary=True)) for _ in range(draw(st.integers(1, 3)))]
    head = json.dumps({"inputs": [entry for entry, _ in pairs]}).encode()
    body = head + b"".join(section or b"" for _, section in pairs)
    length = str(len(head)) if draw(st.integers(0, 4)) else draw(st.sampled_from(["0", "-1", "x", str(len(body) + 1), "\xff"]) | st.integers(-5, len(body) + 5).map(str))
    if draw(st.integers(0, 6)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    return body, {"content-type": "application/octet-stream", "inference-header-content-length": length}


@st.composite
def embed_bodies(draw: st.DrawFn) -> bytes:
    """An /embed body: images and texts, sometimes wrong types or extra keys."""
    if draw(st.integers(0, 6)) == 0:
        return draw(st.binary(max_size=100) | json_values.map(lambda v: json.dumps(v).encode()))
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["images"] = draw(st.lists(image_texts, max_size=3) | json_values)
    if draw(st.booleans()) or not doc:
        doc["texts"] = draw(st.lists(texts, max_size=4) | json_values)
    if draw(st.booleans()):
        doc["normalize"] = draw(st.booleans() | json_values)
    if draw(st.integers(0, 8)) == 0:
        doc[draw(st.text(max_size=6))] = draw(json_values)
    return json.dumps(doc).encode()


templates = st.sampled_from(["a photo of a {}", "{}", "{} {}", "{0}", "{:>99999999}", "{{}}", "{x}", "no slot", "}{"]) | st.text(
    alphabet=st.sampled_from("{}ab :0>!x."), max_size=12
)


@st.composite
def classify_bodies(draw: st.DrawFn) -> bytes:
    """A /classify body: one image or a list, labels, a template or an ensemble of them."""
    if draw(st.integers(0, 6)) == 0:
        return draw(st.binary(max_size=100) | json_values.map(lambda v: json.dumps(v).encode()))
    doc: dict[str, Any] = {"labels": draw(st.lists(texts, max_size=4) | json_values)}
    if draw(st.integers(0, 3)):
        doc["image"] = draw(image_texts | json_values)
    if draw(st.integers(0, 2)) == 0:
        doc["images"] = draw(st.lists(image_texts, max_size=4) | json_values)
    if draw(st.booleans()):
        doc["template"] = draw(templates | json_values)
    if draw(st.integers(0, 2)) == 0:
        doc["templates"] = draw(st.lists(templates, max_size=5) | json_values)
    return json.dumps(doc).encode()


@st.composite
def rank_bodies(draw: st.DrawFn, model: str) -> bytes:
    """A /rank body: an image or text query (or both, or neither), text or image candidates
    (or both), top_k and model of any value; sometimes raw junk."""
    if draw(st.integers(0, 6)) == 0:
        return draw(st.binary(max_size=100) | json_values.map(lambda v: json.dumps(v).encode()))
    query = draw(st.fixed_dictionaries({}, optional={"image": image_texts | json_values, "text": texts | json_values}) | json_values)
    candidates = draw(
        st.fixed_dictionaries({}, optional={
            "texts": st.lists(texts, max_size=5) | json_values, "images": st.lists(image_texts, max_size=3) | json_values,
        }) | json_values
    )
    doc: dict[str, Any] = {"query": query, "candidates": candidates}
    if draw(st.booleans()):
        doc["top_k"] = draw(st.integers(-2, 8) | st.integers(-(2**70), 2**70) | json_values)
    if draw(st.integers(0, 3)) == 0:
        doc["model"] = draw(st.just(model) | st.text(max_size=8) | json_values)
    return json.dumps(doc).encode()


yaml_keys = st.sampled_from(["model", "adapter", "serving_params", "precision", "max_batch_size", "target", "name",
                             "compute", "autoscaling", "inputs", "shape", "<<", "version", "runtime"]) | st.text(max_size=6)
yaml_scalars = st.sampled_from(["1", "1.10", "true", "~", "''", "[]", "{}", "int8", "fp32", "-1", "1e309", ".nan", "!!binary AA==", "&a x", "*a", "|", ">", "@", "`"])


@st.composite
def yaml_texts(draw: st.DrawFn) -> str:
    """deploy_config.yaml texts: nested keys with odd scalars, tabs, anchors, junk."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=200))
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        indent = " " * draw(st.sampled_from([0, 0, 2, 4, 3])) + ("\t" if draw(st.integers(0, 20)) == 0 else "")
        key = draw(yaml_keys)
        value = draw(yaml_scalars | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=10) | st.just(""))
        lines.append(f"{indent}{'- ' if draw(st.integers(0, 5)) == 0 else ''}{key}: {value}")
    return "\n".join(lines)


@st.composite
def openai_bodies(draw: st.DrawFn, model: str) -> bytes:
    """A ``/v1/embeddings`` body: every input convention (text, texts, token ids, image data
    URIs, vLLM messages, infinity's modality), odd models, formats and dimensions."""
    if draw(st.integers(0, 6)) == 0:
        return draw(st.binary(max_size=100) | json_values.map(lambda v: json.dumps(v).encode()))
    data_uri = encoded_images().map(lambda b: "data:image/png;base64," + base64.b64encode(b).decode())
    token_ids = st.lists(st.integers(-3, 600) | st.integers(-(2**70), 2**70), max_size=20)
    doc: dict[str, Any] = {"input": draw(
        texts | st.lists(texts, max_size=4) | token_ids | st.lists(token_ids, max_size=3) | st.lists(data_uri, max_size=2)
        | json_values
    )}
    if draw(st.booleans()):
        doc["model"] = draw(st.just(model) | st.text(max_size=8) | json_values)
    if draw(st.integers(0, 3)) == 0:
        doc["modality"] = draw(st.sampled_from(["text", "image", "audio"]) | json_values)
    if draw(st.integers(0, 3)) == 0:
        doc["encoding_format"] = draw(st.sampled_from(["float", "base64", "int8"]) | json_values)
    if draw(st.integers(0, 3)) == 0:
        doc["dimensions"] = draw(st.integers(-2, 40) | json_values)
    if draw(st.integers(0, 5)) == 0:
        doc["messages"] = draw(json_values)
    return json.dumps(doc).encode()
