"""The OpenVINO runtime and its build-time variants, on a tiny CLIP: variants built,
checksummed and validated; the fastest verified variant per tower chosen, recorded and
served; overrides; the onnxruntime fallback; HTTP answers; Triton; inspect."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("openvino", reason="the openvino extra is part of the dev install")
pytest.importorskip("nncf", reason="the openvino-build extra is part of the dev install")

from mmship.core.bundle import MANIFEST, Bundle, ChosenVariant  # noqa: E402
from mmship.core.errors import BundleError, MmshipError, RuntimeUnavailableError  # noqa: E402
from mmship.core.pipeline import BuildRequest, build  # noqa: E402
from mmship.core.stages import OptimizeOptions  # noqa: E402
from mmship.core.variants import variant_key  # noqa: E402
from mmship.evaluation.variants import REMATCH_WITHIN  # noqa: E402
from mmship.plugins.runtimes.openvino import OpenVinoRuntime  # noqa: E402
from mmship.serving.engine import Engine  # noqa: E402

OV_PRECISIONS = {"fp32", "bf16", "int8"}


@pytest.fixture(scope="module")
def ov_bundle(tiny_clip_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default build: onnxruntime fp32 + int8 and OpenVINO's variants, timed."""
    out = tmp_path_factory.mktemp("ov") / "bundle"
    return build(BuildRequest(source=str(tiny_clip_dir), out=out, optimize=OptimizeOptions(level="none")))


def _copy(bundle: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    return copy


def _has_bf16() -> bool:
    from mmship.plugins.stages.openvino_variants import has_bf16

    return has_bf16()


def test_openvino_variants_are_built_validated_and_checksummed(ov_bundle):
    bundle = Bundle.load(ov_bundle)
    m = bundle.manifest
    assert m.format_version == 3
    ov = [g for g in m.graphs if g.runtime == "openvino"]
    expected = OV_PRECISIONS if _has_bf16() else OV_PRECISIONS - {"bf16"}
    assert {g.precision for g in ov if g.name == "image"} == expected
    assert {g.precision for g in ov if g.name == "text"} == expected
    for graph in ov:
        assert graph.file.endswith(".xml")
        assert graph.file in m.files and graph.file.removesuffix(".xml") + ".bin" in m.files  # both checksummed
        assert graph.accuracy["mean_cosine"] >= 0.99, graph
        assert graph.timing_ms["batch1"] > 0 and graph.timing_ms["batch"] > 0 and graph.timing_ms["batch_size"] == 16
    fp32 = next(g for g in ov if g.name == "image" and g.precision == "fp32")
    assert fp32.runtime_options == {"INFERENCE_PRECISION_HINT": "f32"}
    if _has_bf16():  # the bf16 variant is the fp32 IR loaded with another hint: one file, checksummed once
        bf16 = next(g for g in ov if g.name == "image" and g.precision == "bf16")
        assert bf16.file == fp32.file and bf16.runtime_options == {"INFERENCE_PRECISION_HINT": "bf16"}
    for key in ("openvino-fp32", "openvino-int8"):
        assert bundle.report["accuracy"][key]["accuracy_loss"] <= 0.005
        assert f"image.{key}" in bundle.report["batches"]  # ran at batch 1 and 32


def test_a_changed_openvino_weight_file_is_refused(ov_bundle, tmp_path):
    copy = _copy(ov_bundle, tmp_path)
    weights = copy / "graphs" / "image.openvino-int8.bin"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="image.openvino-int8.bin"):
        Bundle.load(copy)


def test_the_fastest_verified_variant_is_chosen_and_served_by_default(ov_bundle):
    bundle = Bundle.load(ov_bundle)
    m = bundle.manifest
    assert set(m.chosen) == {"image", "text"}
    rematches = {r["tower"]: r for r in bundle.report["head_to_head"]}
    for tower, chosen in m.chosen.items():
        timed = sorted((g for g in m.graphs if g.name == tower and g.timing_ms),
                       key=lambda g: (g.timing_ms["batch"], g.timing_ms["batch1"]))
        assert len(timed) == len([g for g in m.graphs if g.name == tower]) >= 4  # every variant measured
        fastest = timed[0]
        key = variant_key(chosen.runtime, chosen.precision)
        served = next(g for g in timed if (g.runtime, g.precision) == (chosen.runtime, chosen.precision))
        assert chosen.batch_size == 16 and chosen.mean_cosine == served.accuracy["mean_cosine"]
        close = [g for g in timed if g.timing_ms["batch"] <= REMATCH_WITHIN * fastest.timing_ms["batch"]]
        assert (tower in rematches) == (len(close) > 1)  # close calls, and only those, are timed again
        if len(close) > 1:  # the head-to-head figures decide among them
            rematch = rematches[tower]
            assert set(rematch["ms"]) == {variant_key(g.runtime, g.precision) for g in close}
            assert key in rematch["ms"] and chosen.batch_ms == rematch["ms"][key] and "head to head" in chosen.reason
        else:
            assert served == fastest and chosen.batch_ms == fastest.timing_ms["batch"] and "fastest of" in chosen.reason
    engine = Engine(bundle)
    for tower, chosen in m.chosen.items():
        runner = engine.graphs[tower]
        assert (runner.runtime, runner.precision) == (chosen.runtime, chosen.precision)
    assert engine.notes == []


def test_runtime_and_precision_override_the_choice(ov_bundle):
    bundle = Bundle.load(ov_bundle)
    engine = Engine(bundle, runtime="openvino", precision="int8")
    assert {(g.runtime, g.precision) for g in engine.graphs.values()} == {("openvino", "int8")}
    assert engine.precision == "int8"
    assert {g.runtime for g in Engine(bundle, runtime="onnxruntime").graphs.values()} == {"onnxruntime"}
    assert {g.precision for g in Engine(bundle, precision="fp32").graphs.values()} == {"fp32"}
    with pytest.raises(BundleError) as info:
        Engine(bundle, runtime="onnxruntime", precision="bf16")
    assert "no bf16 graph on onnxruntime" in info.value.message and "openvino: fp32" in info.value.message


def test_openvino_and_onnxruntime_give_the_same_embeddings(ov_bundle):
    from mmship.evaluation.feeds import probe_feeds

    bundle = Bundle.load(ov_bundle)
    ort, ov = Engine(bundle, runtime="onnxruntime", precision="fp32"), Engine(bundle, runtime="openvino", precision="fp32")
    m = bundle.manifest
    for tower in ("image", "text"):
        inputs = ort.graphs[tower].inputs
        feeds = probe_feeds(inputs, m.preprocess, bundle.path("processor"))
        a, b = ort.graphs[tower](feeds), ov.graphs[tower](feeds)
        for name in a:
            np.testing.assert_allclose(b[name], a[name], rtol=1e-4, atol=1e-5)
    # two threads on one session each get their own infer request
    from concurrent.futures import ThreadPoolExecutor

    runner = ov.graphs["image"]
    feeds = probe_feeds(runner.inputs, m.preprocess, bundle.path("processor"))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: runner(feeds)["image_embeds"], range(8)))
    for result in results:
        np.testing.assert_array_equal(result, results[0])


def test_without_openvino_the_chosen_variant_falls_back_to_onnxruntime(ov_bundle, monkeypatch):
    bundle = Bundle.load(ov_bundle)
    bundle.manifest.chosen = {
        tower: ChosenVariant(runtime="openvino", precision="int8") for tower in ("image", "text")
    }
    assert {g.runtime for g in Engine(bundle).graphs.values()} == {"openvino"}
    monkeypatch.setattr(OpenVinoRuntime, "available", classmethod(lambda cls: False))
    engine = Engine(bundle)
    assert {(g.runtime, g.precision) for g in engine.graphs.values()} == {("onnxruntime", "int8")}
    assert len(engine.notes) == 2 and all("openvino is not installed here" in n for n in engine.notes)
    assert "instead of openvino int8" in engine.notes[0]
    with pytest.raises(RuntimeUnavailableError) as info:  # named: no silent fallback
        Engine(bundle, runtime="openvino")
    assert "mmship[openvino]" in info.value.hint
    bf16_only = Bundle.load(ov_bundle)
    bf16_only.manifest.graphs = [g for g in bf16_only.manifest.graphs if g.runtime == "openvino" or g.precision == "fp32"]
    if _has_bf16():
        with pytest.raises(RuntimeUnavailableError, match="needs openvino"):
            Engine(bf16_only, precision="bf16")


def test_a_bundle_may_set_only_known_openvino_options(ov_bundle, tmp_path):
    copy = _copy(ov_bundle, tmp_path)
    manifest = yaml.safe_load((copy / MANIFEST).read_text())
    for graph in manifest["graphs"]:
        if graph["runtime"] == "openvino":
            graph["runtime_options"] = {"CACHE_DIR": "/tmp/anywhere"}
    (copy / MANIFEST).write_text(yaml.safe_dump(manifest))
    with pytest.raises(BundleError) as info:
        Engine(Bundle.load(copy), runtime="openvino", precision="fp32")
    assert "CACHE_DIR" in info.value.message and "INFERENCE_PRECISION_HINT" in info.value.message


def test_openvino_is_cpu_only_and_says_so():
    with pytest.raises(RuntimeUnavailableError, match="CPU only"):
        OpenVinoRuntime().providers("cuda")


def test_served_over_http_with_the_same_answers(ov_bundle):
    import httpx

    from tests.helpers.servers import running_server

    texts = ["a photo of a cat", "a cup of coffee", "a rocket"]
    answers = {}
    for runtime in ("onnxruntime", "openvino"):
        with running_server(ov_bundle, runtime=runtime, precision="fp32", max_delay_ms=2) as url:
            response = httpx.post(f"{url}/embed", json={"texts": texts})
            assert response.status_code == 200, response.text
            answers[runtime] = np.array(response.json()["text_embeds"])
            bad = httpx.post(f"{url}/embed", json={"texts": []})
            assert 400 <= bad.status_code < 500  # same error handling on either runtime
            metrics = httpx.get(f"{url}/metrics").text
            assert "mmship" in metrics
    np.testing.assert_allclose(answers["openvino"], answers["onnxruntime"], rtol=1e-4, atol=1e-5)


def test_streams_split_openvino_graphs_and_leave_onnxruntime_graphs_one_at_a_time(ov_bundle):
    bundle = Bundle.load(ov_bundle)
    for streams, hint in ((1, "LATENCY"), (2, "THROUGHPUT")):
        engine = Engine(bundle, runtime="openvino", precision="int8", threads=2, streams=streams)
        for runner in engine.graphs.values():
            compiled = runner.session.compiled
            assert runner.streams == streams
            assert (compiled.get_property("NUM_STREAMS"), str(compiled.get_property("PERFORMANCE_HINT"))) == (streams, hint)
            if streams == 1:
                assert runner.alone is None
            else:  # a lone request runs on a one-stream session with every thread
                alone = runner.alone.compiled
                assert (alone.get_property("NUM_STREAMS"), str(alone.get_property("PERFORMANCE_HINT"))) == (1, "LATENCY")
                assert alone.get_property("INFERENCE_NUM_THREADS") == 2
        assert not any("streams" in note for note in engine.notes)
    ort = Engine(bundle, runtime="onnxruntime", precision="fp32", streams=2)
    assert {runner.streams for runner in ort.graphs.values()} == {1}
    assert any("onnxruntime has no streams; its graphs run one batch at a time" in note for note in ort.notes)


def test_a_server_with_two_streams_answers_as_one_with_one(ov_bundle):
    import asyncio

    import httpx

    from tests.helpers.servers import running_server

    texts = [f"a photo of {n} cats" for n in range(12)]

    async def concurrently(url: str) -> list[list[float]]:
        async with httpx.AsyncClient(timeout=30) as client:
            answers = await asyncio.gather(*(client.post(f"{url}/embed", json={"texts": [t]}) for t in texts))
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        return [a.json()["text_embeds"][0] for a in answers]

    answers = {}
    for streams in (1, 2):
        with running_server(ov_bundle, runtime="openvino", precision="fp32", streams=streams, max_batch_size=2) as url:
            answers[streams] = np.array(asyncio.run(concurrently(url)))
    np.testing.assert_allclose(answers[2], answers[1], rtol=1e-4, atol=1e-5)


def test_naming_a_runtime_and_precision_builds_and_times_only_that(tiny_clip_dir, tmp_path):
    path = build(BuildRequest(
        source=str(tiny_clip_dir), out=tmp_path / "b", runtimes=["openvino"], precisions=["int8"],
        optimize=OptimizeOptions(level="none"),
    ))
    m = Bundle.load(path).manifest
    assert sorted((g.name, g.runtime, g.precision) for g in m.graphs) == [
        ("image", "onnxruntime", "fp32"), ("image", "openvino", "int8"),  # fp32: reference and fallback
        ("text", "onnxruntime", "fp32"), ("text", "openvino", "int8"),
    ]
    assert [bool(g.timing_ms) for g in m.graphs if g.runtime == "onnxruntime"] == [False, False]
    assert {(c.runtime, c.precision) for c in m.chosen.values()} == {("openvino", "int8")}


def test_a_build_without_openvino_leaves_its_variants_out(tiny_clip_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(OpenVinoRuntime, "available", classmethod(lambda cls: False))
    path = build(BuildRequest(
        source=str(tiny_clip_dir), out=tmp_path / "b", optimize=OptimizeOptions(level="none"), measure=False,
    ))
    bundle = Bundle.load(path)
    assert {g.runtime for g in bundle.manifest.graphs} == {"onnxruntime"}
    assert any("no openvino variants" in note for note in bundle.report["variant_notes"])
    with pytest.raises(MmshipError, match="openvino is not installed here"):
        build(BuildRequest(source=str(tiny_clip_dir), out=tmp_path / "c", runtimes=["openvino"]))


def test_triton_writes_an_openvino_backend_config(ov_bundle, tmp_path):
    from mmship.core.config import DeployConfig
    from mmship.plugins.targets.triton.target import TritonSettings, TritonTarget

    bundle = Bundle.load(ov_bundle)
    precision = "bf16" if _has_bf16() else "int8"
    target = TritonTarget(TritonSettings(out=tmp_path / "repo", runtime="openvino", precision=precision))
    config = DeployConfig.defaults(bundle.manifest.name)
    target.deploy(bundle, config, target.plan(bundle, config))
    for tower in ("image", "text"):
        folder = tmp_path / "repo" / f"{bundle.manifest.name}-{tower}"
        text = (folder / "config.pbtxt").read_text()
        assert 'backend: "openvino"' in text and "platform" not in text
        assert 'key: "PERFORMANCE_HINT" value: { string_value: "LATENCY" }' in text
        assert ('key: "HINT_BF16"' in text) == (precision == "bf16")
        assert sorted(p.name for p in (folder / "1").iterdir()) == ["model.bin", "model.xml"]
        source = bundle.path(bundle.manifest.graph(tower, precision, "openvino").file)
        assert (folder / "1" / "model.bin").read_bytes() == source.with_suffix(".bin").read_bytes()


def test_inspect_shows_the_variants_table(ov_bundle):
    from typer.testing import CliRunner

    from mmship.core.cli.app import build_app

    result = CliRunner().invoke(build_app(), ["inspect", str(ov_bundle)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "graph variants" in result.output
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.output.splitlines() if line.startswith("│")]
    ov_int8 = [row for row in rows if row[1:3] == ["openvino", "int8"]]
    assert sorted(row[0].rstrip("*") for row in ov_int8) == ["image", "text"]
    assert all(float(row[5]) >= 0.99 and float(row[6]) > 0 for row in ov_int8)  # cosine, ms b1
    bundle = Bundle.load(ov_bundle)
    for tower, c in bundle.manifest.chosen.items():
        assert f"served by default: {tower} on {c.runtime} {c.precision}" in result.output
        assert [row[1:3] for row in rows if row[0] == f"{tower}*"] == [[c.runtime, c.precision]]
    # the head-to-head figure beside each variant that was timed again, "-" beside the others
    rematched = {(r["tower"], key): ms for r in bundle.report["head_to_head"] for key, ms in r["ms"].items()}
    variant_rows = [row for row in rows if len(row) == 10]  # the variants table's, not the others'
    assert len(variant_rows) == len(bundle.manifest.graphs)
    for row in variant_rows:
        expected = rematched.get((row[0].rstrip("*"), variant_key(row[1], row[2])))
        assert row[8] == (f"{expected:.1f}" if expected is not None else "-"), row


def test_serving_openvino_variants_needs_no_build_side_package(ov_bundle):
    """The runtime plugin is what serving imports: NNCF (and what it pulls in) stays out."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mmship.core.bundle import Bundle\n"
        "from mmship.serving.engine import Engine\n"
        f"engine = Engine(Bundle.load({str(ov_bundle)!r}), runtime='openvino', precision='int8')\n"
        "assert {g.runtime for g in engine.graphs.values()} == {'openvino'}\n"
        "print(sorted(m for m in ('nncf', 'openvino_telemetry') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_checks_load_each_graph_once_and_hold_one_variant_at_a_time(tiny_clip_dir, tmp_path, monkeypatch):
    from mmship.evaluation import sessions as sessions_module

    loaded: list[tuple[str, str]] = []
    held: list[int] = []
    real_load = sessions_module.load_graph
    real_get = sessions_module.GraphSessions.get

    def counting_load(graph, threads=None):
        loaded.append((Path(graph.path).name, str(sorted(graph.runtime_options.items()))))
        return real_load(graph, threads)

    def watching_get(self, graph):
        session = real_get(self, graph)
        held.append(len(self))
        return session

    from mmship.evaluation import accuracy as accuracy_module

    prepared: list[tuple[str, ...]] = []
    real_feeds = accuracy_module.probe_feeds

    def counting_feeds(inputs, preprocess, processor_dir):
        prepared.append(tuple(s.name for s in inputs))
        return real_feeds(inputs, preprocess, processor_dir)

    monkeypatch.setattr(sessions_module, "load_graph", counting_load)
    monkeypatch.setattr(sessions_module.GraphSessions, "get", watching_get)
    monkeypatch.setattr(accuracy_module, "probe_feeds", counting_feeds)
    path = build(BuildRequest(source=str(tiny_clip_dir), out=tmp_path / "b", optimize=OptimizeOptions(level="none")))
    bundle = Bundle.load(path)
    variants = {(g.runtime, g.precision) for g in bundle.manifest.graphs}
    assert len(variants) >= 4  # onnxruntime fp32 + int8, OpenVINO fp32 (+ bf16) + int8
    checks = loaded[: 2 * len(variants)]
    assert len(checks) == len(set(checks)) == 2 * len(variants), loaded  # every tower of every variant, once
    # then only a close call is loaded again: the two variants of one tower timed head to head
    # (the fp32 reference's sessions are kept throughout)
    rematched = [[key for key in r["ms"] if key != "fp32"] for r in bundle.report["head_to_head"]]
    assert len(loaded) == len(checks) + sum(len(keys) for keys in rematched)
    # the fp32 reference's two towers and one other variant's, or one tower's close variants
    assert max(held) <= 2 + max([2, *(len(keys) for keys in rematched)]) < 2 * len(variants)
    assert sorted(prepared) == [("input_ids", "attention_mask"), ("pixel_values",)]  # probe feeds once per tower


def test_a_build_for_openvino_keeps_the_fp32_reference_as_exported(ov_bundle, tiny_clip_dir, tmp_path):
    path = build(BuildRequest(
        source=str(tiny_clip_dir), out=tmp_path / "b", runtimes=["openvino"], precisions=["int8"], measure=False,
    ))
    optimized = Bundle.load(path).report["optimize"]
    assert not any(key.endswith(".fp32") for key in optimized), optimized  # a reference only: not optimized
    assert {"image.fp32", "text.fp32"} <= set(Bundle.load(ov_bundle).report["optimize"])  # a candidate: it is


@pytest.mark.parametrize("tower", ["image", "text"])
def test_calibration_statistics_reduced_in_python_give_nncfs_default_int8_graph(ov_bundle, tmp_path, monkeypatch, tower):
    """The build has NNCF reduce the calibration activations in Python (its in-graph reductions
    cost ~10 s of compilation per full-size tower): the int8 graph must be the one NNCF's
    default makes, answer for answer."""
    from mmship.core.specs import ExportedGraph
    from mmship.core.stages import QuantizeOptions
    from mmship.evaluation.feeds import probe_feeds
    from mmship.plugins.runtimes.openvino import core
    from mmship.plugins.stages import openvino_variants

    bundle = Bundle.load(ov_bundle)
    m = bundle.manifest
    reference = next(g for g in m.graphs if g.name == tower and g.runtime == "onnxruntime" and g.precision == "fp32")
    specs = {s.name: s for s in [*m.inputs, *m.outputs]}
    graph = ExportedGraph(
        name=tower, path=bundle.path(reference.file), runtime="openvino",
        inputs=[specs[n] for n in reference.inputs], outputs=[specs[n] for n in reference.outputs],
    )
    feeds = probe_feeds(graph.inputs, m.preprocess, bundle.path("processor"))
    np.savez(tmp_path / f"{tower}.npz", **feeds)
    options = QuantizeOptions(calibration_dir=tmp_path)
    answers = {}
    for inplace in (True, False):
        monkeypatch.setattr(openvino_variants, "INPLACE_STATISTICS", inplace)
        path = openvino_variants.to_int8(graph, tmp_path / f"{tower}-{inplace}.xml", options, None)
        compiled = core().compile_model(core().read_model(str(path)), "CPU")
        answers[inplace] = compiled({name: feeds[name] for name in reference.inputs})[0]
    np.testing.assert_array_equal(answers[True], answers[False])
