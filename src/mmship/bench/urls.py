"""Bench targets: what ``mmship bench TARGET`` loads.

:func:`resolve_target` is a context manager yielding the base URL to load. Today it
takes an http(s) URL, or a bundle folder, which is served on a free loopback port for
the run (started on entry, with any ``--serve-arg`` flags, stopped with SIGTERM on exit).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmship.core.errors import MmshipError


@contextmanager
def resolve_target(target: str, api_key: str | None = None, serve_args: list[str] | None = None) -> Iterator[str]:
    """Yield the base URL for ``target`` (a URL, or a bundle folder served for the run with
    ``serve_args`` added to its ``mmship serve`` command, requiring ``api_key`` when the
    bench sends one).

    :raises MmshipError: for a target that is neither, or ``serve_args`` with a URL (that
        server is already running with its own flags).
    """
    if target.startswith(("http://", "https://")):
        if serve_args:
            raise MmshipError(
                f"--serve-arg {' '.join(serve_args)} applies to a bundle folder served for the run; "
                f"the server at {target} is already running with its own flags",
                hint="restart that server with the flags, or bench the bundle folder instead of its URL",
            )
        yield target.rstrip("/")
        return
    if Path(target).is_dir():
        from mmship.serving.process import served_bundle

        with served_bundle(target, extra_args=serve_args, api_key=api_key) as url:
            yield url
        return
    raise MmshipError(
        f"{target!r} is neither an http(s) URL nor a bundle folder",
        hint="pass the server's URL (e.g. http://127.0.0.1:8000) or a bundle folder made by `mmship build`",
    )
