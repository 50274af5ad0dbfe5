"""The ``onnxruntime`` inference runtime (plugin ``runtime-onnxruntime``): ONNX graphs on
onnxruntime's CPU, CUDA or TensorRT execution providers.

Sessions get the machine's cores with spinning off: two spinning sessions in one process
steal each other's cores (image latency 61 ms instead of 41 ms on 2 cores, FACTS).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmship import hookimpl
from mmship.core.runtime import GraphSession, InferenceRuntime, ServingBackend
from mmship.ort import external_data_locations, make_session, providers_for


class OrtSession:
    """An onnxruntime session behind the :class:`~mmship.core.runtime.GraphSession` API."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._inputs = [i.name for i in session.get_inputs()]
        self._outputs = [o.name for o in session.get_outputs()]

    @property
    def input_names(self) -> list[str]:
        """The graph's input names."""
        return list(self._inputs)

    @property
    def output_names(self) -> list[str]:
        """The graph's output names."""
        return list(self._outputs)

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Run the session on ``feeds``; the named outputs (default: all)."""
        names = list(outputs) if outputs is not None else self._outputs
        return dict(zip(names, self.session.run(names, {n: feeds[n] for n in self._inputs})))


class OnnxRuntime(InferenceRuntime):
    """onnxruntime: CPU everywhere, CUDA and TensorRT with ``onnxruntime-gpu``."""

    name = "onnxruntime"
    description = "ONNX graphs on onnxruntime (CPU; CUDA/TensorRT with onnxruntime-gpu)"
    file_suffixes = (".onnx",)
    requires = "onnxruntime"
    serving_backends = {"triton": ServingBackend("onnxruntime", platform="onnxruntime_onnx")}
    reads_verified_bytes = True

    @classmethod
    def graph_files(cls, path: Path) -> list[Path]:
        """The ONNX file, then the external-data files it names (each a plain relative
        path beside it; an absolute path or ``..`` is a :class:`BundleError`)."""
        return [path, *(path.parent / name for name in external_data_locations(Path(path).read_bytes(), str(path)))]

    def providers(self, accelerator: str = "cpu") -> list[str]:
        """onnxruntime's execution providers for ``accelerator``, best first."""
        return providers_for(accelerator)

    def load(
        self,
        path: Path,
        *,
        threads: int | None = None,
        accelerator: str = "cpu",
        options: Mapping[str, Any] | None = None,
        read: Callable[[Path], bytes] | None = None,
    ) -> GraphSession:
        """An onnxruntime session for the ONNX file at ``path`` (spinning off); with
        ``read``, built from the verified bytes of the file and of its external data."""
        providers = self.providers(accelerator)
        if read is None:
            return OrtSession(make_session(path, threads=threads, spinning=False, providers=providers))
        model = read(path)
        external = {name: read(path.parent / name) for name in external_data_locations(model, str(path))}
        return OrtSession(make_session(model, threads=threads, spinning=False, providers=providers, external=external))


@hookimpl
def mmship_register_runtimes(register: Callable[[type[InferenceRuntime]], None]) -> None:
    """Register the onnxruntime runtime."""
    register(OnnxRuntime)
