"""State files of detached local deployments, and the processes they name.

``$MMSHIP_HOME/deployments/<name>.json`` records the server's pid together with its start
time and command line. A pid alone is not an identity: once the server exits, the system
may give the number to any other process. So before a recorded process is reported running
or signalled, it must still be the one mmship started (same start time, same command line);
a pid that is not an integer above 1 (``-1`` would signal every process of the user, ``0``
the whole process group) is refused outright. Deployment names become file names, so they
are checked to be plain names.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import psutil

from mmship.core.errors import DeployError

#: A deployment name: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NAME_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
#: psutil's start time is the boot time plus the process's start ticks, and Linux reports
#: the boot time in whole seconds that can shift by one between reads: where the start
#: ticks themselves can be read (Linux ``/proc``) they are compared exactly instead.
START_TIME_TOLERANCE_S = 1.5


def is_plain_name(name: object) -> bool:
    """True when ``name`` can be a deployment name (and so a file name)."""
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def check_name(name: str) -> str:
    """``name`` if it is a plain deployment name, else a :class:`DeployError` with the rule."""
    if not is_plain_name(name):
        raise DeployError(
            f"deployment name {name!r} is not a plain name: expected {NAME_RULE}",
            hint="pass e.g. --set deployment_name=clip-local",
        )
    return name


def state_dir() -> Path:
    """Where detached local deployments keep their state and logs."""
    root = Path(os.environ.get("MMSHIP_HOME", Path.home() / ".mmship")) / "deployments"
    root.mkdir(parents=True, exist_ok=True)
    return root


def state_path(name: str) -> Path:
    """The state file of deployment ``name`` (the name checked first)."""
    return state_dir() / f"{check_name(name)}.json"


def log_path(name: str) -> Path:
    """The log file of deployment ``name`` (the name checked first)."""
    return state_dir() / f"{check_name(name)}.log"


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), or ``None`` elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()
        return int(fields[19])  # field 22 of proc(5); the split starts at field 3
    except (OSError, IndexError, ValueError):
        return None


def identity(pid: int, cmdline: list[str]) -> dict[str, Any]:
    """What identifies the process ``pid`` that mmship just started with ``cmdline``: its
    start time and that command line (the one given to exec: right after exec the
    system may still show an empty one)."""
    process = psutil.Process(pid)
    found: dict[str, Any] = {"started": process.create_time(), "cmdline": [str(arg) for arg in cmdline]}
    ticks = start_ticks(pid)
    if ticks is not None:
        found["start_ticks"] = ticks
    return found


def _same_start(process: psutil.Process, record: dict[str, Any]) -> bool:
    ticks, recorded = start_ticks(process.pid), record.get("start_ticks")
    if ticks is not None and type(recorded) is int:
        return ticks == recorded
    return abs(process.create_time() - record["started"]) <= START_TIME_TOLERANCE_S


def write_record(name: str, record: dict[str, Any]) -> Path:
    """Write the state file atomically (a temporary file renamed into place)."""
    path = state_path(name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_record(path: Path) -> dict[str, Any]:
    """A state file's record, with its pid checked to be an integer above 1."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DeployError(f"state file {path} cannot be read: {exc}", hint=f"delete {path}") from None
    if not isinstance(record, dict):
        raise DeployError(f"state file {path} holds {type(record).__name__}, not a record", hint=f"delete {path}")
    pid = record.get("pid")
    if type(pid) is not int or pid <= 1:
        raise DeployError(
            f"state file {path} records pid {pid!r}; expected the integer pid (above 1) of a server mmship started, "
            "so nothing is signalled",
            hint=f"delete {path}; if its server still runs, find it with `ps` and stop it by hand",
        )
    return record


def verified_process(record: dict[str, Any], path: Path) -> psutil.Process | None:
    """The recorded server if it still runs as mmship started it, else ``None`` (it exited,
    and its pid may now belong to another process). A record without start time and
    command line (written before they were recorded) cannot be verified: DeployError."""
    started, cmdline = record.get("started"), record.get("cmdline")
    if not isinstance(started, (int, float)) or not isinstance(cmdline, list):
        raise DeployError(
            f"state file {path} has no start time and command line for pid {record['pid']}, so mmship cannot tell "
            "whether that process is still its server",
            hint=f"check `ps -p {record['pid']} -o args`, stop the server by hand if it is one, then delete {path}",
        )
    try:
        process = psutil.Process(record["pid"])
        same = _same_start(process, record) and process.cmdline() == cmdline
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return None  # another user's process: not the server this user started
    return process if same else None


def stop_verified(process: psutil.Process, timeout_s: float) -> None:
    """SIGTERM (requests in flight drain), SIGKILL after ``timeout_s``. psutil checks the
    process is still the same one (pid and start time) before each signal."""
    try:
        process.terminate()
        process.wait(timeout_s)
    except psutil.TimeoutExpired:
        process.kill()
        process.wait(timeout_s)
    except psutil.NoSuchProcess:
        return
