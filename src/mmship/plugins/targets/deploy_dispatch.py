"""The default ``mmship_deploy`` implementation: the target deploys its own plan.

Registered ``trylast`` so that any other plugin implementing ``mmship_deploy`` (an audit
step, a dry-run recorder, a platform override) is asked first and may take over by
returning a :class:`~mmship.core.target.Deployment`.
"""

from __future__ import annotations

from mmship import hookimpl
from mmship.core.bundle import Bundle
from mmship.core.config import DeployConfig
from mmship.core.target import Deployment, DeployPlan, Target


@hookimpl(trylast=True)
def mmship_deploy(bundle: Bundle, config: DeployConfig, target: Target, plan: DeployPlan) -> Deployment | None:
    """Carry out ``plan`` with ``target.deploy``."""
    return target.deploy(bundle, config, plan)
