"""DeployConfig as every target reads it: defaults without a file, one merge rule for
serving params, typed compute and autoscaling."""

from __future__ import annotations

import pytest

from mmship.core.bundle import Bundle
from mmship.core.config import DeployConfig, validate_text
from mmship.core.errors import ConfigError
from mmship.core.specs import ServingParams
from tests.plugins.targets.bundles import make_graphs_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Bundle:
    """Serving params: default 4, max 32, delay 5 ms, int8, cpu."""
    return Bundle.load(make_graphs_bundle(tmp_path_factory.mktemp("cfg") / "tiny-clip"))


def test_defaults_are_one_replica_no_metrics_and_the_bundles_params(bundle):
    config = DeployConfig.defaults(bundle.manifest.name)
    assert config.is_default and config.model.name == "tiny-clip" and config.target_name is None
    assert (config.compute.min_replicas, config.compute.max_replicas) == (1, 1)
    assert config.autoscaling.metrics == [] and config.autoscaling.cooldown is None
    assert config.serving_params(bundle) == bundle.manifest.serving_params


def test_only_the_fields_the_file_sets_are_laid_over_the_bundles(bundle):
    text = "model:\n  name: clip\n  serving_params: {max_batch_size: 8, max_delay_ms: 2}\n"
    config = validate_text(text, registries=(None, None)).config
    assert config is not None and not config.is_default
    merged = config.serving_params(bundle)
    assert (merged.precision, merged.accelerator, merged.default_batch_size) == ("int8", "cpu", 4)
    assert (merged.max_batch_size, merged.max_delay_ms) == (8, 2.0)


def test_a_merge_that_contradicts_itself_names_both_sides_and_the_fix(tmp_path):
    serving = ServingParams(default_batch_size=16, max_batch_size=32, precision="int8")
    bundle = Bundle.load(make_graphs_bundle(tmp_path / "b", serving=serving))
    text = "model:\n  name: clip\n  serving_params:\n    max_batch_size: 8\n"
    config = validate_text(text, registries=(None, None)).config
    assert config is not None  # valid on its own: its default_batch_size (4) fits
    with pytest.raises(ConfigError) as info:
        config.serving_params(bundle)
    message = info.value.message
    assert "model.serving_params (line 3)" in message and "max_batch_size: 8" in message
    assert "default_batch_size: 16" in message and "larger than max_batch_size" in message
    assert "default_batch_size" in info.value.hint


def test_autoscaling_thresholds_are_parsed_once(bundle):
    text = (
        "model: {name: clip}\n"
        "compute: {min_replicas: 2, max_replicas: 4}\n"
        "autoscaling:\n  metrics: [{type: cpu_utilization, threshold: 60%}, {type: request_count, threshold: 8}]\n"
        "  cooldown: 5m\n"
    )
    config = validate_text(text, registries=(None, None)).config
    assert config is not None
    assert config.autoscaling.threshold("cpu_utilization") == 60.0
    assert config.autoscaling.threshold("request_count") == 8.0
    assert config.autoscaling.threshold("memory_utilization") is None
    assert config.autoscaling.cooldown == 300
    assert (config.compute.min_replicas, config.compute.max_replicas) == (2, 4)
