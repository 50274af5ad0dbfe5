"""core.checks: a config against its adapter (a fixture plugin) and a fake model folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmship.core.checks import CheckResult, check_file, has_errors, match_input
from mmship.core.config.sizing import (
    GB,
    parse_instance_type,
    recommended_size,
    size_rank,
)
from mmship.core.manager import reset_plugin_manager
from tests.helpers.config_models import (
    SEED_YAML,
    FakeClipAdapter,
    add_sparse_weights,
    register_fixture_plugin,
    write_fake_model,
)

#: The seed file, pointed at the fixture adapter.
FAKE_SEED = SEED_YAML.replace("  path: ./clip_quantized", "  path: ./clip_quantized\n  adapter: fakeclip")


@pytest.fixture(autouse=True)
def fixture_plugins():
    reset_plugin_manager()
    register_fixture_plugin()
    yield
    reset_plugin_manager()


def run(tmp_path: Path, text: str, model: Path | None = None) -> list[CheckResult]:
    path = tmp_path / "deploy_config.yaml"
    path.write_text(text)
    return check_file(path, model_dir=model)


def rows(results: list[CheckResult], name: str) -> list[CheckResult]:
    found = [r for r in results if r.name == name]
    assert found, f"no {name!r} row in {[r.name for r in results]}"
    return found


def row(results: list[CheckResult], name: str) -> CheckResult:
    found = rows(results, name)
    assert len(found) == 1, found
    return found[0]


def full(result: CheckResult) -> str:
    return result.message + " Fix: " + (result.hint or "")


def with_shape(old: str, new: str) -> str:
    assert old in FAKE_SEED
    return FAKE_SEED.replace(old, new, 1)


# --- the seed, and how the adapter and model are found -------------------------------------


def test_seed_checks_clean_against_the_example(tmp_path: Path):
    results = run(tmp_path, FAKE_SEED)
    assert not has_errors(results), [full(r) for r in results if r.status == "error"]
    assert row(results, "input image").status == "ok"
    assert "image -> pixel_values [-1, 3, 224, 224]" in row(results, "input image").message
    assert "text -> input_ids [-1, 77]" in row(results, "input text").message
    assert row(results, "adapter").status == "ok"
    assert row(results, "model").status == "warn"  # ./clip_quantized does not exist here
    assert row(results, "instance size").status == "skip"


def test_auto_adapter_is_detected_from_config_json(tmp_path: Path):
    model = write_fake_model(tmp_path / "clip_quantized")
    results = run(tmp_path, SEED_YAML)  # adapter: auto; model.path exists next to the config
    assert "fakeclip (config.json)" in row(results, "adapter").message
    assert row(results, "model").status == "ok" and str(model) in row(results, "model").message
    assert row(results, "dimensions").status == "ok"
    assert "config.json and the weights" in row(results, "dimensions").message


def test_auto_adapter_without_a_model_is_guessed_from_the_name(tmp_path: Path):
    text = SEED_YAML.replace("name: clip-multimodal", "name: fakeclip-prod")
    result = row(run(tmp_path, text), "adapter")
    assert result.status == "warn" and "guessed 'fakeclip'" in result.message


def test_invalid_config_gives_error_rows_and_skips_model_checks(tmp_path: Path):
    results = run(tmp_path, FAKE_SEED.replace("    precision: fp16", "    precison: fp16"))
    assert has_errors(results)
    bad = row(results, "model.serving_params.precison")
    assert bad.status == "error"
    assert "model.serving_params.precison (line 21): unknown key; did you mean 'precision'?" in bad.message
    assert row(results, "model checks").status == "skip"


# --- input shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["[1, 224, 224, 3]", "[-1, 224, 224, 3]"])
def test_channels_last_image_is_caught_with_the_nchw_fix(tmp_path: Path, shape: str):
    results = run(tmp_path, with_shape("[-1, 3, 224, 224]", shape))
    result = row(results, "input image")
    assert result.status == "error" and has_errors(results)
    text = full(result)
    assert "model.inputs[0].shape (line 15)" in text
    assert "'image'" in text and "channels-last (NHWC)" in text
    assert "expected [-1, 3, 224, 224]" in text and f"got {shape}" in text
    assert "transpose" in text and "NCHW" in text
    assert "write shape: [-1, 3, 224, 224]" in text


def test_wrong_image_size_names_both_numbers(tmp_path: Path):
    result = row(run(tmp_path, with_shape("[-1, 3, 224, 224]", "[-1, 3, 336, 336]")), "input image")
    assert result.status == "error"
    assert "expected [-1, 3, 224, 224], got [-1, 3, 336, 336]" in result.message
    assert "height: expected 224, got 336" in result.message and "width: expected 224, got 336" in result.message


def test_wrong_rank(tmp_path: Path):
    result = row(run(tmp_path, with_shape("[-1, 3, 224, 224]", "[-1, 224, 224]")), "input image")
    assert result.status == "error"
    assert "has 3 axes but the model takes 4" in result.message and "expected [-1, 3, 224, 224]" in result.message


def test_text_longer_than_the_model_takes(tmp_path: Path):
    result = row(run(tmp_path, with_shape("[-1, 77]", "[-1, 100]")), "input text")
    assert result.status == "error"
    text = full(result)
    assert "model.inputs[1].shape (line 18)" in text
    assert "100 tokens" in text and "at most 77" in text and "expected [-1, 77], got [-1, 100]" in text
    assert "write shape: [-1, 77]" in text


@pytest.mark.parametrize("shape", ["[-1, -1]", "[-1, 32]"])
def test_dynamic_or_shorter_text_is_fine(tmp_path: Path, shape: str):
    assert row(run(tmp_path, with_shape("[-1, 77]", shape)), "input text").status == "ok"


def test_fixed_batch_is_a_warning(tmp_path: Path):
    result = row(run(tmp_path, with_shape("[-1, 3, 224, 224]", "[1, 3, 224, 224]")), "input image")
    assert result.status == "warn" and "fixes the batch axis at 1" in result.message
    assert "write shape: [-1, 3, 224, 224]" in (result.hint or "")


def test_inputs_named_after_the_adapter_inputs(tmp_path: Path):
    text = FAKE_SEED.replace("name: image", "name: pixel_values").replace("name: text", "name: input_ids")
    results = run(tmp_path, text)
    assert row(results, "input pixel_values").status == "ok"
    assert row(results, "input input_ids").status == "ok"


def test_unknown_input_name(tmp_path: Path):
    result = row(run(tmp_path, FAKE_SEED.replace("name: text", "name: audio")), "input audio")
    assert result.status == "error"
    assert "no input 'audio'" in result.message and "pixel_values (image)" in result.message


def test_model_with_another_image_size(tmp_path: Path):
    model = write_fake_model(tmp_path / "m336", image_size=336)
    result = row(run(tmp_path, FAKE_SEED, model=model), "input image")
    assert result.status == "error" and "expected [-1, 3, 336, 336], got [-1, 3, 224, 224]" in result.message


def test_match_input_by_modality():
    specs = FakeClipAdapter.from_example().input_specs()
    from mmship.core.config import InputDecl

    assert match_input(InputDecl(name="images", shape=[-1, 3, 224, 224]), specs).name == "pixel_values"
    assert match_input(InputDecl(name="text", shape=[-1, 77]), specs).name == "input_ids"
    assert match_input(InputDecl(name="attention_mask", shape=[-1, 77]), specs).name == "attention_mask"
    assert match_input(InputDecl(name="prompt", type="text"), specs).name == "input_ids"
    assert match_input(InputDecl(name="audio", shape=[-1]), specs) is None


# --- dimensions ----------------------------------------------------------------------------------


def test_mismatched_projection_dims_name_both_numbers(tmp_path: Path):
    model = write_fake_model(tmp_path / "bad-model", image_proj=512, text_proj=256)
    results = run(tmp_path, FAKE_SEED, model=model)
    result = row(results, "dimensions")
    assert result.status == "error" and has_errors(results)
    assert "512" in result.message and "256" in result.message and "projection_dim" in result.message


def test_model_folder_without_weights_checks_config_only(tmp_path: Path):
    model = write_fake_model(tmp_path / "m")
    (model / "model.safetensors").unlink()
    found = rows(run(tmp_path, FAKE_SEED, model=model), "dimensions")
    assert [r.status for r in found] == ["warn", "ok"]


# --- precision, accelerator, instance size ----------------------------------------------------------


def test_fp16_on_cpu_is_a_warning_not_an_error(tmp_path: Path):
    text = FAKE_SEED.replace("accelerator: tensorrt", "accelerator: cpu").replace("gpu.large", "cpu.large")
    results = run(tmp_path, text)
    result = row(results, "precision")
    assert result.status == "warn" and not has_errors(results)
    assert "model.serving_params.precision (line 21)" in result.message
    assert "not faster" in result.message and "int8" in (result.hint or "")


def test_int8_on_tensorrt_is_a_warning(tmp_path: Path):
    result = row(run(tmp_path, FAKE_SEED.replace("precision: fp16", "precision: int8")), "precision")
    assert result.status == "warn" and "fp16" in (result.hint or "")


def test_gpu_accelerator_on_a_cpu_instance_is_an_error(tmp_path: Path):
    result = row(run(tmp_path, FAKE_SEED.replace("gpu.large", "cpu.large")), "accelerator")
    assert result.status == "error"
    assert "tensorrt needs a GPU" in result.message and "compute.instance_type (line 5)" in result.message
    assert "gpu.large" in (result.hint or "")


def test_instance_recommendation_from_weights(tmp_path: Path):
    model = write_fake_model(tmp_path / "big")
    add_sparse_weights(model, int(1.5 * GB))
    small = run(tmp_path, FAKE_SEED.replace("gpu.large", "gpu.medium"), model=model)
    result = row(small, "instance size")
    assert result.status == "warn" and not has_errors(small)
    assert "compute.instance_type (line 5)" in result.message
    assert "1.50 GB" in result.message and "large instance is recommended" in result.message
    assert "got gpu.medium" in result.message and result.hint == "set instance_type: gpu.large"
    assert row(run(tmp_path, FAKE_SEED, model=model), "instance size").status == "ok"
    assert row(run(tmp_path, FAKE_SEED.replace("gpu.large", "gpu.xlarge"), model=model), "instance size").status == "ok"


def test_small_model_on_a_medium_instance(tmp_path: Path):
    model = write_fake_model(tmp_path / "m")
    text = FAKE_SEED.replace("gpu.large", "gpu.medium")
    result = row(run(tmp_path, text, model=model), "instance size")
    assert result.status == "ok" and "recommended: medium" in result.message


def test_sizing_rules():
    assert recommended_size(600_000_000) == "medium"
    assert recommended_size(2 * GB) == "large"
    assert recommended_size(3 * GB) == "large"
    assert recommended_size(5 * GB) == "xlarge"
    assert parse_instance_type("gpu.large").family == "gpu"
    assert parse_instance_type("cpu-medium").size == "medium"
    assert parse_instance_type("h100-x1") is None and parse_instance_type(None) is None
    assert size_rank("2xlarge") > size_rank("xlarge") > size_rank("large") > size_rank("medium") > size_rank("small")


# --- replicas, batching, autoscaling, runtime, target ---------------------------------------------


def test_min_replicas_above_max_is_an_error_row(tmp_path: Path):
    results = run(tmp_path, FAKE_SEED.replace("min_replicas: 1", "min_replicas: 7"))
    result = row(results, "compute.max_replicas")
    assert result.status == "error"
    assert "min_replicas (7) is larger than max_replicas (5)" in result.message and "line 7" in result.message
    assert "raise max_replicas to at least 7" in (result.hint or "")


def test_equal_replicas_with_metrics_is_a_warning(tmp_path: Path):
    result = row(run(tmp_path, FAKE_SEED.replace("max_replicas: 5", "max_replicas: 1")), "replicas")
    assert result.status == "warn" and "nothing to scale" in result.message


def test_default_batch_above_max_is_an_error_row(tmp_path: Path):
    text = FAKE_SEED.replace("default_batch_size: 4", "default_batch_size: 8\n    max_batch_size: 4")
    results = run(tmp_path, text)
    assert has_errors(results)
    assert any("default_batch_size (8) is larger than max_batch_size (4)" in r.message for r in results)


def test_ok_rows_summarise_the_policy(tmp_path: Path):
    results = run(tmp_path, FAKE_SEED)
    assert row(results, "replicas").message == "1 to 5 replicas"
    assert row(results, "batching").message.startswith("default 4 <= max 32")
    assert row(results, "autoscaling").message == "cpu_utilization 60%, memory_utilization 70%, cooldown 300 s"


def test_runtime_version_mismatch_warns(tmp_path: Path):
    from importlib import metadata

    result = row(run(tmp_path, FAKE_SEED.replace("version: 1.12", "version: 0.1")), "runtime")
    try:
        metadata.version("torch")
    except metadata.PackageNotFoundError:
        assert result.status == "ok"
    else:
        assert result.status == "warn" and "runtime.version (line 3)" in result.message


def test_target_row(tmp_path: Path):
    results = run(tmp_path, FAKE_SEED + "target:\n  name: fakecloud\n  region: us\n")
    assert row(results, "target").status == "ok" and "fakecloud" in row(results, "target").message
    assert row(run(tmp_path, FAKE_SEED), "target").status == "skip"
