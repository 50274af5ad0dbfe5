"""What the friendli target tests share: a deploy config, the config of a deploy without
one, and a target pointed at the fake API that polls without waiting."""

from __future__ import annotations

from mmship.core.bundle import Bundle
from mmship.core.config import DeployConfig
from mmship.plugins.targets.friendli.mapping import FriendliSettings
from mmship.plugins.targets.friendli.target import FriendliTarget

CONFIG_DATA = {
    "runtime": {"framework": "pytorch", "version": "1.12"},
    "compute": {"instance_type": "gpu.large", "min_replicas": 1, "max_replicas": 5},
    "model": {"name": "vlm-chat", "serving_params": {"default_batch_size": 4, "max_batch_size": 8}},
    "autoscaling": {"metrics": [{"type": "cpu_utilization", "threshold": "60%"}], "cooldown": 300},
}
CONFIG = DeployConfig.model_validate(CONFIG_DATA)


def no_config(bundle: Bundle) -> DeployConfig:
    """What `mmship deploy` uses without --config."""
    return DeployConfig.defaults(bundle.manifest.name)


def target(fake=None, **settings) -> FriendliTarget:
    """A friendli target (at the fake API when given) with fast polling."""
    if fake is not None:
        settings.setdefault("base_url", fake.url)
    settings.setdefault("poll_interval_s", 0.001)
    settings.setdefault("timeout_s", 10)
    settings.setdefault("request_timeout_s", 5)
    return FriendliTarget(FriendliSettings(**settings))
