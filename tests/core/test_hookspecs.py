"""Meta-tests: every hook is typed, documented, and exercised by at least one test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from mmship.core import hookspecs

HOOKS = sorted(name for name, obj in vars(hookspecs).items() if name.startswith("mmship_") and callable(obj))
TESTS = Path(__file__).resolve().parents[1]
PUBLIC_HOOKS = {
    "mmship_register_adapters", "mmship_register_targets", "mmship_register_commands",
    "mmship_align_preprocess", "mmship_export", "mmship_quantize", "mmship_optimize",
    "mmship_deploy", "mmship_register_codecs", "mmship_register_runtimes",
}


def test_public_hook_names_are_kept():
    assert PUBLIC_HOOKS <= set(HOOKS)


def test_hookimpl_marker_is_public():
    import mmship

    assert mmship.hookimpl.project_name == "mmship"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented_and_typed(name):
    func = getattr(hookspecs, name)
    doc = inspect.getdoc(func)
    assert doc and len(doc.splitlines()[0]) > 10, f"{name} needs a docstring"
    signature = inspect.signature(func)
    for param in signature.parameters.values():
        assert f":param {param.name}:" in doc, f"{name} does not document {param.name}"
        assert param.annotation is not inspect.Parameter.empty, f"{name}.{param.name} has no type"
    assert signature.return_annotation is not inspect.Signature.empty, f"{name} has no return type"


def _test_sources() -> str:
    own = Path(__file__).resolve()
    return "\n".join(p.read_text() for p in TESTS.rglob("*.py") if p.resolve() != own)


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_exercised_by_a_test(name):
    pattern = re.compile(rf"(def {name}\(|hook\.{name}\(|\.{name}\.get_hookimpls)")
    assert pattern.search(_test_sources()), f"no test implements or calls {name}"
