"""The inference-runtime contract: what the server, the build's validation and the
deploy targets need from an engine such as onnxruntime or OpenVINO.

A runtime is a class registered through ``mmship_register_runtimes``. It does three
things and nothing else:

* **load** a graph file (with threads, an accelerator and runtime-specific options from
  the bundle manifest) into a :class:`GraphSession`;
* **run** a session on named arrays, returning named arrays;
* **report** the providers/devices it would use for an accelerator, or say exactly what
  is missing.

It may also declare which model servers run its graph files (``serving_backends``, e.g.
Triton's ``onnxruntime`` backend), so a deploy target that writes a model repository asks
the runtime instead of assuming one, and which files make up one graph (``graph_files``).

A runtime that sets :attr:`InferenceRuntime.reads_verified_bytes` is handed a ``read``
function when it loads a bundle's graph: it reads the graph file and every file the graph
refers to through it and opens nothing itself, so it builds its session from exactly the
bytes that were checked against the bundle's checksums (no gap between the check and the
use, and no file outside the bundle).

Everything above it (batching, preprocessing, HTTP, accuracy figures) is shared, so a new
runtime is a small plugin. Imports of the runtime's own library stay inside the methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np


@runtime_checkable
class GraphSession(Protocol):
    """A loaded graph: run it on named arrays."""

    @property
    def input_names(self) -> list[str]:
        """The graph's input names."""

    @property
    def output_names(self) -> list[str]:
        """The graph's output names."""

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Run the graph; ``outputs`` (default: all) by name."""


@dataclass(frozen=True)
class ServingBackend:
    """How a model server runs a runtime's graph files."""

    #: The server's backend name (Triton: ``onnxruntime``, ``openvino``).
    backend: str
    #: The server's platform name, where it has one (Triton: ``onnxruntime_onnx``);
    #: written instead of ``backend`` when set.
    platform: str | None = None


class InferenceRuntime(ABC):
    """Base class for inference runtimes. Subclasses set the class attributes."""

    #: Unique short name, recorded per graph in the bundle manifest (``onnxruntime``).
    name: ClassVar[str]
    #: One line for ``mmship plugins`` and ``mmship doctor``.
    description: ClassVar[str] = ""
    #: Graph file suffixes this runtime reads (``.onnx``, ``.xml``).
    file_suffixes: ClassVar[tuple[str, ...]] = ()
    #: The Python distribution that must be installed for this runtime (for messages).
    requires: ClassVar[str] = ""
    #: Model servers that run this runtime's graph files, by deploy-target name, e.g.
    #: ``{"triton": ServingBackend("onnxruntime", platform="onnxruntime_onnx")}``. A target
    #: refuses graphs of a runtime that names no backend for it.
    serving_backends: ClassVar[Mapping[str, ServingBackend]] = {}
    #: True when :meth:`load` takes ``read`` (see there). The engine then hands it the
    #: bundle's verified reader; a runtime without it is given the path only and opens the
    #: file itself after the bundle was verified.
    reads_verified_bytes: ClassVar[bool] = False
    #: True when :meth:`load` takes ``streams``: a session that runs that many calls at once
    #: from different threads, each on its share of ``threads`` (OpenVINO's streams). The
    #: server then runs that many batches of the graph at once (``mmship serve --streams``);
    #: a runtime without it runs one batch at a time with every thread.
    supports_streams: ClassVar[bool] = False

    @classmethod
    def graph_files(cls, path: Path) -> list[Path]:
        """The files that make up the graph at ``path``, ``path`` first (default: only it;
        e.g. OpenVINO's ``.bin`` beside its ``.xml``), for targets that copy graphs."""
        return [path]

    @classmethod
    def serving_parameters(cls, target: str, options: Mapping[str, Any]) -> dict[str, str]:
        """Backend parameters a model server needs to run a graph loaded with ``options``
        (its manifest load options), e.g. Triton's OpenVINO ``HINT_BF16``; default none."""
        return {}

    @classmethod
    def available(cls) -> bool:
        """True when the runtime's library imports on this machine."""
        return True

    @abstractmethod
    def providers(self, accelerator: str = "cpu") -> list[str]:
        """The providers/devices used for ``accelerator`` (``cpu``, ``cuda``, ...), best
        first; raises :class:`~mmship.core.errors.RuntimeUnavailableError` naming what is
        missing and how to install it."""

    @abstractmethod
    def load(
        self,
        path: Path,
        *,
        threads: int | None = None,
        accelerator: str = "cpu",
        options: Mapping[str, Any] | None = None,
        read: Callable[[Path], bytes] | None = None,
    ) -> GraphSession:
        """Load the graph at ``path``.

        :param threads: intra-op threads (default: the cores this process may use).
        :param accelerator: ``cpu``, ``cuda``, ``tensorrt``, ... (see :meth:`providers`).
        :param options: runtime-specific load options recorded with the graph in the
            manifest (e.g. an inference precision hint).
        :param read: only for runtimes with :attr:`reads_verified_bytes`; when given,
            ``read(path)`` returns the graph file's bytes and ``read(other)`` those of a
            file the graph refers to, each checked against the bundle's sha256 (a file
            outside the bundle or not listed in it raises
            :class:`~mmship.core.errors.BundleError`). The runtime builds its session from
            those bytes and opens no file itself.

        Runtimes with :attr:`supports_streams` also take ``streams: int``: how many calls
        the session serves at once, ``threads`` split between them (1: one call at a
        time with every thread).
        """
