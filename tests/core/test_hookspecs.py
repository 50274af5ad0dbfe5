"""Meta-tests, in the style of datasette's: every hook is typed and documented in its
docstring, appears on docs/plugin-hooks.md with its exact signature and its built-in
implementations, and is CALLED by some test (recorded at run time by
tests/helpers/hook_calls.py, not found by name in the test sources)."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

import pytest

import mmship
from mmship.core import hookspecs
from mmship.core.manager import PluginManager, get_plugin_manager

HOOKS = sorted(name for name, obj in vars(hookspecs).items() if name.startswith("mmship_") and callable(obj))
ROOT = Path(__file__).resolve().parents[2]
DOCS_PAGE = ROOT / "docs" / "plugin-hooks.md"
PUBLIC_HOOKS = {
    "mmship_register_adapters", "mmship_register_targets", "mmship_register_runtimes", "mmship_register_codecs",
    "mmship_register_commands", "mmship_align_preprocess", "mmship_export", "mmship_quantize", "mmship_optimize",
    "mmship_validate", "mmship_deploy",
}


def test_public_hook_names_are_kept():
    assert PUBLIC_HOOKS <= set(HOOKS)


def test_hookimpl_marker_is_public():
    assert mmship.hookimpl.project_name == "mmship"


# --- the docstrings -----------------------------------------------------------------


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented_and_typed(name):
    func = getattr(hookspecs, name)
    doc = inspect.getdoc(func)
    assert doc and len(doc.splitlines()[0]) > 10, f"{name} needs a docstring"
    signature = inspect.signature(func)
    for param in signature.parameters.values():
        assert f":param {param.name}:" in doc, f"{name} does not document {param.name}"
        assert param.annotation is not inspect.Parameter.empty, f"{name}.{param.name} has no type"
    documented = re.findall(r":param (\w+):", doc)
    assert documented == list(signature.parameters), f"{name} documents {documented}, takes {list(signature.parameters)}"
    assert signature.return_annotation is not inspect.Signature.empty, f"{name} has no return type"
    if signature.return_annotation != "None":
        assert ":return:" in doc, f"{name} returns {signature.return_annotation} but does not say what"


# --- the docs page ------------------------------------------------------------------


def _spec_definitions(source: str) -> dict[str, ast.FunctionDef]:
    """Every ``def mmship_*`` at the top of ``source``, by name."""
    return {n.name: n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name.startswith("mmship_")}


def signature_of(node: ast.FunctionDef) -> str:
    """Decorators, name, parameters with annotations and defaults, return annotation."""
    decorators = "".join(f"@{ast.unparse(d)} " for d in node.decorator_list)
    return f"{decorators}def {node.name}({ast.unparse(node.args)}) -> {ast.unparse(node.returns) if node.returns else ''}"


def docs_sections(text: str) -> dict[str, str]:
    """The ``### mmship_*`` sections of the page, by hook name."""
    parts = re.split(r"^#{2,3} ", text, flags=re.MULTILINE)
    return {part.split()[0].strip("`"): part for part in parts if part.strip("`").startswith("mmship_")}


def documented_signature(section: str) -> str:
    """The signature in the section's first ``python`` block."""
    match = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert match, "no ```python block with the signature"
    definitions = _spec_definitions(textwrap.dedent(match.group(1)))
    assert len(definitions) == 1, f"the first python block defines {sorted(definitions)}"
    return signature_of(next(iter(definitions.values())))


SPECS = _spec_definitions(Path(hookspecs.__file__).read_text(encoding="utf-8"))
SECTIONS = docs_sections(DOCS_PAGE.read_text(encoding="utf-8"))


def builtin_implementations(name: str) -> set[str]:
    """The built-in plugins implementing hook ``name``."""
    records = get_plugin_manager().records.values()
    return {r.name for r in records if r.source == "builtin" and name in r.hooks}


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_on_the_docs_page_with_its_exact_signature(name):
    assert name in SECTIONS, f"docs/plugin-hooks.md has no '### {name}' section"
    assert documented_signature(SECTIONS[name]) == signature_of(SPECS[name]), (
        f"docs/plugin-hooks.md shows {name} with another signature than src/mmship/core/hookspecs.py"
    )


@pytest.mark.parametrize("name", HOOKS)
def test_the_docs_page_names_the_hooks_builtin_implementations(name):
    line = next((ln for ln in SECTIONS.get(name, "").split("\n\n") if ln.startswith("Built-in:")), "")
    assert line, f"the {name} section has no 'Built-in:' paragraph"
    named = set(re.findall(r"`([\w-]+)`", line)) & set(get_plugin_manager().records)
    assert named == builtin_implementations(name), f"{name}: the page names {sorted(named)}"


def test_the_docs_page_documents_only_hooks_that_exist():
    assert sorted(SECTIONS) == HOOKS


def test_the_signature_check_catches_a_difference():
    """The checker itself: a renamed parameter, a changed type or a lost firstresult differ."""
    spec = signature_of(SPECS["mmship_optimize"])
    for edit in [("graph:", "g:"), ("-> ExportedGraph | None", "-> ExportedGraph"), ("(firstresult=True)", "")]:
        source = "@hookspec(firstresult=True)\n" + spec.split(" ", 1)[1] + ": ..."
        changed = _spec_definitions(source.replace(*edit))["mmship_optimize"]
        assert signature_of(changed) != spec, edit


def test_the_codec_example_on_the_docs_page_works():
    """The third-party codec the page shows registers and speaks both directions."""
    import numpy as np

    from mmship.core.payload import InferOutputs, PayloadInputs

    section = SECTIONS["mmship_register_codecs"]
    example = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[1]
    namespace: dict[str, object] = {}
    exec(compile(example, str(DOCS_PAGE), "exec"), namespace)  # noqa: S102 - our own docs
    manager = get_plugin_manager()
    manager.register(type("Example", (), {"mmship_register_codecs": staticmethod(namespace["mmship_register_codecs"])})(), "docs-example")
    codec = manager.codecs().for_protocol("texts-only")()
    request = codec.encode_request(PayloadInputs(texts=["a cat"], model="clip"), "texts-only")
    assert request.path == "/texts/clip" and codec.decode_request(request.body, {}).inputs.texts == ["a cat"]
    answer = InferOutputs("clip", {"text_embeds": np.ones((1, 2), dtype=np.float32)})
    response = codec.encode_response(answer, codec.decode_request(request.body, {}))
    assert codec.decode_response(response.body, response.headers).outputs["text_embeds"].tolist() == [[1.0, 1.0]]


# --- every hook is called by some test ----------------------------------------------


@pytest.mark.hook_calls
@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_called_by_a_test(name, hook_calls):
    if not hook_calls.whole_suite:
        pytest.skip(f"which hooks the tests call is known when the whole suite runs ({hook_calls.why_partial})")
    assert name in hook_calls.callers, (
        f"no test calls {name}: call it through the manager (registries, the CLI app), "
        f"`manager.hook.{name}(...)`, or the code path that does (a build, a deploy)"
    )


def test_registration_hooks_run_through_pluggy_once_per_plugin():
    """What the record relies on: the manager calls registration hooks through pluggy,
    one plugin at a time, once; a hook-call monitor sees each call."""
    calls: list[tuple[str, list[str]]] = []
    manager = PluginManager()
    manager.pm.add_hookcall_monitoring(lambda hook, impls, kwargs: calls.append((hook, [i.plugin_name for i in impls])), lambda *a: None)
    manager.load_builtins()
    manager.adapters()
    manager.codecs()
    adapters = [impls for hook, impls in calls if hook == "mmship_register_adapters"]
    assert adapters == [["adapter-clip"], ["adapter-flava"], ["adapter-fusion"], ["adapter-siglip"], ["adapter-vlm"]]
    assert [impls for hook, impls in calls if hook == "mmship_register_codecs"] == [["codec-v2"], ["codec-embed"], ["codec-openai"], ["codec-rank"]]
    assert not any(hook.startswith("mmship_register_commands") for hook, _ in calls)


INNER_TESTS = '''
import mmship
from mmship.core.manager import get_plugin_manager
from tests.core.test_hookspecs import test_hook_is_called_by_a_test


class Answer:
    @mmship.hookimpl
    def mmship_deploy(self, bundle, config, target, plan):
        return "deployed"


def test_builds_the_registries():
    assert "clip" in get_plugin_manager().adapters()


def test_calls_deploy_through_the_hook():
    manager = get_plugin_manager()
    manager.register(Answer(), name="answer")
    assert manager.hook.mmship_deploy(bundle=None, config=None, target=None, plan=None) == "deployed"


def test_names_export_without_calling_it():
    assert get_plugin_manager().hook.mmship_export.get_hookimpls()
'''


def _inner_outcomes(pytester: pytest.Pytester, *args: str) -> dict[str, str]:
    pytester.makeconftest('pytest_plugins = ["tests.helpers.hook_calls"]')
    pytester.makepyfile(test_inner=INNER_TESTS)
    pytester.syspathinsert(ROOT)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", *args)
    outcomes = {}
    for line in result.outlines:
        match = re.search(r"::test_hook_is_called_by_a_test\[(\w+)\] (PASSED|FAILED|SKIPPED)", line)
        if match:
            outcomes[match.group(1)] = match.group(2)
    return outcomes


def test_the_call_check_fails_a_hook_only_named_and_passes_hooks_called(pytester, monkeypatch):
    """The check itself, in a separate session: registration through the manager and a
    stage hook called through ``hook.`` count; a hook only named does not."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    outcomes = _inner_outcomes(pytester)
    assert outcomes["mmship_register_adapters"] == "PASSED"
    assert outcomes["mmship_register_codecs"] == "PASSED"
    assert outcomes["mmship_deploy"] == "PASSED"
    assert outcomes["mmship_export"] == "FAILED"
    assert outcomes["mmship_register_commands"] == "FAILED"
    assert len(outcomes) == len(HOOKS)


def test_the_call_check_skips_when_only_part_of_the_suite_runs(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    outcomes = _inner_outcomes(pytester, "-k", "not names_export")
    assert set(outcomes.values()) == {"SKIPPED"} and len(outcomes) == len(HOOKS)
