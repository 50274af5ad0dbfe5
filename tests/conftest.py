"""Shared fixtures: tiny offline model folders and a fresh plugin manager per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Shared fixtures: the HTTP API stub (``stub_server``, ``stub``) for client/invoke/bench
#: tests; the deploy-target fixtures (bundles, the fake FriendliAI API, ``vlm_folder``);
#: the record of which hooks the tests call (``hook_calls``, read by tests/core/test_hookspecs.py).
pytest_plugins = ["tests.helpers.stub_server", "tests.plugins.targets.fixtures", "tests.helpers.hook_calls", "pytester"]

# huggingface_hub reads this once, when it is first imported: set it before any test does.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_mmship(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with a fresh plugin manager, the hub offline, a wide terminal
    (rich does not wrap messages) and no API key inherited from the environment."""
    from mmship.core.manager import reset_plugin_manager

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("MMSHIP_API_KEY", raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight CLIP folder (model + CLIPProcessor files)."""
    from tests.helpers.tiny_models import make_tiny_clip

    return make_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_flava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight FLAVA folder (model + FlavaProcessor files)."""
    from tests.helpers.tiny_models import make_tiny_flava

    return make_tiny_flava(tmp_path_factory.mktemp("tiny-flava"))


@pytest.fixture(scope="session")
def tiny_fusion_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight BERT + ViT fusion folder (model + processor files)."""
    from tests.helpers.tiny_models import make_tiny_fusion

    return make_tiny_fusion(tmp_path_factory.mktemp("tiny-fusion"))


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight SigLIP folder (model + SiglipProcessor files, fast tokenizer)."""
    from tests.helpers.tiny_models import make_tiny_siglip

    return make_tiny_siglip(tmp_path_factory.mktemp("tiny-siglip"))


@pytest.fixture(scope="session")
def tiny_siglip_bundle(tiny_siglip_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle (fp32 + int8) built from the tiny SigLIP through the real build pipeline."""
    from tests.helpers.bundles import build_bundle

    return build_bundle(tiny_siglip_dir, tmp_path_factory.mktemp("bundles") / "tiny-siglip", precisions=("fp32", "int8"))


@pytest.fixture(scope="session")
def tiny_clip_bundle(tiny_clip_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle (fp32 + int8) built from the tiny CLIP through the real build pipeline."""
    from tests.helpers.bundles import build_bundle

    return build_bundle(tiny_clip_dir, tmp_path_factory.mktemp("bundles") / "tiny-clip", precisions=("fp32", "int8"))
