"""Find FriendliAI endpoints by id or name, inside the configured project only.

The list call (``GET /dedicated/beta/endpoint?project_id=``) gives ids and statuses; each
endpoint's spec (``GET .../{id}``) gives its name and ``projectId``. Scoping is checked
twice: the list is asked for the project, and every endpoint whose spec names another
project is dropped, so a server (or proxy) that ignores the filter cannot make mmship show,
sleep, wake or delete another project's endpoint. A name that matches more than one
endpoint is refused with the ids to choose from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mmship.core.errors import DeployError
from mmship.plugins.targets.friendli.client import FriendliAPIError, FriendliClient
from mmship.plugins.targets.friendli.watch import GONE

#: Which endpoints a name may mean, in order of preference: the first non-empty tier wins.
LIVE_ONLY: tuple[frozenset[str] | None, ...] = (None,)
#: Live endpoints first, then those going away (``deployments status`` after a delete).
LIVE_THEN_GONE: tuple[frozenset[str] | None, ...] = (None, GONE)


@dataclass
class Endpoint:
    """One endpoint: id, name, project and its last known status object."""

    id: str
    name: str
    project_id: str | None
    status: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> str:
        """The status value (``RUNNING``, ``SLEEPING``...)."""
        return str(self.status.get("status", "UNKNOWN"))


def can_be_id(text: str) -> bool:
    """Whether ``text`` is worth trying as an endpoint id (ids are one path segment)."""
    return bool(text) and text not in (".", "..") and not any(c in text for c in "/?#") and text.isprintable()


def _newest_first(listed: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return sorted(listed.items(), key=lambda item: str(item[1].get("createdAt") or ""), reverse=True)


def scan(client: FriendliClient, project_id: str | None, max_lookups: int = 200) -> list[Endpoint]:
    """The project's endpoints (the team's when ``project_id`` is None), newest first,
    without any whose spec names another project."""
    found = []
    for endpoint_id, status in _newest_first(client.list_endpoints(project_id))[:max_lookups]:
        try:
            spec = client.get_endpoint(endpoint_id)
        except FriendliAPIError as exc:
            if exc.status == 404:  # deleted between the two calls
                continue
            raise
        owner = spec.get("projectId")
        if project_id and owner != project_id:
            continue
        found.append(Endpoint(endpoint_id, str(spec.get("name", endpoint_id)), owner, status))
    return found


def live(endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    """Endpoints that are not TERMINATING or TERMINATED."""
    return [e for e in endpoints if e.state not in GONE]


def named(client: FriendliClient, project_id: str | None, name: str) -> list[Endpoint]:
    """Every endpoint of the project called ``name``, newest first, whatever its status."""
    return [e for e in scan(client, project_id) if e.name == name]


def _where(project_id: str | None) -> str:
    return f"project {project_id}" if project_id else "the team"


def ambiguous(name: str, project_id: str | None, matches: list[Endpoint]) -> DeployError:
    """The error for a name that matches several endpoints."""
    ids = ", ".join(f"{e.id} ({e.state})" for e in matches)
    return DeployError(
        f"{len(matches)} FriendliAI endpoints in {_where(project_id)} are named {name!r}: {ids}",
        hint="pass the endpoint id instead of the name, e.g. "
        f"`mmship deployments status {matches[0].id} --target friendli`",
    )


def _by_id(client: FriendliClient, project_id: str | None, text: str) -> Endpoint | None:
    try:
        spec = client.get_endpoint(text)
    except FriendliAPIError as exc:
        if exc.status in (400, 404, 422):  # not an id FriendliAI knows: try it as a name
            return None
        raise
    owner = spec.get("projectId")
    if project_id and owner != project_id:
        raise DeployError(
            f"FriendliAI endpoint {text} belongs to project {owner}, not to the configured project {project_id}",
            hint=f"mmship acts only inside the configured project: pass --set project_id={owner} if you mean it",
        )
    return Endpoint(text, str(spec.get("name", text)), owner)


def resolve(
    client: FriendliClient,
    project_id: str | None,
    text: str,
    tiers: tuple[frozenset[str] | None, ...] = LIVE_ONLY,
) -> Endpoint:
    """The endpoint ``text`` names: an id of the project, else exactly one endpoint of that
    name. ``tiers`` say which states a name may match (None: any live state), in order."""
    if can_be_id(text):
        endpoint = _by_id(client, project_id, text)
        if endpoint is not None:
            return endpoint
    candidates = named(client, project_id, text)
    for tier in tiers:
        matches = live(candidates) if tier is None else [e for e in candidates if e.state in tier]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ambiguous(text, project_id, matches)
    raise DeployError(
        f"no FriendliAI endpoint with id or name {text!r} in {_where(project_id)}",
        hint="list them with `mmship deployments list --target friendli` (set project_id or FRIENDLI_PROJECT)",
    )
