"""The layers of docs/architecture.md, enforced on the source tree.

* nothing under ``mmship.core`` imports ``mmship.plugins`` or ``mmship.adapters``
  (the core knows no model family and no platform);
* every module under ``mmship.plugins`` is a plugin: it implements a hook, or it is the
  package of one that does (libraries live outside ``plugins/``);
* every module stays under the size a reader can hold in mind;
* every built-in named in :data:`mmship.core.builtins.BUILTIN_PLUGINS` exists.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

import mmship
from mmship.core.builtins import BUILTIN_PLUGINS, ESSENTIAL

PACKAGE = Path(mmship.__file__).resolve().parent
MAX_LINES = 400


def _modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (function-level imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


CORE = _modules(PACKAGE / "core")


@pytest.mark.parametrize("path", CORE, ids=_name)
def test_core_imports_no_plugin_and_no_adapter(path):
    bad = sorted(m for m in imported_modules(path) if m.startswith(("mmship.plugins", "mmship.adapters")))
    assert not bad, f"{_name(path)} imports {bad}: the core must reach plugins through hooks and registries"


def test_the_boundary_check_catches_a_violation(tmp_path):
    """The checker itself: an import hidden in a function is found."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from mmship.plugins.stages import validate\n    import mmship.adapters.clip\n")
    assert {"mmship.plugins.stages", "mmship.adapters.clip"} <= imported_modules(sample)


def _implements_a_hook(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("mmship_"):
            if any("hookimpl" in ast.unparse(d) for d in node.decorator_list):
                return True
    return False


PLUGIN_MODULES = [p for p in _modules(PACKAGE / "plugins") if p.name != "__init__.py"]


@pytest.mark.parametrize("path", PLUGIN_MODULES, ids=_name)
def test_every_module_in_plugins_belongs_to_a_plugin(path):
    """A module in plugins/ implements a hook, or is imported by a sibling that does (a
    plugin package split into small modules, like the friendli target)."""
    if _implements_a_hook(path):
        return
    package = path.parent
    siblings = [p for p in _modules(package) if p != path and _implements_a_hook(p)]
    users = [p for p in siblings if _name(path) in imported_modules(p) or any(
        m.startswith(_name(path)) for m in imported_modules(p))]
    assert users, f"{_name(path)} implements no hook and no plugin in its package uses it: move it out of plugins/"


@pytest.mark.parametrize("path", _modules(PACKAGE), ids=_name)
def test_modules_stay_small(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{_name(path)} has {lines} lines; split it by job (limit {MAX_LINES})"


@pytest.mark.parametrize(("name", "module"), sorted(BUILTIN_PLUGINS.items()))
def test_builtin_plugins_exist(name, module):
    assert importlib.util.find_spec(module) is not None, f"built-in plugin {name!r} names missing module {module}"


def test_essential_plugins_are_builtins():
    assert set(ESSENTIAL) <= set(BUILTIN_PLUGINS)
