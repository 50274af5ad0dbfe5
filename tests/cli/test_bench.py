"""``mmship bench`` and the load generator against the stub server."""

from __future__ import annotations

import io
import json
import re

import pytest
from PIL import Image

from mmship.bench import BenchPlan, bench_url, resolve_target
from mmship.bench.loadgen import default_image
from mmship.bench.results import LevelResult
from mmship.core.cli.app import main
from mmship.core.errors import MmshipError
from tests.helpers.stub_server import MODEL

pytestmark = pytest.mark.network


def table_rows(out: str, title: str) -> list[list[str]]:
    """The body rows of the rich table titled ``title``."""
    block = out[out.index(title):]
    block = block[: block.index("└")]
    return [[cell.strip() for cell in line.strip("│ ").split("│")] for line in block.splitlines() if line.startswith("│")]


def test_bench_prints_a_table_per_modality_and_writes_plot_and_json(stub, tmp_path, capsys):
    url, _ = stub
    plot, raw = tmp_path / "out" / "bench.png", tmp_path / "bench.json"
    code = main(["bench", url, "--concurrency", "1,2", "--duration", "0.3", "--modality", "image,text",
                 "--plot", str(plot), "--json", str(raw)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    for modality in ("image", "text"):
        rows = table_rows(captured.out, f"{modality}: embed -> {url}")
        assert [row[0] for row in rows] == ["1", "2"]
        for row in rows:
            concurrency, requests, rps, p50, p95, p99, errors = row
            assert int(requests) > 0 and float(rps) > 0 and errors == "0"
            assert 0 < float(p50) <= float(p95) <= float(p99)
    assert "concurrency" in captured.out and "p99 ms" in captured.out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size[0] > 400
    doc = json.loads(raw.read_text())
    assert doc["url"] == url and doc["protocol"] == "embed"
    assert [(lv["modality"], lv["concurrency"]) for lv in doc["levels"]] == [("image", 1), ("image", 2), ("text", 1), ("text", 2)]
    for level in doc["levels"]:
        assert len(level["latencies_ms"]) == level["requests"] and level["errors"] == 0
        assert level["p50_ms"] <= level["p95_ms"] <= level["p99_ms"]
    assert re.search(r"image c=2: [\d.]+ req/s, 0 errors", captured.err)


def test_bench_v2_binary_with_a_custom_image_and_request_cap(stub, tmp_path, capsys):
    url, state = stub
    image = tmp_path / "red.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(image)
    raw = tmp_path / "b.json"
    code = main(["bench", url, "--protocol", "v2-binary", "--model", MODEL, "--modality", "image", "--image", str(image),
                 "--concurrency", "2", "--duration", "5", "--max-requests", "7", "--json", str(raw)])
    assert code == 0, capsys.readouterr().err
    level = json.loads(raw.read_text())["levels"][0]
    assert level["requests"] == 7 and level["duration_s"] < 5
    assert {path for _, path, _ in state.seen} == {f"/v2/models/{MODEL}/infer"}
    assert all("inference-header-content-length" in headers for _, _, headers in state.seen)


def test_bench_counts_error_answers_without_retrying(stub):
    url, state = stub
    state.script.extend([(503, {"Retry-After": "1"}, {"error": "queue full"})] * 3)
    result = bench_url(url, BenchPlan(concurrency=[1], duration_s=0.3, modalities=["text"], warmup=False))
    level = result.levels[0]
    assert level.errors == 3 and level.error_kinds == {"HTTP 503": 3} and level.requests > 0


def test_bench_failing_warm_up_stops_with_the_servers_message(stub, capsys):
    url, _ = stub
    assert main(["bench", url, "--protocol", "v2-binary", "--model", "nope", "--duration", "0.1"]) == 1
    err = capsys.readouterr().err
    assert "warm-up image request failed: the server answered 404: no model 'nope' here" in err
    assert f"Fix: use /v2/models/{MODEL}" in err


def test_bench_api_key(stub, capsys, monkeypatch):
    url, state = stub
    state.api_key = "k"
    monkeypatch.setenv("MMSHIP_API_KEY", "k")
    assert main(["bench", url, "--modality", "text", "--concurrency", "1", "--duration", "0.1"]) == 0
    assert all(headers.get("authorization") == "Bearer k" for _, _, headers in state.seen)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--concurrency", "1,x"], "--concurrency expects whole numbers"),
        (["--concurrency", "0"], "--concurrency levels must be positive"),
        (["--modality", "audio"], "--modality takes image and/or text"),
        (["--protocol", "grpc"], "unknown protocol 'grpc'"),
        (["--duration", "0"], "duration must be positive"),
    ],
)
def test_bench_option_errors(stub, capsys, args, message):
    url, state = stub
    assert main(["bench", url, *args]) == 1
    assert message in capsys.readouterr().err
    assert state.seen == []


def test_bench_a_bundle_folder_serves_it_for_the_run(tiny_clip_bundle, capsys):
    code = main(["bench", str(tiny_clip_bundle), "--concurrency", "1,2", "--duration", "0.5", "--modality", "text"])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "text" in out and "req/s" in out
    with pytest.raises(MmshipError, match="neither an http"), resolve_target("nowhere"):
        pass
    with resolve_target("http://127.0.0.1:9/") as url:
        assert url == "http://127.0.0.1:9"


def test_serve_args_reach_the_bundles_server_and_are_refused_with_a_url(tiny_clip_bundle, capsys):
    """A 2 KB body limit makes the image requests 413s: the flag reached the served bundle."""
    args = ["bench", str(tiny_clip_bundle), "--concurrency", "1", "--duration", "0.5", "--modality", "image"]
    assert main([*args, "--serve-arg=--max-body-mb", "--serve-arg=0.002"]) == 1
    assert "the server answered 413: request body of" in capsys.readouterr().err
    assert main(args) == 0
    assert "image c=1:" in capsys.readouterr().err
    assert main(["bench", "http://127.0.0.1:9", "--serve-arg=--jpeg-scaled-decode"]) == 1
    assert "already running with its own flags" in capsys.readouterr().err


def test_level_result_maths():
    level = LevelResult("image", 4, 2.0, latencies_ms=[float(v) for v in range(1, 101)], errors=1)
    assert level.requests == 100 and level.rps == 50.0
    assert level.p50 == pytest.approx(50.5) and level.p99 == pytest.approx(99.01)
    assert LevelResult("text", 1, 1.0).p95 is None


def test_default_image_is_the_bundled_cat():
    data = default_image()
    assert data[:3] == b"\xff\xd8\xff"
    assert Image.open(io.BytesIO(data)).format == "JPEG"
