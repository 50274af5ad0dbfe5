"""``mmship serve B1 B2 ...`` and ``mmship deploy B1 B2``: which bundles, under which names,
at which precisions; the run gate the engines share."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mmship.core.bundle import Bundle
from mmship.core.cli.app import main
from mmship.core.errors import ConfigError, MmshipError
from mmship.serving.engine import GraphRunner
from mmship.serving.served_bundles import (
    ServedBundle,
    load_bundles,
    parse_bundle_args,
    parse_precisions,
    run_gate,
)


def fake_bundle(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "mmship.yaml").write_text("name: x\n")
    return folder


def test_paths_names_and_folders_of_bundles(tmp_path):
    one = fake_bundle(tmp_path / "one")
    shelf = tmp_path / "shelf"
    second, first = fake_bundle(shelf / "zeta"), fake_bundle(shelf / "alpha")
    (shelf / "notes").mkdir()  # no mmship.yaml: not a bundle, left out
    assert parse_bundle_args([str(one), f"clip={one}", str(shelf)]) == [
        ServedBundle(one), ServedBundle(one, "clip"), ServedBundle(first), ServedBundle(second),
    ]


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("missing", "is not a folder"),
        ("empty", "holds no bundle"),
        ("bad name={one}", "cannot be served"),
        ("../x={one}", "cannot be served"),
        ("shelf={shelf}", "holds 2 bundles; a name names one"),
    ],
)
def test_bundle_arguments_that_cannot_be_served(tmp_path, arg, message):
    one = fake_bundle(tmp_path / "one")
    shelf = tmp_path / "shelf"
    fake_bundle(shelf / "a"), fake_bundle(shelf / "b")
    (tmp_path / "empty").mkdir()
    text = arg.format(one=one, shelf=shelf)
    with pytest.raises(ConfigError, match=message) as info:
        parse_bundle_args([str(tmp_path / text) if "=" not in text else text])
    assert info.value.hint


def test_two_bundles_with_one_name_are_refused_with_the_fix(tiny_clip_bundle):
    name = Bundle.load(tiny_clip_bundle).manifest.name
    with pytest.raises(ConfigError, match=f"two bundles would be served as '{name}'") as info:
        load_bundles(parse_bundle_args([str(tiny_clip_bundle), str(tiny_clip_bundle)]))
    assert f"{name}-2=" in info.value.hint
    named = load_bundles(parse_bundle_args([str(tiny_clip_bundle), f"other={tiny_clip_bundle}"]))
    assert [n for n, _ in named] == [name, "other"]


def test_precisions_for_every_model_and_for_one():
    assert parse_precisions([]) == (None, {})
    assert parse_precisions(["int8", "siglip=fp32", "clip=fp16"]) == ("int8", {"siglip": "fp32", "clip": "fp16"})
    with pytest.raises(ConfigError, match="given twice"):
        parse_precisions(["int8", "fp32"])


def test_a_precision_for_a_model_not_served_is_refused(tiny_clip_bundle):
    from mmship.serving.serve import build_engines
    from mmship.serving.settings import ServerSettings

    with pytest.raises(ConfigError, match="'nope', which is not served"):
        build_engines([tiny_clip_bundle], ServerSettings(), {"nope": "fp32"})


def test_serve_passes_every_bundle_name_and_precision(tiny_clip_bundle, monkeypatch):
    from mmship.serving import serve

    seen = {}

    def capture(bundles, settings, precisions, run_slots):
        seen.update(bundles=bundles, settings=settings, precisions=precisions, run_slots=run_slots)
        raise MmshipError("captured")

    monkeypatch.setattr(serve, "build_server", capture)
    args = ["serve", f"a={tiny_clip_bundle}", f"b={tiny_clip_bundle}", "--precision", "int8", "--precision", "b=fp32", "--run-slots", "0"]
    assert main(args) == 1
    assert seen["bundles"] == [f"a={tiny_clip_bundle}", f"b={tiny_clip_bundle}"]
    assert (seen["settings"].precision, seen["precisions"], seen["run_slots"]) == ("int8", {"b": "fp32"}, 0)
    assert seen["settings"].streams == 1
    assert main([*args, "--streams", "2"]) == 1
    assert seen["settings"].streams == 2
    assert main([*args, "--streams", "0"]) == 2  # refused by the flag's bound, before any bundle is loaded


def test_the_run_gate_lets_one_graph_run_at_a_time():
    assert run_gate(1, None) is None and run_gate(2, None) is None and run_gate(2, 0) is None
    gate = run_gate(2, 1)
    running, most = [0], [0]
    lock = threading.Lock()

    class Session:
        def run(self, feeds, outputs):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.02)
            with lock:
                running[0] -= 1
            return [feeds["x"]]

    from mmship.core.specs import GraphSpec, TensorSpec

    spec = TensorSpec(name="x", dtype="float32", shape=[-1, 1], modality="image")
    out = TensorSpec(name="y", dtype="float32", shape=[-1, 1], modality="image")
    runners = [
        GraphRunner(spec=GraphSpec(name=f"g{i}", inputs=["x"], outputs=["y"]), inputs=[spec], outputs=[out], session=Session(), gate=gate)
        for i in range(2)
    ]
    threads = [threading.Thread(target=lambda r=r: [r({"x": np.ones((1, 1))}) for _ in range(5)]) for r in runners * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1
    runners[0].gate = None  # without the gate the same runs overlap
    runners[1].gate = None
    threads = [threading.Thread(target=lambda r=r: [r({"x": np.ones((1, 1))}) for _ in range(5)]) for r in runners * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] > 1


def test_deploy_several_bundles_to_local_and_refused_elsewhere(tiny_clip_bundle, tiny_siglip_bundle, capsys):
    clip, siglip = (Bundle.load(b).manifest.name for b in (tiny_clip_bundle, tiny_siglip_bundle))
    assert main(["deploy", str(tiny_clip_bundle), str(tiny_siglip_bundle), "--target", "local", "--dry-run"]) == 0
    out = capsys.readouterr().out.replace("\n", "")
    assert f"serve {clip}, {siglip} at" in out
    assert str(tiny_clip_bundle) in out and str(tiny_siglip_bundle) in out
    assert main(["deploy", str(tiny_clip_bundle), str(tiny_siglip_bundle), "--target", "triton", "--out", "x", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "deploys one bundle at a time, got 2" in err and "(local, ray)" in err
