"""deploy_config.yaml: the user's file validates; every error names path, line, expected,
got and the fix; thresholds, replicas, target settings through the target's own model."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmship.core.config import DeployConfig, load_config, validate_text
from mmship.core.errors import ConfigError
from mmship.core.manager import reset_plugin_manager
from tests.helpers.config_models import SEED_YAML, register_fixture_plugin


@pytest.fixture(autouse=True)
def fixture_plugins():
    reset_plugin_manager()
    register_fixture_plugin()
    yield
    reset_plugin_manager()


def issues(text: str) -> list[str]:
    result = validate_text(text, "deploy_config.yaml")
    assert not result.ok, "expected the config to be refused"
    return [i.text(with_hint=True) for i in result.issues]


def one_issue(text: str) -> str:
    found = issues(text)
    assert len(found) == 1, found
    return found[0]


def replace(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# --- the user's file ---------------------------------------------------------------------


def test_seed_file_validates_exactly_as_written(tmp_path: Path):
    path = tmp_path / "deploy_config.yaml"
    path.write_text(SEED_YAML)
    config = load_config(path)
    assert isinstance(config, DeployConfig)
    assert config.runtime.framework == "pytorch"
    assert config.runtime.version == "1.12"  # YAML's float 1.12, kept as text
    assert config.compute.instance_type == "gpu.large"
    assert (config.compute.min_replicas, config.compute.max_replicas) == (1, 5)
    assert config.model.name == "clip-multimodal" and config.model.path == "./clip_quantized"
    assert config.model.adapter == "auto"
    assert [(i.name, i.type, i.shape) for i in config.model.inputs] == [
        ("image", "tensor", [-1, 3, 224, 224]),
        ("text", "tensor", [-1, 77]),
    ]
    sp = config.model.serving_params
    assert (sp.default_batch_size, sp.precision, sp.accelerator) == (4, "fp16", "tensorrt")
    assert sp.model_fields_set == {"default_batch_size", "precision", "accelerator"}
    assert [(m.type, m.threshold) for m in config.autoscaling.metrics] == [
        ("cpu_utilization", 60.0),
        ("memory_utilization", 70.0),
    ]
    assert config.autoscaling.cooldown == 300
    assert config.target is None
    assert config.where("model", "inputs", 1, "shape") == "model.inputs[1].shape (line 17)"


def test_version_keeps_trailing_zero_as_written():
    config = validate_text(replace(SEED_YAML, "version: 1.12", "version: 1.10")).config
    assert config is not None and config.runtime.version == "1.10"


def test_numeric_revision_and_name_stay_text():
    text = replace(SEED_YAML, "name: clip-multimodal", "name: 2024\n  revision: 0123456")
    config = validate_text(text).config
    assert config is not None
    assert config.model.name == "2024" and config.model.revision == "0123456"


def test_minimal_file_takes_defaults():
    config = validate_text("model:\n  name: m\n").config
    assert config is not None
    assert (config.compute.min_replicas, config.compute.max_replicas) == (1, 1)
    assert config.model.serving_params.precision == "fp32"
    assert config.autoscaling.metrics == [] and config.autoscaling.cooldown is None


# --- unknown keys ----------------------------------------------------------------------------


def test_misspelt_key_names_path_line_and_suggestion():
    text = replace(SEED_YAML, "    precision: fp16", "    precison: fp16")
    message = one_issue(text)
    assert message.startswith("model.serving_params.precison (line 20): unknown key; did you mean 'precision'?")


def test_load_config_raises_config_error_with_fix(tmp_path: Path):
    path = tmp_path / "deploy_config.yaml"
    path.write_text(replace(SEED_YAML, "    precision: fp16", "    precison: fp16"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "model.serving_params.precison (line 20): unknown key; did you mean 'precision'?" in caught.value.message
    assert str(path) in caught.value.message
    assert caught.value.hint and "precision" in caught.value.hint


def test_misspelt_section_and_list_item_key():
    text = replace(SEED_YAML, "autoscaling:", "autoscalling:")
    text = replace(text, "      shape: [-1, 77]", "      shap: [-1, 77]")
    found = issues(text)
    assert any(m.startswith("autoscalling (line 22): unknown key; did you mean 'autoscaling'?") for m in found), found
    assert any(m.startswith("model.inputs[1].shap (line 17): unknown key; did you mean 'shape'?") for m in found), found


def test_key_in_the_wrong_section_is_pointed_home():
    text = replace(SEED_YAML, "  path: ./clip_quantized", "  path: ./clip_quantized\n  max_batch_size: 8")
    message = one_issue(text)
    assert "model.max_batch_size (line 11)" in message
    assert "belongs under model.serving_params" in message


def test_unknown_key_without_a_close_match_lists_the_keys():
    message = one_issue(replace(SEED_YAML, "  min_replicas: 1", "  min_replicas: 1\n  zone: a"))
    assert "compute.zone (line 7): unknown key; expected one of: instance_type, min_replicas, max_replicas" in message


def test_several_errors_are_reported_together(tmp_path: Path):
    text = replace(SEED_YAML, "    precision: fp16", "    precision: fp61")
    text = replace(text, "  framework: pytorch", "  framework: torch")
    text = replace(text, "  max_replicas: 5", "  max_replicas: five")
    path = tmp_path / "deploy_config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = caught.value.message
    assert "has 3 problems" in message
    assert "runtime.framework (line 2): expected one of 'pytorch', 'onnxruntime', 'tensorrt', got 'torch'; did you mean 'pytorch'?" in message
    assert "compute.max_replicas (line 7): expected a whole number, got text ('five')" in message
    assert "model.serving_params.precision (line 20): expected one of 'fp32', 'fp16', 'bf16', 'int8', got 'fp61'; did you mean 'fp16'?" in message
    # sorted by line
    assert message.index("line 2") < message.index("line 7") < message.index("line 20")


def test_missing_required_key():
    message = one_issue("model:\n  path: ./m\n")
    assert message.startswith("model.name (line 1): required key is missing from model")
    assert "add `name: ...` under model" in message


def test_duplicate_key_is_reported():
    message = one_issue(replace(SEED_YAML, "  max_replicas: 5", "  max_replicas: 5\n  max_replicas: 3"))
    assert "compute.max_replicas (line 8): duplicate key (first at line 7)" in message


# --- file-level errors -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"])
def test_empty_file(text: str, tmp_path: Path):
    path = tmp_path / "deploy_config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "the file is empty" in caught.value.message
    assert "mmship init" in (caught.value.hint or "")


def test_top_level_list_is_refused():
    message = one_issue("- model\n- compute\n")
    assert "line 1" in message and "expected a mapping of sections" in message and "got a list" in message


def test_yaml_syntax_error_names_line():
    message = one_issue("model:\n  name: m\n  inputs: [1, 2\ncompute: {}\n")
    assert message.startswith("line 4: YAML syntax error at column 8:")
    message = one_issue("model:\n  name: m: x\n")
    assert message.startswith("line 2: YAML syntax error") and "must be quoted" in message


def test_missing_section():
    message = one_issue("compute: {min_replicas: 1}\n")
    assert message.startswith("model: required section is missing")


@pytest.mark.parametrize(("key", "written", "meant"), [("accelerator", "gpu", "cuda"), ("precision", "half", "fp16")])
def test_value_aliases_are_suggested(key: str, written: str, meant: str):
    message = one_issue(f"model:\n  name: m\n  serving_params:\n    {key}: {written}\n")
    assert f"model.serving_params.{key} (line 4)" in message and f"did you mean {meant!r}?" in message


def test_tab_indentation_hint():
    message = one_issue("model:\n\tname: m\n")
    assert "line 2" in message and "tabs" in message


def test_several_documents_are_refused():
    message = one_issue("model: {name: a}\n---\nmodel: {name: b}\n")
    assert "line 2" in message and "more than one YAML document" in message


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert "does not exist" in caught.value.message and "mmship init" in (caught.value.hint or "")


# --- values ------------------------------------------------------------------------------------


def test_min_replicas_above_max_is_an_error():
    message = one_issue(replace(SEED_YAML, "  min_replicas: 1", "  min_replicas: 6"))
    assert "compute.max_replicas (line 7)" in message
    assert "min_replicas (6) is larger than max_replicas (5)" in message
    assert "raise max_replicas to at least 6" in message


def test_max_replicas_defaults_to_min():
    config = validate_text("compute: {min_replicas: 3}\nmodel: {name: m}\n").config
    assert config is not None and config.compute.max_replicas == 3


def test_default_batch_size_above_max_is_an_error():
    message = one_issue(replace(SEED_YAML, "    default_batch_size: 4", "    default_batch_size: 64"))
    assert "model.serving_params (line 18)" in message
    assert "default_batch_size (64) is larger than max_batch_size (32)" in message


@pytest.mark.parametrize(
    ("written", "expected"),
    [("60%", 60.0), ("100%", 100.0), ("12.5 %", 12.5), ('"60%"', 60.0)],
)
def test_percent_thresholds(written: str, expected: float):
    config = validate_text(replace(SEED_YAML, "threshold: 60%", f"threshold: {written}")).config
    assert config is not None and config.autoscaling.metrics[0].threshold == expected
    assert config.autoscaling.metrics[0].is_percent


def test_threshold_over_100_percent_is_refused():
    message = one_issue(replace(SEED_YAML, "threshold: 70%", "threshold: 150%"))
    assert message.startswith("autoscaling.metrics[1].threshold (line 27): expected a percentage between 0% and 100%")
    assert "got 150%" in message


@pytest.mark.parametrize(("written", "meant"), [("60", "60%"), ("0.6", "60%")])
def test_threshold_without_percent_sign_is_refused(written: str, meant: str):
    message = one_issue(replace(SEED_YAML, "threshold: 60%", f"threshold: {written}"))
    assert "autoscaling.metrics[0].threshold (line 25)" in message
    assert "with a % sign" in message and f"got {written} (no %)" in message
    assert f"write threshold: {meant}" in message


def test_request_count_takes_a_number():
    text = replace(SEED_YAML, "  cooldown: 300", "    - type: request_count\n      threshold: 8\n  cooldown: 300")
    config = validate_text(text).config
    assert config is not None
    metric = config.autoscaling.metrics[2]
    assert metric.type == "request_count" and metric.threshold == 8 and not metric.is_percent
    message = one_issue(replace(text, "threshold: 8", "threshold: 8%"))
    assert "autoscaling.metrics[2].threshold (line 29)" in message and "not" not in message.split(":")[0]
    assert "(a percentage)" in message


def test_unknown_metric_type_suggests():
    message = one_issue(replace(SEED_YAML, "type: cpu_utilization", "type: cpu"))
    assert "autoscaling.metrics[0].type (line 24)" in message and "did you mean 'cpu_utilization'?" in message


def test_duplicate_metric_type():
    message = one_issue(replace(SEED_YAML, "type: memory_utilization", "type: cpu_utilization"))
    assert "listed more than once" in message


@pytest.mark.parametrize(("written", "seconds"), [("300", 300), ("5m", 300), ('"90s"', 90), ("1h", 3600)])
def test_cooldown_units(written: str, seconds: int):
    config = validate_text(replace(SEED_YAML, "cooldown: 300", f"cooldown: {written}")).config
    assert config is not None and config.autoscaling.cooldown == seconds


def test_shape_with_question_mark_and_bad_dims():
    config = validate_text(replace(SEED_YAML, "[-1, 3, 224, 224]", "[?, 3, 224, 224]")).config
    assert config is not None and config.model.inputs[0].shape == [-1, 3, 224, 224]
    message = one_issue(replace(SEED_YAML, "[-1, 3, 224, 224]", "[-1, 0, 224, 224]"))
    assert "model.inputs[0].shape (line 14)" in message and "got [-1, 0, 224, 224]" in message


def test_tensor_input_needs_a_shape():
    message = one_issue(replace(SEED_YAML, "      shape: [-1, 77]\n", ""))
    assert "model.inputs[1]" in message and "has no shape" in message


def test_path_and_hub_id_together_are_refused():
    message = one_issue(replace(SEED_YAML, "  path: ./clip_quantized", "  path: ./clip_quantized\n  hub_id: openai/clip-vit-base-patch32"))
    assert "both path" in message and "expected one" in message


def test_bad_hub_id():
    message = one_issue(replace(SEED_YAML, "  path: ./clip_quantized", "  hub_id: clip"))
    assert "model.hub_id (line 10)" in message and "'org/name'" in message


# --- registries: adapter and target names, target settings -------------------------------------


def test_known_adapter_name_and_unknown_with_suggestion():
    assert validate_text(replace(SEED_YAML, "  path: ./clip_quantized", "  path: ./x\n  adapter: fakeclip")).ok
    message = one_issue(replace(SEED_YAML, "  path: ./clip_quantized", "  path: ./x\n  adapter: fakeclp"))
    assert "model.adapter (line 11): no adapter called 'fakeclp'; did you mean 'fakeclip'?" in message


def test_target_settings_are_validated_by_the_targets_settings_model():
    text = SEED_YAML + "target:\n  name: fakecloud\n  region: eu\n  gpus: 2\n"
    config = validate_text(text).config
    assert config is not None and config.target is not None
    assert config.target.name == "fakecloud"
    assert config.target.settings() == {"region": "eu", "gpus": 2}
    validated = config.target.validated_settings
    assert validated is not None and validated.region == "eu" and validated.gpus == 2


def test_target_setting_errors_name_path_line_and_suggestion():
    text = SEED_YAML + "target:\n  name: fakecloud\n  regoin: eu\n  gpus: 0\n"
    found = issues(text)
    assert any("target.regoin (line 31): unknown key; did you mean 'region'?" in m for m in found), found
    assert any("target.gpus (line 32): expected a number >= 1, got 0" in m for m in found), found
    assert not any("target.region" in m and "missing" in m for m in found), found  # the typo, reported once


def test_target_secret_values_are_not_echoed():
    text = SEED_YAML + "target:\n  name: fakecloud\n  region: eu\n  api_token: [s3cr3t-value]\n"
    found = issues(text)
    assert found and all("s3cr3t" not in m for m in found)
    assert any("target.api_token (line 32)" in m for m in found)


def test_unknown_target_name_suggests():
    message = one_issue(SEED_YAML + "target:\n  name: fakecloub\n")
    assert "target.name (line 30): no target called 'fakecloub'; did you mean 'fakecloud'?" in message


def test_unknown_target_and_other_errors_together():
    text = replace(SEED_YAML, "    precision: fp16", "    precison: fp16") + "target:\n  name: nowhere\n"
    found = issues(text)
    assert len(found) == 2
