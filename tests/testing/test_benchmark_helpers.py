"""The helpers of benchmarks/serve_clip.py: MAC counts, variant parsing, the infinity request
shape and model copy, memory readings and the report's ratios (no benchmark is run here)."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(autouse=True)
def _benchmarks_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))


def test_clip_macs_match_the_published_vit_b32_figure(tmp_path: Path) -> None:
    import cpu_peak
    from transformers import CLIPConfig

    config = tmp_path / "config.json"
    config.write_text(CLIPConfig().to_json_string())
    short, long = cpu_peak.clip_macs(config, 18), cpu_peak.clip_macs(config, 36)
    assert 4.3e9 < short["image"] < 4.5e9  # ViT-B/32 at 224 px: ~4.4 GMAC
    assert short["image"] == long["image"]
    # the text tower is linear in tokens but for the attention products (quadratic, small here)
    assert 1.95 < long["text"] / short["text"] < 2.1


def test_cpu_info_reads_flags_and_the_paper_peak_follows_them() -> None:
    import cpu_peak

    info = cpu_peak.cpu_info()
    assert set(info["flags"]) == set(cpu_peak.FLAGS)
    amx = {**info, "mhz": 2000.0, "flags": {flag: True for flag in cpu_peak.FLAGS}}
    avx2 = {**info, "mhz": 2000.0, "flags": {flag: flag == "avx2" for flag in cpu_peak.FLAGS}}
    assert cpu_peak.paper_int8_gops(amx, 2)[0] == 2 * 1024 * 2 * 2.0
    assert cpu_peak.paper_int8_gops(avx2, 2)[0] < cpu_peak.paper_int8_gops(amx, 2)[0]


def test_int8_matmul_timing_returns_a_rate() -> None:
    import cpu_peak

    assert cpu_peak._gops("MatMulInteger", (64, 64, 64), 1, 0.01) > 0
    assert cpu_peak._gops("MatMul", (64, 64, 64), 1, 0.01) > 0
    openvino = cpu_peak._openvino_int8_gops((64, 64, 64), 1, 0.01)
    assert (openvino is None) == (importlib.util.find_spec("openvino") is None)
    assert openvino is None or openvino > 0


def test_parse_variants() -> None:
    import serve_clip

    assert serve_clip.parse_variants("auto,onnxruntime:int8, openvino:bf16,") == [
        ("auto", "auto"), ("onnxruntime", "int8"), ("openvino", "bf16")]
    with pytest.raises(SystemExit, match="runtime:precision"):
        serve_clip.parse_variants("int8")


def test_infinity_requests_carry_the_image_as_a_data_uri() -> None:
    import infinity_baseline

    requests = infinity_baseline.requests("m", b"\xff\xd8jpeg-bytes", "a cat")
    image, text = json.loads(requests["image"].body), json.loads(requests["text"].body)
    assert requests["image"].path == requests["text"].path == "/embeddings"
    assert image["modality"] == "image" and image["model"] == "m"
    prefix = "data:image/jpeg;base64,"
    assert image["input"][0].startswith(prefix)
    assert base64.b64decode(image["input"][0][len(prefix):]) == b"\xff\xd8jpeg-bytes"
    assert text["input"] == ["a cat"]


def test_transformers4_copy_lifts_the_nested_image_processor(tiny_clip_dir: Path, tmp_path: Path) -> None:
    import infinity_baseline

    nested = json.loads((tiny_clip_dir / "processor_config.json").read_text())["image_processor"]
    copy = infinity_baseline.transformers4_copy(tiny_clip_dir, tmp_path / "t4")
    lifted = json.loads((copy / "preprocessor_config.json").read_text())
    assert lifted["image_processor_type"] == nested["image_processor_type"]
    assert lifted["size"] == nested["size"] and lifted["image_mean"] == nested["image_mean"]
    assert not (copy / "processor_config.json").exists()
    weights = next(tiny_clip_dir.glob("*.safetensors"))
    assert (copy / weights.name).read_bytes() == weights.read_bytes()
    # idempotent: a second call keeps the folder as it is
    infinity_baseline.transformers4_copy(tiny_clip_dir, tmp_path / "t4")


def test_memory_of_this_process() -> None:
    import serve_clip

    memory = serve_clip.memory_mb(os.getpid())
    assert memory["rss_mb"] > 10 and memory["peak_mb"] >= memory["rss_mb"] * 0.99
    assert serve_clip.memory_mb(2**22 + 12345) == {}  # no such process


def test_report_ratios_come_from_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    import serve_report

    def levels(image: float, text: float) -> dict:
        return {f"{m}@{c}": {"rps": r, "p50_ms": 10.0, "p95_ms": 20.0, "errors": 0}
                for m, r in (("image", image), ("text", text)) for c in (1, 16)}

    engine = {"image": 200.0, "text": 900.0, "image_b1_ms": 9.0, "text_b1_ms": 2.0, "batch": 16, "text_tokens": 18,
              "rss_mb": 400.0, "rss_before_mb": 100.0, "image_batch_ms": 80.0, "text_batch_ms": 18.0}
    results = {
        "mmship onnxruntime int8": {"levels": levels(150.0, 600.0), "engine": engine, "memory": {"rss_mb": 500.0, "peak_mb": 550.0}},
        "mmship openvino int8": {"note": "not in the bundle"},
        "infinity-emb torch": {"levels": levels(50.0, 100.0), "memory": {"rss_mb": 1000.0, "peak_mb": 1100.0}},
        "naive": {"levels": levels(30.0, 60.0)},
    }
    import cpu_peak

    info = {"model": "test cpu", "cores": 2, "mhz": 2000.0, "flags": {f: True for f in cpu_peak.FLAGS}}
    peak = {"threads": 2, "int8_gops": 1000.0, "ort_int8_gops": 1000.0, "torch_int8_gops": None, "fp32_gops": 100.0,
            "method": "test", "shapes": []}
    meta = {"cpu": info, "peak": peak, "macs": {"image": 4.4e9, "text": 0.7e9, "text_tokens": 18.0}, "concurrency": [1, 16],
            "duration_s": 8.0, "load_average_start": (1.0, 1.0, 1.0), "load_average_end": (2.0, 2.0, 2.0), "wall_s": 60.0}
    serve_report.print_report(results, meta)
    out = capsys.readouterr().out
    assert "image: vs infinity-emb torch: 3.00x; vs naive: 5.00x; HTTP / in-process engine: 0.75x" in out
    assert "text: vs infinity-emb torch: 6.00x; vs naive: 10.00x; HTTP / in-process engine: 0.67x" in out
    assert "| mmship openvino int8 | - | - | not measured: not in the bundle" in out
    assert "| mmship onnxruntime int8 | 200.0 | 9.0 | 900.0 | 2.0 | 300 | 400 |" in out
    assert "| infinity-emb torch | 1000 | 1100 |" in out
    # 150 images/s x 4.4 GMAC x 2 = 1320 GOPS against a 1000 GOPS peak
    assert "image server c=16 1320 GOPS = 1.32" in out
    assert "images 150/s met, p50 10.0 ms met, texts 600/s missed" in out


def test_plan_servers_skips_what_the_bundle_or_the_server_cannot_do(graphs_bundle: Path) -> None:
    import serve_clip

    assert ("onnxruntime", "int8") in serve_clip.bundle_variants(graphs_bundle)
    variants = [("auto", "auto"), ("onnxruntime", "int8"), ("onnxruntime", "fp32"), ("openvino", "int8")]
    plan = {name: (runtime, note) for name, _, runtime, _, note in serve_clip.plan_servers({"dynamic": graphs_bundle}, variants, False)}
    assert plan["mmship onnxruntime int8"] == ("onnxruntime", None)
    assert plan["mmship onnxruntime fp32"] == ("onnxruntime", None)
    assert "has no openvino int8 graphs" in plan["mmship openvino int8"][1]
    chosen = serve_clip.chosen_variants(graphs_bundle)
    auto = next(name for name in plan if name.startswith("mmship default"))
    assert (plan[auto][1] is None) == (chosen is not None)
    # two int8 bundles: int8 and the default are served from each, fp32 once
    two = serve_clip.plan_servers({"dynamic": graphs_bundle, "static": graphs_bundle}, variants[1:3], True)
    assert [name for name, *_ in two] == ["mmship onnxruntime int8 (dynamic)", "mmship onnxruntime fp32",
                                          "mmship onnxruntime int8 (static)"]
