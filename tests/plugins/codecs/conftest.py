"""Fixtures for the payload codec tests: real encoded images."""

from __future__ import annotations

import io
from importlib.resources import files

import numpy as np
import pytest


@pytest.fixture(scope="session")
def jpeg() -> bytes:
    """The bundled probe photo."""
    return files("mmship.data").joinpath("probe", "cat.jpg").read_bytes()


@pytest.fixture(scope="session")
def png() -> bytes:
    """A small PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3)).save(buffer, format="PNG")
    return buffer.getvalue()
