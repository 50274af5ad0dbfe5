"""A pytest plugin recording which mmship hooks the tests CALL (registered in tests/conftest.py).

Every :class:`mmship.core.manager.PluginManager` built during the session gets a pluggy
hook-call monitor (``add_hookcall_monitoring``). A hook counts as called when pluggy runs
it with at least one implementation: registration hooks when the manager builds its
registries or the CLI app (the manager calls them through pluggy, plugin by plugin), stage
hooks when a test calls ``manager.hook.mmship_x(...)`` or runs the code that does (a
build, a deploy). Naming a hook, implementing it, or asking for its implementations does
not count.

Tests marked ``hook_calls`` run after every other test and read the record through the
``hook_calls`` fixture. "No test calls this hook" can only be concluded when the whole
suite ran: every test path collected and nothing deselected (``-k``, ``-m``, ``--lf``,
``--deselect``); :attr:`HookCallRecord.whole_suite` says whether it did, and why not.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

MARKER = "hook_calls"


@dataclass
class HookCallRecord:
    """Hook name -> the first test that called it; whether the whole suite is running."""

    callers: dict[str, str] = field(default_factory=dict)
    whole_suite: bool = False
    why_partial: str = ""
    deselected: int = 0

    def before(self, hook_name: str, hook_impls: list[Any], kwargs: Any) -> None:
        """pluggy's ``before`` monitor: note the first test calling ``hook_name``."""
        if hook_impls and hook_name not in self.callers:
            current = os.environ.get("PYTEST_CURRENT_TEST", "outside a test")
            self.callers[hook_name] = current.rsplit(" (", 1)[0]

    def after(self, outcome: Any, hook_name: str, hook_impls: list[Any], kwargs: Any) -> None:
        """pluggy's ``after`` monitor (nothing to do)."""


_RECORD = pytest.StashKey[HookCallRecord]()
_RESTORE = pytest.StashKey[Callable[[], None]]()


def _monitor_every_manager(record: HookCallRecord) -> Callable[[], None]:
    """Give every PluginManager built from now on a monitor writing to ``record``;
    returns the function that stops doing so."""
    from mmship.core.manager import PluginManager

    original = PluginManager.__init__

    @functools.wraps(original)
    def init(self: PluginManager, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.pm.add_hookcall_monitoring(record.before, record.after)

    PluginManager.__init__ = init  # type: ignore[method-assign]
    return lambda: setattr(PluginManager, "__init__", original)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: reads the hook-call record; runs after every other test")
    record = HookCallRecord()
    config.stash[_RECORD] = record
    config.stash[_RESTORE] = _monitor_every_manager(record)


def pytest_unconfigure(config: pytest.Config) -> None:
    restore = config.stash.get(_RESTORE, None)
    if restore is not None:
        restore()


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Any deselection (``-k``, ``-m``, ``--lf``, ``--deselect``) makes the run partial."""
    if items:
        config = items[0].config
        config.stash[_RECORD].deselected += len(items)


def _whole_suite(config: pytest.Config, record: HookCallRecord) -> tuple[bool, str]:
    if record.deselected:
        return False, f"{record.deselected} tests deselected"
    roots = [(config.rootpath / p).resolve() for p in config.getini("testpaths")] or [config.rootpath.resolve()]
    if any("::" in arg for arg in config.args):
        return False, "single tests chosen"
    chosen = [Path(arg).resolve() for arg in config.args]
    missing = [r for r in roots if not any(c == r or c in r.parents for c in chosen)]
    if missing:
        return False, f"only {', '.join(config.args)} collected"
    return True, ""


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the ``hook_calls`` tests to the end of the run."""
    last = [item for item in items if item.get_closest_marker(MARKER)]
    if last:
        items[:] = [item for item in items if not item.get_closest_marker(MARKER)] + last


@pytest.fixture
def hook_calls(request: pytest.FixtureRequest) -> HookCallRecord:
    """The session's hook-call record (read it from a test marked ``hook_calls``);
    whether the whole suite runs is decided now, after every deselection."""
    record = request.config.stash[_RECORD]
    record.whole_suite, record.why_partial = _whole_suite(request.config, record)
    return record
