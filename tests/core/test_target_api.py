"""The Target API: optional operations are typed methods (supported = overridden), and
what a target declares (flags, URL schemes) is checked when it registers."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

import mmship
from mmship.core.errors import DeployError
from mmship.core.manager import get_plugin_manager
from mmship.core.target import Deployment, DeployPlan, Target, TargetOption
from mmship.plugins.targets.friendli.target import FriendliTarget
from mmship.plugins.targets.local import LocalTarget
from mmship.plugins.targets.ray.target import RayTarget
from mmship.plugins.targets.triton.target import TritonTarget


class RegionSettings(BaseModel):
    region: str = "eu"
    fast: bool = False


class SleepyTarget(Target):
    """Implements one optional operation."""

    name = "sleepy"
    settings_model = RegionSettings

    def plan(self, bundle, config):
        return DeployPlan(self.name, "nothing")

    def deploy(self, bundle, config, plan):
        return Deployment(self.name, "x")

    def sleep(self, name: str) -> Deployment:
        return Deployment(self.name, name, status="SLEEPING")


def test_supported_operations_are_the_overridden_methods():
    assert LocalTarget.operations() == ("list", "status", "delete")
    assert RayTarget.operations() == ("status", "delete")
    assert TritonTarget.operations() == ()
    assert set(FriendliTarget.operations()) == {"list", "status", "delete", "sleep", "wake", "restart", "invoke"}
    assert SleepyTarget.operations() == ("sleep",)
    assert SleepyTarget().sleep("a").status == "SLEEPING"


def test_an_operation_not_implemented_raises_a_clear_deploy_error():
    with pytest.raises(DeployError) as info:
        TritonTarget().sleep("x")
    assert info.value.message == "target 'triton' does not support `deployments sleep`"
    assert "friendli" in info.value.hint and "triton" not in info.value.hint
    with pytest.raises(DeployError, match="does not support `deployments invoke`"):
        SleepyTarget().invoke("x", texts=["hi"], images=[], mode="chat")
    with pytest.raises(DeployError) as info:
        LocalTarget().restart("x")
    assert info.value.message == "target 'local' does not support `deployments restart`"
    assert info.value.hint == "targets that do: friendli"


def register_target(*classes: type[Target], name: str = "declaring-plugin"):
    class Plugin:
        @mmship.hookimpl
        def mmship_register_targets(self, register):
            for cls in classes:
                register(cls)

    manager = get_plugin_manager()
    manager.register(Plugin(), name)
    return manager


def declaring(**attrs) -> type[Target]:
    return type("Declaring", (SleepyTarget,), {"name": "declaring", **attrs})


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"cli_options": (TargetOption("--zone", "zone", "where"),)}, "setting 'zone', which RegionSettings does not have"),
        ({"cli_options": (TargetOption("--config", "region", "where"),)}, "--config belongs to `mmship deploy` itself"),
        ({"cli_options": (TargetOption("region", "region", "where"),)}, "expected a TargetOption with a --long-flag"),
        ({"cli_options": (TargetOption("--region", "region", "where", is_flag=True),)}, "as a switch, but setting 'region' is not a bool"),
        ({"cli_options": (TargetOption("--force", "fast", "go", is_flag=True),)}, "but target 'friendli' declares it for 'force'"),
        ({"url_schemes": ("https",)}, "expected a lower-case scheme other than http/https"),
        ({"url_schemes": ("friendli",), "invoke_modes": ("x",)}, "already taken by target 'friendli'"),
        ({"url_schemes": ("mine",)}, "declares URL schemes but no invoke method"),
    ],
)
def test_a_broken_declaration_fails_its_plugin_not_the_others(attrs, expected):
    manager = register_target(declaring(**attrs))
    targets = manager.targets()
    assert "declaring" not in targets and {"local", "friendli", "triton", "ray"} <= set(targets.names())
    (failed,) = [r for r in manager.failures() if r.name == "declaring-plugin"]
    assert expected in failed.error


class ForceSettings(BaseModel):
    region: str = "eu"
    force: bool = False


def test_good_declarations_are_listed_once_with_every_target_that_takes_them():
    cls = declaring(
        settings_model=ForceSettings,
        cli_options=(
            TargetOption("--region", "region", "the region", short="-r"),
            TargetOption("--force", "force", "go anyway", is_flag=True),
        ),
    )
    targets = register_target(cls).targets()
    assert "declaring" in targets
    options = {option.flag: [name for name, _ in owners] for option, owners in targets.options()}
    assert options["--force"] == ["declaring", "friendli", "triton"]
    assert options["--region"] == ["declaring"] and options["--out"] == ["triton"] and options["--hf-repo"] == ["friendli"]
    assert targets.for_scheme("friendli") is FriendliTarget
    with pytest.raises(DeployError, match=r"no deploy target answers nope:// URLs \(schemes: friendli:// \(friendli\)\)"):
        targets.for_scheme("nope")
