"""The plugin manager: built-ins as plugins, guarded loading, env switches, registries."""

from __future__ import annotations

import subprocess
import sys
import types
from importlib import metadata

import pytest

import mmship
from mmship.core.adapter import Adapter
from mmship.core.errors import AdapterError
from mmship.core.manager import PluginManager, get_plugin_manager, reset_plugin_manager
from mmship.core.specs import GraphSpec, TensorSpec
from mmship.core.target import Deployment, DeployPlan, Target


@pytest.fixture(autouse=True)
def fresh_manager():
    reset_plugin_manager()
    yield
    reset_plugin_manager()


class EchoAdapter(Adapter):
    name = "echo"
    description = "fixture adapter"
    model_types = ("echo",)

    def input_specs(self):
        return [TensorSpec(name="input_ids", dtype="int64", shape=[-1, -1], modality="text")]

    def output_specs(self):
        return [TensorSpec(name="text_embeds", dtype="float32", shape=[-1, 8], modality="embedding")]

    def graph_specs(self):
        return [GraphSpec(name="text", inputs=["input_ids"], outputs=["text_embeds"])]

    def check_dimensions(self, weight_shapes=None):
        return None


class EchoTarget(Target):
    name = "echo-target"

    def plan(self, bundle, config):
        return DeployPlan(target=self.name, summary="nothing")

    def deploy(self, bundle, config, plan):
        return Deployment(target=self.name, name="echo")


class FixturePlugin:
    @mmship.hookimpl
    def mmship_register_adapters(self, register):
        register(EchoAdapter)

    @mmship.hookimpl
    def mmship_register_targets(self, register):
        register(EchoTarget)


def test_builtins_are_registered_as_named_plugins():
    manager = get_plugin_manager()
    from mmship.core.builtins import BUILTIN_PLUGINS

    for name, module in BUILTIN_PLUGINS.items():
        record = manager.records[name]
        assert record.source == "builtin"
        assert record.module == module


def test_fixture_plugin_adds_adapter_and_target():
    manager = get_plugin_manager()
    record = manager.register(FixturePlugin(), name="fixture")
    assert record.status == "loaded", record.error
    assert record.hooks == ["mmship_register_adapters", "mmship_register_targets"]
    adapters = manager.adapters()
    assert adapters.get("echo") is EchoAdapter
    assert adapters.owner("echo") == "fixture"
    assert adapters.detect({"model_type": "echo"}) is EchoAdapter
    assert manager.targets().get("echo-target") is EchoTarget


def test_detect_unknown_model_names_model_type_and_fix():
    manager = get_plugin_manager()
    manager.register(FixturePlugin(), name="fixture")
    with pytest.raises(AdapterError) as info:
        manager.adapters().detect({"model_type": "mystery", "architectures": ["MysteryModel"]})
    assert "mystery" in info.value.message and "echo" in info.value.message
    assert "--adapter" in info.value.hint


def test_unknown_adapter_name_suggests_close_match():
    manager = get_plugin_manager()
    manager.register(FixturePlugin(), name="fixture")
    with pytest.raises(AdapterError, match="did you mean 'echo'"):
        manager.adapters().get("ecko")


def test_plugin_with_unknown_hook_is_reported_and_unregistered():
    class Typo:
        @mmship.hookimpl
        def mmship_register_adapter(self, register):  # missing "s"
            register(EchoAdapter)

    manager = get_plugin_manager()
    record = manager.register(Typo(), name="typo")
    assert record.status == "failed"
    assert "mmship_register_adapter" in record.error
    assert "did you mean mmship_register_adapters" in record.error
    assert manager.pm.get_plugin("typo") is None
    assert "echo" not in manager.adapters()


def test_plugin_with_bad_signature_is_reported():
    class BadArgs:
        @mmship.hookimpl
        def mmship_register_adapters(self, register, unexpected):
            raise AssertionError("never called")

    record = get_plugin_manager().register(BadArgs(), name="bad-args")
    assert record.status == "failed"
    assert "unexpected" in record.error


def test_plugin_failing_in_register_hook_does_not_stop_others():
    class Exploding:
        @mmship.hookimpl
        def mmship_register_adapters(self, register):
            raise RuntimeError("boom while registering")

    manager = get_plugin_manager()
    manager.register(Exploding(), name="exploding")
    manager.register(FixturePlugin(), name="fixture")
    adapters = manager.adapters()
    assert "echo" in adapters
    assert manager.records["exploding"].status == "failed"
    assert "boom while registering" in manager.records["exploding"].error


def test_registering_a_non_adapter_is_reported():
    class Wrong:
        @mmship.hookimpl
        def mmship_register_adapters(self, register):
            register(dict)

    manager = get_plugin_manager()
    manager.register(Wrong(), name="wrong")
    manager.adapters()
    assert "not a subclass" in manager.records["wrong"].error


def test_duplicate_adapter_name_names_both_plugins():
    class Clash:
        @mmship.hookimpl
        def mmship_register_adapters(self, register):
            register(type("OtherEcho", (EchoAdapter,), {"name": "echo"}))

    manager = get_plugin_manager()
    manager.register(FixturePlugin(), name="fixture")
    manager.register(Clash(), name="clash")
    manager.adapters()
    error = manager.records["clash"].error
    assert "'echo'" in error and "fixture" in error


def _fake_entry_point(monkeypatch, name: str, value: str, module: types.ModuleType | None):
    if module is not None:
        monkeypatch.setitem(sys.modules, module.__name__, module)
    ep = metadata.EntryPoint(name=name, value=value, group="mmship")
    monkeypatch.setattr(
        "mmship.core.manager.metadata.entry_points",
        lambda group: [ep] if group == "mmship" else [],
    )


def test_entry_point_plugin_that_fails_to_import_is_reported(monkeypatch):
    _fake_entry_point(monkeypatch, "broken", "mmship_no_such_module_xyz", None)
    manager = get_plugin_manager()
    record = manager.records["broken"]
    assert record.source == "entrypoint"
    assert record.status == "failed"
    assert "ModuleNotFoundError" in record.error
    assert "mmship_no_such_module_xyz" in record.error
    assert "Traceback" in record.traceback
    assert manager.records["adapter-clip"].status == "loaded"


def test_entry_point_plugin_loads(monkeypatch):
    plugin = types.ModuleType("mmship_fixture_ep")

    @mmship.hookimpl
    def mmship_register_adapters(register):
        register(EchoAdapter)

    plugin.mmship_register_adapters = mmship_register_adapters
    _fake_entry_point(monkeypatch, "fixture-ep", "mmship_fixture_ep", plugin)
    manager = get_plugin_manager()
    assert manager.records["fixture-ep"].status == "loaded"
    assert manager.adapters().owner("echo") == "fixture-ep"


def test_autoload_can_be_disabled(monkeypatch):
    _fake_entry_point(monkeypatch, "broken", "mmship_no_such_module_xyz", None)
    monkeypatch.setenv("MMSHIP_DISABLE_PLUGIN_AUTOLOAD", "1")
    manager = get_plugin_manager()
    assert "broken" not in manager.records
    assert manager.records["adapter-clip"].status == "loaded"


def test_disable_plugins_by_name(monkeypatch):
    monkeypatch.setenv("MMSHIP_DISABLE_PLUGINS", "adapter-flava, adapter-fusion")
    manager = get_plugin_manager()
    assert manager.records["adapter-flava"].status == "disabled"
    assert manager.records["adapter-fusion"].status == "disabled"
    names = manager.adapters().names()
    assert "flava" not in names and "clip" in names


def test_trace_hooks_writes_calls(monkeypatch, capsys):
    monkeypatch.setenv("MMSHIP_TRACE_HOOKS", "1")
    manager = PluginManager()
    manager.register(FixturePlugin(), name="fixture")
    manager.pm.hook.mmship_register_adapters(register=lambda cls: None)
    assert "mmship_register_adapters" in capsys.readouterr().err


def test_manager_is_built_once_and_reset():
    first = get_plugin_manager()
    assert get_plugin_manager() is first
    reset_plugin_manager()
    assert get_plugin_manager() is not first


def test_importing_mmship_loads_no_plugin_and_no_torch():
    code = (
        "import sys, mmship, mmship.core.hookspecs, mmship.core.manager, mmship.core.cli.app\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'transformers' not in sys.modules, 'transformers imported'\n"
        "assert mmship.core.manager._manager is None, 'plugins loaded at import'\n"
        "assert not any(m.startswith('mmship.adapters.') for m in sys.modules), 'adapters imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registration_runs_once_and_is_cached():
    calls = []

    class Counting:
        @mmship.hookimpl
        def mmship_register_adapters(self, register):
            calls.append(1)
            register(EchoAdapter)

    manager = get_plugin_manager()
    manager.register(Counting(), name="counting")
    first = manager.adapters()
    assert manager.adapters() is first and manager.targets() is manager.targets()
    assert calls == [1]
    manager.register(FixturePlugin(), name="fixture-late")  # a run-time registration rebuilds
    assert "echo-target" in manager.targets()
    assert calls == [1, 1]


def test_plugin_failing_registration_is_unregistered_with_its_partial_registrations():
    class HalfWay:
        @mmship.hookimpl
        def mmship_register_targets(self, register):
            register(EchoTarget)
            raise RuntimeError("broke after one")

        @mmship.hookimpl
        def mmship_export(self, adapter, model, workdir, options):
            raise AssertionError("a failed plugin must not be asked to export")

    manager = get_plugin_manager()
    manager.register(HalfWay(), name="half-way")
    assert "echo-target" not in manager.targets()
    record = manager.records["half-way"]
    assert record.status == "failed" and "broke after one" in record.error
    assert manager.pm.get_plugin("half-way") is None
    impls = [i.plugin_name for i in manager.pm.hook.mmship_export.get_hookimpls()]
    assert "half-way" not in impls


def test_essential_builtins_cannot_be_disabled(monkeypatch):
    monkeypatch.setenv("MMSHIP_DISABLE_PLUGINS", "deploy-dispatch,export-onnx,adapter-flava")
    manager = get_plugin_manager()
    assert manager.records["deploy-dispatch"].status == "loaded"
    assert manager.records["export-onnx"].status == "loaded"
    assert manager.records["adapter-flava"].status == "disabled"
    assert any("deploy-dispatch" in note and "essential" in note for note in manager.notes)
    impls = [i.plugin_name for i in manager.pm.hook.mmship_deploy.get_hookimpls()]
    assert "deploy-dispatch" in impls


def test_disabled_essential_plugin_still_deploys(monkeypatch, tmp_path):
    """Disabling the deploy fallback used to break every deploy; now it stays."""
    monkeypatch.setenv("MMSHIP_DISABLE_PLUGINS", "deploy-dispatch")
    manager = get_plugin_manager()
    manager.register(FixturePlugin(), name="fixture")
    target = EchoTarget()
    plan = target.plan(None, None)
    result = manager.hook.mmship_deploy(bundle=None, config=None, target=target, plan=plan)
    assert result.name == "echo"
