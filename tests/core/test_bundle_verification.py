"""Bundles are checked against intent, not only accident. Each input is built the way an
attacker who can write the bundle folder would build it: the manifest rewritten with the
right sha256 for what it now names, so checksums alone would pass it."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from mmship.core.bundle import MANIFEST, Bundle
from mmship.core.errors import BundleError

TEXT_FP32 = "graphs/text.fp32.onnx"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rewrite_manifest(bundle: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit mmship.yaml as an attacker would: change it, then make every checksum match
    what the entries now point at (absolute and ``..`` paths resolved the way a naive
    loader would join them)."""
    manifest = yaml.safe_load((bundle / MANIFEST).read_text())
    change(manifest)
    manifest["files"] = {rel: sha256(bundle / rel) for rel in manifest["files"]}
    (bundle / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False))


@pytest.fixture
def bundle(graphs_bundle: Path, tmp_path: Path) -> Path:
    """A private copy of the two-graph test bundle (fp32 + int8) inside ``tmp_path/b``."""
    copy = tmp_path / "b" / "bundle"
    shutil.copytree(graphs_bundle, copy)
    Bundle.load(copy)  # a clean copy loads
    return copy


def point_text_graph_at(target: str) -> Callable[[dict[str, Any]], None]:
    def change(manifest: dict[str, Any]) -> None:
        for graph in manifest["graphs"]:
            if graph["file"] == TEXT_FP32:
                graph["file"] = target
        manifest["files"][target] = ""

    return change


def test_a_graph_entry_pointing_at_an_absolute_path_is_refused(bundle: Path):
    outside = bundle.parent / "hostname"
    outside.write_text("secret-host\n")
    rewrite_manifest(bundle, point_text_graph_at(str(outside)))
    with pytest.raises(BundleError) as info:
        Bundle.load(bundle)
    assert "is absolute" in info.value.message and str(outside) in info.value.message


def test_a_graph_entry_climbing_out_with_dotdot_is_refused(bundle: Path):
    shutil.copy(bundle / TEXT_FP32, bundle.parent / "x.onnx")
    rewrite_manifest(bundle, point_text_graph_at("../x.onnx"))
    with pytest.raises(BundleError) as info:
        Bundle.load(bundle)
    assert "'../x.onnx' climbs out of its folder with '..'" in info.value.message


def test_a_graph_not_among_the_checksummed_files_is_refused(bundle: Path):
    def change(manifest: dict[str, Any]) -> None:
        for graph in manifest["graphs"]:
            if graph["file"] == TEXT_FP32:
                graph["file"] = "graphs/text.int8.onnx.unlisted"

    rewrite_manifest(bundle, change)
    with pytest.raises(BundleError, match="not among the files the manifest checksums"):
        Bundle.load(bundle, verify=False)  # even without hashing: the paths are checked


def test_a_symlink_to_an_identical_file_outside_is_refused(bundle: Path):
    """Same bytes, so the checksum matches: the link itself is what is refused."""
    outside = bundle.parent / "text.onnx"
    shutil.copy(bundle / TEXT_FP32, outside)
    (bundle / TEXT_FP32).unlink()
    (bundle / TEXT_FP32).symlink_to(outside)
    with pytest.raises(BundleError) as info:
        Bundle.load(bundle)
    assert f"holds a symlink: {TEXT_FP32} -> {outside}" in info.value.message
    assert "cp -L" in info.value.hint


def test_a_symlinked_folder_is_refused(bundle: Path):
    outside = bundle.parent / "graphs-elsewhere"
    shutil.move(bundle / "graphs", outside)
    (bundle / "graphs").symlink_to(outside, target_is_directory=True)
    with pytest.raises(BundleError, match="holds a symlink: graphs ->"):
        Bundle.load(bundle)


def test_a_symlinked_manifest_is_refused(bundle: Path):
    outside = bundle.parent / "mmship.yaml"
    shutil.move(bundle / MANIFEST, outside)
    (bundle / MANIFEST).symlink_to(outside)
    with pytest.raises(BundleError, match="is a symlink"):
        Bundle.load(bundle)


@pytest.mark.parametrize("added", ["processor/added_tokens.json", "graphs/evil.onnx", ".hidden", "new/deep/file.bin"])
def test_files_added_after_the_build_are_refused(bundle: Path, added: str):
    (bundle / added).parent.mkdir(parents=True, exist_ok=True)
    (bundle / added).write_bytes(b"{}")
    with pytest.raises(BundleError) as info:
        Bundle.load(bundle)
    assert f"holds {added}, which its manifest does not list: it was added after the build" in info.value.message
    assert f"remove {added}" in info.value.hint


def test_a_fifo_in_the_bundle_is_refused(bundle: Path):
    os.mkfifo(bundle / "processor" / "pipe")
    with pytest.raises(BundleError, match="not a regular file"):
        Bundle.load(bundle)


def test_read_hands_over_the_hashed_bytes_and_nothing_else(bundle: Path):
    loaded = Bundle.load(bundle)
    assert loaded.read(TEXT_FP32) == (bundle / TEXT_FP32).read_bytes()
    assert loaded.read(loaded.path(TEXT_FP32)) == (bundle / TEXT_FP32).read_bytes()
    (bundle.parent / "secret").write_text("s")
    for outside in ("../secret", str(bundle.parent / "secret"), bundle.parent / "secret"):
        with pytest.raises(BundleError):
            loaded.read(outside)
    (bundle / "graphs" / "late.onnx").write_bytes(b"x")
    with pytest.raises(BundleError, match="not among the files its manifest checksums"):
        loaded.read("graphs/late.onnx")


def test_a_graph_swapped_after_verification_is_not_loaded(bundle: Path):
    """Time of check vs time of use: the file is replaced (same size, other weights)
    between Bundle.load and the engine's load. The runtime is handed the bytes that were
    hashed, so the swap is caught instead of served."""
    from mmship.serving.engine import Engine

    loaded = Bundle.load(bundle)
    honest = Engine(loaded, precision="fp32", threads=1).graphs["text"]({"input_ids": np.ones((1, 7), np.int64)})
    swapped = (bundle / TEXT_FP32).read_bytes()
    weights = np.linspace(-1, 1, 7 * 4, dtype=np.float32).tobytes()
    assert weights in swapped
    (bundle / TEXT_FP32).write_bytes(swapped.replace(weights, (np.frombuffer(weights, np.float32) * 3).tobytes()))
    with pytest.raises(BundleError, match=f"failed its checksum: {TEXT_FP32}"):
        Engine(loaded, precision="fp32", threads=1)
    (bundle / TEXT_FP32).write_bytes(swapped)
    again = Engine(loaded, precision="fp32", threads=1).graphs["text"]({"input_ids": np.ones((1, 7), np.int64)})
    np.testing.assert_array_equal(again["text_embeds"], honest["text_embeds"])


def test_files_hashed_at_the_same_time_give_each_its_own_checksum(bundle: Path, monkeypatch):
    from mmship.core import bundle_files

    manifest = yaml.safe_load((bundle / MANIFEST).read_text())
    listed = sorted(manifest["files"])
    monkeypatch.setattr(bundle_files.os, "cpu_count", lambda: 4)  # several threads even on a one-core runner
    assert bundle_files.sha256_files([bundle / rel for rel in listed]) == [sha256(bundle / rel) for rel in listed]
    # two files damaged: the error names the first in name order, whichever thread finished first
    graphs = sorted(rel for rel in listed if rel.startswith("graphs/"))
    for rel in graphs[:2]:
        data = bytearray((bundle / rel).read_bytes())
        data[-1] ^= 0xFF
        (bundle / rel).write_bytes(bytes(data))
    with pytest.raises(BundleError) as info:
        Bundle.load(bundle)
    assert graphs[0] in info.value.message and graphs[1] not in info.value.message
