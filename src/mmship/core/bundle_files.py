"""What a bundle folder may hold, checked before anything in it is used.

A bundle is verified in three steps (:func:`path_problem`, :func:`verify_tree`,
:func:`verify_files`), and the files a runtime or target uses are then read once, hashed
and handed over as those bytes (``Bundle.read``):

* every path the manifest names (``files``, ``graphs[].file``) is a plain relative path
  inside the bundle: not absolute, no ``..``, no backslash, no empty or ``.`` part;
* the folder holds regular files and folders only (no symlink, wherever it points, no
  device or pipe), and every file in it is listed in the manifest (nothing was added
  after the build);
* every listed file has the sha256 the manifest records.

This proves the files are those the manifest names and that nothing outside the folder is
read. It does not prove who wrote the bundle: whoever can write the folder can rewrite a
graph and its manifest entry together. Keep bundles where only their builder can write
(read-only storage), or sign ``mmship.yaml`` (it carries the sha256 of every file) and
check the signature before deploying; see docs/security.md.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PureWindowsPath

from mmship.core.errors import BundleError

REBUILD_HINT = "rebuild the bundle with `mmship build`, or copy the original bundle again whole"
#: Files hashed at the same time at most (each thread reads one file through).
MAX_HASH_THREADS = 8


def path_problem(relative: str) -> str | None:
    """Why ``relative`` is not a plain path inside a bundle, or ``None`` when it is."""
    if not relative:
        return "is empty"
    if "\x00" in relative:
        return "contains a NUL byte"
    if "\\" in relative:
        return "contains a backslash (bundle paths use '/')"
    if relative.startswith("/") or PureWindowsPath(relative).drive or PureWindowsPath(relative).is_absolute():
        return "is absolute (bundle paths are relative to the bundle folder)"
    parts = relative.split("/")
    if ".." in parts:
        return "climbs out of its folder with '..'"
    if any(part in ("", ".") for part in parts):
        return "is not normalised (an empty or '.' part)"
    return None


def check_path(root: Path, relative: str, what: str) -> None:
    """Raise :class:`BundleError` when ``relative`` (named ``what``) is not a plain bundle path."""
    problem = path_problem(relative)
    if problem is not None:
        raise BundleError(f"bundle {root}: {what} {relative!r} {problem}", hint=REBUILD_HINT)


def verify_tree(root: Path, listed: Collection[str], unlisted_ok: Collection[str]) -> None:
    """Refuse symlinks, special files and files the manifest does not list.

    :param listed: the manifest's files (relative POSIX paths).
    :param unlisted_ok: files that are not checksummed by design (the manifest itself).
    """
    for folder, dirs, files in os.walk(root):  # symlinked folders are listed in dirs, never walked
        for name in sorted(dirs) + sorted(files):
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                raise BundleError(
                    f"bundle {root} holds a symlink: {relative} -> {os.readlink(path)}; a bundle holds only its own files",
                    hint="replace the link with the file it points to (e.g. `cp -L`), or rebuild the bundle",
                )
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise BundleError(f"bundle {root} holds {relative}, which is not a regular file", hint=REBUILD_HINT)
            if relative not in listed and relative not in unlisted_ok:
                raise BundleError(
                    f"bundle {root} holds {relative}, which its manifest does not list: it was added after the build",
                    hint=f"remove {relative} from the bundle, or rebuild the bundle if the file belongs in it",
                )


def checksum_error(root: Path, relative: str, actual: str, expected: str) -> BundleError:
    """The error for a file whose sha256 is not the manifest's."""
    return BundleError(
        f"bundle {root} failed its checksum: {relative} has sha256 {actual[:16]}..., "
        f"the manifest says {expected[:16]}...; the file was modified after the build",
        hint="rebuild the bundle with `mmship build`, or restore the original file",
    )


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_files(paths: Sequence[Path]) -> list[str]:
    """Hex sha256 of each file, in order, several files at a time: ``hashlib`` lets go of
    the interpreter while it hashes, so a full-size bundle (~750 MB) is checked in about
    half the time on two cores (serve's start, the build's commit)."""
    workers = max(1, min(len(paths), os.cpu_count() or 1, MAX_HASH_THREADS))
    if workers == 1:
        return [sha256_file(path) for path in paths]
    with ThreadPoolExecutor(workers, thread_name_prefix="mmship-sha256") as pool:
        return list(pool.map(sha256_file, paths))


def verify_files(root: Path, files: dict[str, str]) -> None:
    """Raise :class:`BundleError` naming the first missing or changed file."""
    listed = sorted(files.items())
    for relative, _ in listed:
        if not (root / relative).is_file():
            raise BundleError(
                f"bundle {root} is missing {relative}",
                hint="the bundle was damaged or partly copied; rebuild it or copy it again whole",
            )
    for (relative, expected), actual in zip(listed, sha256_files([root / relative for relative, _ in listed])):
        if actual != expected:
            raise checksum_error(root, relative, actual, expected)


def read_verified(root: Path, relative: str, expected: str | None) -> bytes:
    """The bytes of the listed file ``relative``, read once and checked against ``expected``.

    A final-component symlink is refused by the open itself (``O_NOFOLLOW``); what is
    returned is exactly what was hashed.
    """
    check_path(root, relative, "file")
    if expected is None:
        raise BundleError(
            f"bundle {root}: {relative} is not among the files its manifest checksums, so it is not read",
            hint=REBUILD_HINT,
        )
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(root / relative, flags)
    except OSError as exc:
        raise BundleError(f"bundle {root}: cannot read {relative}: {exc.strerror or exc}", hint=REBUILD_HINT) from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise BundleError(f"bundle {root}: {relative} is not a regular file", hint=REBUILD_HINT)
        data = fh.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise checksum_error(root, relative, actual, expected)
    return data
