"""The ``friendli`` target: FriendliAI Dedicated Endpoints over the documented REST API.

Modules: :mod:`.client` (bounded httpx client), :mod:`.mapping` (deploy config -> create
request), :mod:`.watch` (status polling), :mod:`.target` (the target and the plugin's
hook), :mod:`.invoke` (chat completions / embeddings calls).
"""

from mmship.plugins.targets.friendli.target import FriendliTarget

__all__ = ["FriendliTarget"]
