"""``mmship invoke`` against the stub server."""

from __future__ import annotations

import json
from importlib.resources import files

import numpy as np
import pytest

from mmship.core.cli.app import main
from mmship.plugins.commands.invoke import similarity_rows
from tests.helpers.stub_server import MODEL

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def cat_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "cat.jpg"
    path.write_bytes(files("mmship.data").joinpath("probe", "cat.jpg").read_bytes())
    return path


def test_invoke_v2_binary_prints_shapes_and_similarity_with_softmax(stub, cat_path, capsys):
    url, state = stub
    code = main(["invoke", url, "--image", str(cat_path), "--text", "a photo of a cat", "--text", "a dog",
                 "--protocol", "v2-binary", "--model", MODEL])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "outputs (v2-binary)" in out
    assert "image_embeds" in out and "[1, 8]" in out and "[2, 8]" in out and "logits_per_image" in out
    assert "image-text similarity" in out and "softmax" in out
    assert "cat.jpg" in out and "a photo of a cat" in out
    assert "inference-header-content-length" in state.seen[-1][2]


def test_invoke_auto_uses_v2_binary_when_the_server_names_its_model(stub, cat_path, capsys):
    url, state = stub
    state.advertise_model = True
    assert main(["invoke", url, "--image", str(cat_path), "--text", "a cat"]) == 0
    assert "outputs (v2-binary)" in capsys.readouterr().out
    assert state.seen[-1][1] == f"/v2/models/{MODEL}/infer"


def test_invoke_auto_falls_back_to_embed(stub, cat_path, capsys):
    url, state = stub
    assert main(["invoke", url, "--image", str(cat_path), "--text", "a cat"]) == 0
    out = capsys.readouterr().out
    assert "outputs (embed)" in out and "cosine" in out and "needs the model's logits" in out
    assert state.seen[-1][1] == "/embed"


def test_invoke_json_output_scores(stub, cat_path, capsys):
    url, _ = stub
    assert main(["invoke", url, "-i", str(cat_path), "-t", "a cat", "-t", "a dog", "--protocol", "v2", "-m", MODEL, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["protocol"] == "v2" and doc["outputs"]["image_embeds"]["shape"] == [1, 8]
    assert [row["text"] for row in doc["similarity"]] == ["a cat", "a dog"]
    assert abs(sum(row["softmax"] for row in doc["similarity"]) - 1) < 1e-6


def test_invoke_texts_only_prints_shapes(stub, capsys):
    url, _ = stub
    assert main(["invoke", url, "--text", "a", "--text", "b", "--protocol", "embed"]) == 0
    out = capsys.readouterr().out
    assert "text_embeds" in out and "[2, 8]" in out and "similarity" not in out


def test_invoke_labels_classifies(stub, cat_path, capsys):
    url, state = stub
    assert main(["invoke", url, "--image", str(cat_path), "--labels", "cat,dog,car"]) == 0
    out = capsys.readouterr().out
    assert "cat.jpg: zero-shot" in out and "<- top" in out
    for label in ("cat", "dog", "car"):
        assert label in out
    assert state.seen[-1][1] == "/classify"


def test_invoke_api_key_from_the_environment(stub, cat_path, capsys, monkeypatch):
    url, state = stub
    state.api_key = "k3y"
    assert main(["invoke", url, "--text", "a", "--protocol", "embed"]) == 1
    assert "the server answered 401" in capsys.readouterr().err
    monkeypatch.setenv("MMSHIP_API_KEY", "k3y")
    assert main(["invoke", url, "--text", "a", "--protocol", "embed"]) == 0


def test_invoke_server_error_exits_1_with_the_servers_message(stub, capsys):
    url, _ = stub
    assert main(["invoke", url, "--text", "a", "--protocol", "v2", "--model", "nope"]) == 1
    err = capsys.readouterr().err
    assert "the server answered 404: no model 'nope' here" in err
    assert f"Fix: use /v2/models/{MODEL}" in err


def test_invoke_refuses_non_images_before_sending(stub, tmp_path, capsys):
    url, state = stub
    raw = tmp_path / "pixels.bin"
    raw.write_bytes(np.zeros((64, 64, 3), np.uint8).tobytes())
    assert main(["invoke", url, "--image", str(raw), "--protocol", "embed"]) == 1
    assert "64x64x3: it looks like raw pixels" in capsys.readouterr().err
    assert state.seen == []


def test_invoke_usage_errors(stub, capsys):
    url, _ = stub
    assert main(["invoke", url]) == 1
    assert "nothing to send" in capsys.readouterr().err
    assert main(["invoke", url, "--text", "a", "--protocol", "grpc"]) == 1
    assert "unknown protocol 'grpc'" in capsys.readouterr().err
    assert main(["invoke", url, "--text", "a", "--labels", "x,y"]) == 1
    assert "--labels classifies images" in capsys.readouterr().err


def test_invoke_unreachable_server(capsys):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main(["invoke", f"http://127.0.0.1:{port}", "--text", "a", "--protocol", "embed"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_similarity_rows():
    a = np.array([[1.0, 0.0]])
    b = np.array([[2.0, 0.0], [0.0, 3.0]])
    rows = similarity_rows(["x.jpg"], ["p", "q"], {"image_embeds": a, "text_embeds": b})
    assert rows == [{"image": "x.jpg", "text": "p", "cosine": 1.0}, {"image": "x.jpg", "text": "q", "cosine": 0.0}]
    assert similarity_rows(["x"], [], {"image_embeds": a}) == []


def test_similarity_rows_apply_the_servers_scoring():
    a, b = np.array([[1.0, 0.0]]), np.array([[2.0, 0.0], [0.0, 3.0]])
    logits = np.array([[2.0, -1.0]], np.float32)
    outputs = {"image_embeds": a, "text_embeds": b, "logits_per_image": logits}
    soft = similarity_rows(["x"], ["p", "q"], outputs, "softmax")
    assert [r["softmax"] for r in soft] == pytest.approx([np.exp(3) / (1 + np.exp(3)), 1 / (1 + np.exp(3))])
    sig = similarity_rows(["x"], ["p", "q"], outputs, "sigmoid")
    assert [r["sigmoid"] for r in sig] == pytest.approx([1 / (1 + np.exp(-2)), 1 / (1 + np.exp(1))])
    assert all("softmax" not in r for r in sig) and sum(r["sigmoid"] for r in sig) != pytest.approx(1)
    assert all(set(r) == {"image", "text", "cosine"} for r in similarity_rows(["x"], ["p", "q"], outputs, "none"))
