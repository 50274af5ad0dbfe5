"""The bundle format: checksums refuse tampering, writes are atomic, overwrite is explicit."""

from __future__ import annotations

import shutil

import pytest

from mmship.core.bundle import (
    MANIFEST,
    Bundle,
    BundleManifest,
    BundleWriter,
    SourceInfo,
)
from mmship.core.errors import BundleError
from mmship.core.specs import GraphSpec, ServingParams, TensorSpec


def manifest() -> BundleManifest:
    spec = TensorSpec(name="x", dtype="float32", shape=[-1, 4], modality="embedding")
    return BundleManifest(
        name="m", adapter="fixture", source=SourceInfo(path="/m"), inputs=[spec], outputs=[spec],
        graph_specs=[GraphSpec(name="g", inputs=["x"], outputs=["x"])], serving_params=ServingParams(),
    )


def write(dest, content=b"graph bytes", overwrite=False):
    with BundleWriter(dest, overwrite=overwrite) as writer:
        (writer.dir("graphs") / "g.fp32.onnx").write_bytes(content)
        return writer.commit(manifest(), {"parity": {"g": 1.0}})


def test_round_trip_with_checksums(tmp_path):
    path = write(tmp_path / "b")
    bundle = Bundle.load(path)
    assert set(bundle.manifest.files) == {"graphs/g.fp32.onnx", "report.json"}
    assert bundle.report == {"parity": {"g": 1.0}}


def test_one_changed_byte_is_refused_naming_the_file(tmp_path):
    path = write(tmp_path / "b")
    graph = path / "graphs" / "g.fp32.onnx"
    data = bytearray(graph.read_bytes())
    data[3] ^= 0x01
    graph.write_bytes(bytes(data))
    with pytest.raises(BundleError) as info:
        Bundle.load(path)
    assert "graphs/g.fp32.onnx" in info.value.message
    assert "checksum" in info.value.message
    Bundle.load(path, verify=False)  # still readable when asked not to verify


def test_missing_file_is_named(tmp_path):
    path = write(tmp_path / "b")
    (path / "report.json").unlink()
    with pytest.raises(BundleError, match="missing report.json"):
        Bundle.load(path)


def test_interrupted_write_leaves_nothing(tmp_path):
    dest = tmp_path / "b"
    with pytest.raises(RuntimeError):
        with BundleWriter(dest) as writer:
            (writer.dir("graphs") / "g.fp32.onnx").write_bytes(b"half")
            raise RuntimeError("killed mid-build")
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_bundle_needs_overwrite_and_survives_a_failed_rebuild(tmp_path):
    dest = write(tmp_path / "b", b"first")
    with pytest.raises(BundleError, match="already exists"):
        BundleWriter(dest)
    with pytest.raises(RuntimeError):
        with BundleWriter(dest, overwrite=True) as writer:
            (writer.dir("graphs") / "g.fp32.onnx").write_bytes(b"second")
            raise RuntimeError("failed")
    assert (dest / "graphs" / "g.fp32.onnx").read_bytes() == b"first"
    write(dest, b"third", overwrite=True)
    assert (dest / "graphs" / "g.fp32.onnx").read_bytes() == b"third"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="not an mmship bundle"):
        Bundle.load(tmp_path)


def test_unknown_precision_names_what_exists(tmp_path):
    bundle = Bundle.load(write(tmp_path / "b"))
    with pytest.raises(BundleError, match="no int8 graph"):
        bundle.manifest.graph("g", "int8")


def test_damaged_manifest(tmp_path):
    path = write(tmp_path / "b")
    (path / MANIFEST).write_text("name: [unclosed")
    with pytest.raises(BundleError, match="damaged"):
        Bundle.load(path)
    shutil.rmtree(path)


def test_a_newer_bundle_format_asks_for_an_upgrade_even_with_unknown_keys(tiny_clip_bundle, tmp_path):
    """A format-4 manifest with keys this mmship does not know says "upgrade", not "damaged"."""
    import shutil

    import yaml

    from mmship.core.bundle import MANIFEST, Bundle

    copy = tmp_path / "b"
    shutil.copytree(tiny_clip_bundle, copy)
    manifest = yaml.safe_load((copy / MANIFEST).read_text())
    assert manifest["format_version"] == 3
    manifest.update(format_version=4, signature={"by": "someone"})
    (copy / MANIFEST).write_text(yaml.safe_dump(manifest))
    with pytest.raises(BundleError) as info:
        Bundle.load(copy)
    assert "format 4" in info.value.message and info.value.hint == "upgrade mmship"


def test_a_format_1_manifest_without_kind_or_scoring_still_loads(tiny_clip_bundle, tmp_path):
    import shutil

    import yaml

    from mmship.core.bundle import MANIFEST, Bundle

    copy = tmp_path / "b"
    shutil.copytree(tiny_clip_bundle, copy)
    manifest = yaml.safe_load((copy / MANIFEST).read_text())
    for key in ("kind", "scoring"):
        manifest.pop(key, None)
    manifest["format_version"] = 1
    (copy / MANIFEST).write_text(yaml.safe_dump(manifest))
    loaded = Bundle.load(copy)
    assert loaded.manifest.kind == "graphs"
