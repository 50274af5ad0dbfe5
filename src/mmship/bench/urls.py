"""Bench targets: what ``mmship bench TARGET`` loads.

:func:`resolve_target` is a context manager yielding the base URL to load. Today it
takes an http(s) URL, or a bundle folder, which is served on a free loopback port for
the run (started on entry, stopped with SIGTERM on exit).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmship.core.errors import MmshipError


@contextmanager
def resolve_target(target: str, api_key: str | None = None) -> Iterator[str]:
    """Yield the base URL for ``target`` (a URL, or a bundle folder served for the run,
    requiring ``api_key`` when the bench sends one)."""
    if target.startswith(("http://", "https://")):
        yield target.rstrip("/")
        return
    if Path(target).is_dir():
        from mmship.serving.process import served_bundle

        with served_bundle(target, api_key=api_key) as url:
            yield url
        return
    raise MmshipError(
        f"{target!r} is neither an http(s) URL nor a bundle folder",
        hint="pass the server's URL, e.g. http://127.0.0.1:8000",
    )
