"""Importing the adapters must stay cheap: no torch, no transformers."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module", ["mmship.adapters.base", "mmship.adapters.clip", "mmship.adapters.flava", "mmship.adapters.fusion"]
)
def test_adapter_module_import_does_not_import_torch(module: str) -> None:
    code = (
        "import sys, importlib\n"
        f"importlib.import_module({module!r})\n"
        "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"importing {module} imported {result.stdout.strip()}"


def test_adapter_specs_need_no_torch() -> None:
    """Describing every adapter (what `mmship adapters` prints) loads no heavy module."""
    code = (
        "import sys\n"
        "from mmship.core.adapter import describe\n"
        "from mmship.adapters.clip import CLIPAdapter\n"
        "from mmship.adapters.flava import FLAVAAdapter\n"
        "from mmship.adapters.fusion import FusionAdapter\n"
        "for cls in (CLIPAdapter, FLAVAAdapter, FusionAdapter):\n"
        "    a = cls.from_example(); describe(a); a.check_dimensions()\n"
        "print(','.join(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
