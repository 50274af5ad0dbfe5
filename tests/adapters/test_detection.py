"""The built-in adapters register through the plugin manager and detect their models."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmship.core.errors import AdapterError
from mmship.core.manager import get_plugin_manager
from mmship.core.model_source import read_hf_config


def test_builtin_adapters_are_registered() -> None:
    adapters = get_plugin_manager().adapters()
    for name, owner in (
        ("clip", "adapter-clip"), ("flava", "adapter-flava"), ("fusion", "adapter-fusion"), ("siglip", "adapter-siglip"),
    ):
        assert name in adapters
        assert adapters.owner(name) == owner


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [("tiny_clip_dir", "clip"), ("tiny_flava_dir", "flava"), ("tiny_fusion_dir", "fusion"), ("tiny_siglip_dir", "siglip")],
)
def test_detect_tiny_models(fixture: str, expected: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(fixture)
    cls = get_plugin_manager().adapters().detect(read_hf_config(folder))
    assert cls.name == expected


def test_unknown_model_type_is_not_detected() -> None:
    with pytest.raises(AdapterError, match="no adapter matches"):
        get_plugin_manager().adapters().detect({"model_type": "bert", "architectures": ["BertModel"]})


def test_disabling_an_adapter_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMSHIP_DISABLE_PLUGINS", "adapter-flava")
    adapters = get_plugin_manager().adapters()
    assert "flava" not in adapters and "clip" in adapters
