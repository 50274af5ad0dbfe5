"""A tiny CLIP bundle shared by the runtime tests."""

from __future__ import annotations

import pytest

from tests.helpers.bundles import build_bundle


@pytest.fixture(scope="session")
def tiny_clip_bundle(tiny_clip_dir, tmp_path_factory):
    return build_bundle(tiny_clip_dir, tmp_path_factory.mktemp("bundles") / "tiny-clip", precisions=("fp32", "int8"))
