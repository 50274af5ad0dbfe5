"""Target test fixtures: see :mod:`tests.plugins.targets.fixtures`."""

from tests.plugins.targets.fixtures import *  # fixtures: bundles, the fake FriendliAI API
