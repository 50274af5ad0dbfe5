"""Fixtures shared by the target tests and the deploy CLI tests (import them with
``from tests.plugins.targets.fixtures import *``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugins.targets.bundles import (
    make_graphs_bundle,
    make_vlm_folder,
    make_weights_bundle,
)
from tests.plugins.targets.fake_friendli import FakeFriendli

PROJECT = "proj-test-1"

#: Built once per test session, however many modules import these fixtures.
_CACHE: dict[str, object] = {}

__all__ = [
    "PROJECT",
    "fake",
    "fake_server",
    "friendli_env",
    "graphs_bundle",
    "local_weights_bundle",
    "target_bundles",
    "vlm_bundle",
    "vlm_folder",
    "weights_bundle",
    "wide_terminal",
]


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wide, non-interactive output so tables do not wrap."""
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("FRIENDLI_TOKEN", "FRIENDLI_PROJECT", "FRIENDLI_TEAM"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def fake_server() -> FakeFriendli:
    """One fake FriendliAI API on 127.0.0.1 for the session (a daemon thread)."""
    if "server" not in _CACHE:
        _CACHE["server"] = FakeFriendli().start()
    return _CACHE["server"]  # type: ignore[return-value]


@pytest.fixture
def fake(fake_server: FakeFriendli) -> Iterator[FakeFriendli]:
    """The fake API, emptied for this test. The test fails if any request mmship sent, or
    any answer the fake gave, broke FriendliAI's published spec (``fake.violations``); a
    test that sends a bad request on purpose takes its violations with ``take_violations()``."""
    fake_server.reset()
    yield fake_server
    violations = fake_server.take_violations()
    assert not violations, "requests or answers that break FriendliAI's spec:\n" + "\n".join(violations)


@pytest.fixture
def friendli_env(fake: FakeFriendli, monkeypatch: pytest.MonkeyPatch) -> FakeFriendli:
    """Token and project in the environment; returns the fake API."""
    monkeypatch.setenv("FRIENDLI_TOKEN", fake.token)
    monkeypatch.setenv("FRIENDLI_PROJECT", PROJECT)
    return fake


@pytest.fixture(scope="session")
def target_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if "bundles" not in _CACHE:
        root = tmp_path_factory.mktemp("target-bundles")
        _CACHE["bundles"] = {
            "weights": make_weights_bundle(root / "tiny-llava"),
            "local_weights": make_weights_bundle(root / "local-llava", hub_id=None, revision=None, name="local-llava"),
            "graphs": make_graphs_bundle(root / "tiny-clip"),
        }
    return _CACHE["bundles"]  # type: ignore[return-value]


@pytest.fixture
def weights_bundle(target_bundles: dict[str, Path]) -> Path:
    """A vlm weights bundle whose source is the hub repo org/tiny-llava@main."""
    return target_bundles["weights"]


@pytest.fixture
def local_weights_bundle(target_bundles: dict[str, Path]) -> Path:
    """A vlm weights bundle built from a local folder (needs --hf-repo)."""
    return target_bundles["local_weights"]


@pytest.fixture
def graphs_bundle(target_bundles: dict[str, Path]) -> Path:
    """A CLIP-shaped bundle of ONNX graphs (fp32 + int8)."""
    return target_bundles["graphs"]


@pytest.fixture(scope="session")
def vlm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LLaVA saved with save_pretrained, with its processor."""
    if "vlm_folder" not in _CACHE:
        _CACHE["vlm_folder"] = make_vlm_folder(tmp_path_factory.mktemp("vlm") / "tiny-llava")
    return _CACHE["vlm_folder"]  # type: ignore[return-value]


@pytest.fixture(scope="session")
def vlm_bundle(vlm_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny LLaVA built by the real pipeline into a weights bundle."""
    from mmship.core.manager import get_plugin_manager, reset_plugin_manager
    from mmship.core.pipeline import BuildRequest, build

    if "vlm_bundle" not in _CACHE:
        reset_plugin_manager()
        try:
            assert "vlm" in get_plugin_manager().adapters(), "the built-in vlm adapter is not registered"
            out = tmp_path_factory.mktemp("vlm-bundle") / "tiny-llava"
            _CACHE["vlm_bundle"] = build(BuildRequest(source=str(vlm_folder), out=out))
        finally:
            reset_plugin_manager()
    return _CACHE["vlm_bundle"]  # type: ignore[return-value]
