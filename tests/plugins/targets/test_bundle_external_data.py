"""ONNX external data: a graph may keep its weights in files beside it, inside the bundle.
A location that is absolute or climbs out with ``..`` is refused by the engine (which hands
onnxruntime the verified bytes of the graph and of each external file) and by the Triton
target (which copies only verified files of the bundle). The attack inputs are graphs whose
initializer points at a secret next to the bundle, with a manifest whose checksums match."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx.external_data_helper import set_external_data

from mmship.core.bundle import MANIFEST, Bundle
from mmship.core.config import DeployConfig
from mmship.core.errors import BundleError
from mmship.plugins.targets.triton.target import TritonSettings, TritonTarget
from mmship.serving.engine import Engine

TEXT = "graphs/text.fp32.onnx"
FEEDS = {"input_ids": np.arange(14, dtype=np.int64).reshape(2, 7)}


def externalize(bundle: Path, location: str, data_at: Path) -> None:
    """Move the fp32 text graph's weight ``W`` into ``data_at``, recorded as ``location``,
    then rewrite the manifest's checksums (listing ``data_at`` when it is inside)."""
    model = onnx.load(str(bundle / TEXT))
    weight = next(t for t in model.graph.initializer if t.name == "W")
    data_at.parent.mkdir(parents=True, exist_ok=True)
    data_at.write_bytes(weight.raw_data)
    set_external_data(weight, location=location, offset=0, length=len(weight.raw_data))
    weight.ClearField("raw_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    (bundle / TEXT).write_bytes(model.SerializeToString())
    manifest = yaml.safe_load((bundle / MANIFEST).read_text())
    files = set(manifest["files"])
    if data_at.resolve().is_relative_to(bundle.resolve()):
        files.add(data_at.resolve().relative_to(bundle.resolve()).as_posix())
    manifest["files"] = {rel: hashlib.sha256((bundle / rel).read_bytes()).hexdigest() for rel in sorted(files)}
    (bundle / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False))


@pytest.fixture
def bundle(graphs_bundle: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "models" / "bundle"
    shutil.copytree(graphs_bundle, copy)
    return copy


def expected_text_embeds(bundle: Path) -> np.ndarray:
    return Engine(Bundle.load(bundle), precision="fp32", threads=1).graphs["text"](FEEDS)["text_embeds"]


def triton(bundle: Path, out: Path):
    target = TritonTarget(TritonSettings(out=out, precision="fp32"))
    loaded = Bundle.load(bundle)
    config = DeployConfig.defaults("tiny")
    return target.deploy(loaded, config, target.plan(loaded, config))


def test_external_data_inside_the_bundle_is_served_from_verified_bytes(bundle: Path, tmp_path: Path, monkeypatch):
    expected = expected_text_embeds(bundle)
    externalize(bundle, "weights/text.bin", bundle / "graphs" / "weights" / "text.bin")
    monkeypatch.chdir(tmp_path)  # onnxruntime would look beside the working directory: nothing there
    got = Engine(Bundle.load(bundle), precision="fp32", threads=1).graphs["text"](FEEDS)["text_embeds"]
    np.testing.assert_array_equal(got, expected)
    out = tmp_path / "repo"
    triton(bundle, out)
    version = out / "tiny-clip-text" / "1"
    assert (version / "weights" / "text.bin").read_bytes() == (bundle / "graphs" / "weights" / "text.bin").read_bytes()


@pytest.mark.parametrize("location", ["../../secret.bin", "../secret.bin", "weights/../../../secret.bin"])
def test_external_data_climbing_out_of_the_bundle_is_refused(bundle: Path, tmp_path: Path, location: str):
    secret = (bundle / "graphs" / location).resolve()  # ('../secret.bin' lands inside the bundle: refused all the same)
    externalize(bundle, location, secret)
    loaded = Bundle.load(bundle)  # the manifest's own checks pass: the graph file is listed and intact
    with pytest.raises(BundleError) as info:
        Engine(loaded, precision="fp32", threads=1)
    assert f"keeps its data in {location!r}, which climbs out of its folder with '..'" in info.value.message
    out = tmp_path / "repo"
    with pytest.raises(BundleError):
        triton(bundle, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["models", *(["secret.bin"] if secret.parent == tmp_path else [])])


def test_external_data_at_an_absolute_path_is_refused(bundle: Path, tmp_path: Path):
    secret = tmp_path / "secret.bin"
    externalize(bundle, str(secret), secret)
    loaded = Bundle.load(bundle)
    with pytest.raises(BundleError, match="which is absolute"):
        Engine(loaded, precision="fp32", threads=1)
    with pytest.raises(BundleError, match="which is absolute"):
        triton(bundle, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_external_data_in_an_unlisted_file_is_refused(bundle: Path, tmp_path: Path):
    """A file beside the graph that the manifest does not list (dropped in after the
    build, after the tree check): read through the bundle, it is refused."""
    externalize(bundle, "w.bin", bundle / "graphs" / "w.bin")
    loaded = Bundle.load(bundle)
    manifest = loaded.manifest
    manifest.files.pop("graphs/w.bin")
    with pytest.raises(BundleError, match="graphs/w.bin is not among the files its manifest checksums"):
        Engine(loaded, precision="fp32", threads=1)
