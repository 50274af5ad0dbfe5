"""The fuzz suite's fixed budget: hypothesis profiles.

``ci`` (the default) is deterministic (``derandomize``: the same examples on every run, no
example database), has a fixed number of examples per test and a per-example deadline, so
the whole fuzz suite takes about 30 s on two cores (plus the tiny bundle it shares). ``MMSHIP_FUZZ_PROFILE=deep`` runs
ten times as many random examples, for a hunt by hand.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much]

settings.register_profile(
    "ci", derandomize=True, database=None, max_examples=300, deadline=5000, print_blob=True,
    suppress_health_check=_QUIET,
)
settings.register_profile(
    "deep", derandomize=False, database=None, max_examples=3000, deadline=10_000, print_blob=True,
    suppress_health_check=_QUIET,
)
settings.load_profile(os.environ.get("MMSHIP_FUZZ_PROFILE", "ci"))
