"""Which bundles one server serves, and under which names.

``mmship serve`` takes bundle arguments in three forms: ``PATH`` (served under its
manifest's name), ``NAME=PATH`` (served as ``NAME``), or a directory holding several
bundles (each sub-folder with an ``mmship.yaml``, served under its manifest's name, in
name order). Names are unique: two bundles with one name are refused with the fix.
``--precision`` is ``fp32`` for every model, or ``NAME=fp32`` for one.

Several models share the process's cores. Each engine's sessions get every core (a lone
request runs as fast as with one model) and onnxruntime's spinning is off, so threads that
wait give their core away; by default graph runs of different models overlap freely. A
gate allowing at most ``run_slots`` graph runs at a time in the process is available
(``--run-slots 1``: one at a time), but measured on 2 cores it made two models together
slower, not faster (more CPU per item, text throughput below one-after-the-other), while
no gate gave 1.4x the items/s of one after the other at 7% less CPU per item: the figures
are in ``benchmarks/README.md`` (``multi_model.py``).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from mmship.core.bundle import MANIFEST, Bundle
from mmship.core.errors import ConfigError

#: What a served name may be (it appears in URL paths): letters, digits, ``._-``.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class ServedBundle:
    """One bundle to serve: its folder, the name it answers to (``None``: its manifest's)."""

    path: Path
    name: str | None = None


def _check_name(name: str, where: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"{where}: the model name {name!r} cannot be served; names are 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (they appear in /v2/models/{name})",
            hint="name it on the command line: mmship serve NAME=BUNDLE",
        )
    return name


def parse_bundle_args(args: list[str]) -> list[ServedBundle]:
    """``PATH``, ``NAME=PATH`` and directories of bundles, expanded in the order given.

    :raises ConfigError: for a missing folder, a folder holding no bundle, or a bad name.
    """
    if not args:
        raise ConfigError("no bundle to serve", hint="pass a bundle folder written by `mmship build`")
    served: list[ServedBundle] = []
    for arg in args:
        name, sep, rest = arg.partition("=")
        if sep and not Path(arg).exists():
            path, given = Path(rest), _check_name(name, arg)
        else:
            path, given = Path(arg), None
        if not path.is_dir():
            raise ConfigError(f"{path} is not a folder", hint="pass a bundle folder written by `mmship build`, or NAME=FOLDER")
        if (path / MANIFEST).is_file():
            served.append(ServedBundle(path, given))
            continue
        inner = sorted(p for p in path.iterdir() if (p / MANIFEST).is_file())
        if not inner:
            raise ConfigError(
                f"{path} holds no bundle (no {MANIFEST} in it or in its sub-folders)",
                hint="pass a bundle folder written by `mmship build`, or a folder of such folders",
            )
        if given is not None:
            raise ConfigError(
                f"{arg}: {path} holds {len(inner)} bundles; a name names one",
                hint="name each bundle: NAME=FOLDER/SUB, or pass the folder without a name",
            )
        served.extend(ServedBundle(p) for p in inner)
    return served


def parse_precisions(values: list[str]) -> tuple[str | None, dict[str, str]]:
    """``--precision`` values: one without a name (every model's), and ``NAME=PRECISION``
    ones (that model's)."""
    default: str | None = None
    by_name: dict[str, str] = {}
    for value in values:
        name, sep, precision = value.rpartition("=")
        if not sep:
            if default is not None and default != precision:
                raise ConfigError(
                    f"--precision given twice without a model name ({default}, {precision})",
                    hint="give one precision for every model, and NAME=PRECISION for the others",
                )
            default = precision
        else:
            by_name[name] = precision
    return default, by_name


def load_bundles(served: list[ServedBundle]) -> list[tuple[str, Bundle]]:
    """Each bundle loaded (checksums verified) with its served name; refuses two models
    with one name."""
    loaded = []
    for item in served:
        bundle = Bundle.load(item.path)
        name = item.name or bundle.manifest.name
        loaded.append((name, bundle))
    seen: dict[str, Path] = {}
    for name, bundle in loaded:
        if name in seen:
            raise ConfigError(
                f"two bundles would be served as {name!r}: {seen[name]} and {bundle.root}",
                hint=f"name one of them: mmship serve {name}={seen[name]} {name}-2={bundle.root}",
            )
        seen[name] = bundle.root
    return loaded


#: Graph runs at once across the models when ``--run-slots`` is not given (0: no gate).
DEFAULT_RUN_SLOTS = 0


def run_gate(models: int, run_slots: int | None) -> threading.BoundedSemaphore | None:
    """The process-wide gate graph runs pass: ``run_slots`` at a time (``0`` or ``None``
    with :data:`DEFAULT_RUN_SLOTS` of 0: no gate). ``models`` is how many share it."""
    slots = DEFAULT_RUN_SLOTS if run_slots is None else run_slots
    return threading.BoundedSemaphore(slots) if slots > 0 and models > 0 else None
