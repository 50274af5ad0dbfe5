"""The ``openvino`` inference runtime (plugin ``runtime-openvino``): OpenVINO IR graphs
(``.xml`` + ``.bin``) on OpenVINO's CPU plugin.

Serving needs only the ``openvino`` package (``pip install 'mmship[openvino]'``); building
OpenVINO variants (IR conversion, NNCF int8) lives in
:mod:`mmship.plugins.stages.openvino_variants` and needs ``mmship[openvino-build]``.

* Sessions are built from the verified bytes of the ``.xml`` and its ``.bin``
  (:attr:`reads_verified_bytes`): nothing is reopened after the checksum.
* Each compiled model gets the cores this process may use, one stream, the latency hint,
  threads not pinned: two towers in one process then take turns on the cores instead of
  splitting them.
* No telemetry: ``openvino`` is imported with ``openvino_telemetry`` unimportable (see
  :func:`_import_openvino`); import it through :func:`import_openvino`.
* Load options recorded in the manifest are OpenVINO properties; only those in
  :data:`ALLOWED_OPTIONS` are accepted (a bundle must not be able to set e.g. a cache
  folder the server would write into).
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmship import hookimpl
from mmship.core.errors import BundleError, RuntimeUnavailableError
from mmship.core.runtime import GraphSession, InferenceRuntime, ServingBackend
from mmship.hardware import cpu_threads

#: Properties a bundle may set per graph, and the values each may take.
ALLOWED_OPTIONS: dict[str, tuple[str, ...]] = {
    "INFERENCE_PRECISION_HINT": ("f32", "bf16", "f16"),
    "EXECUTION_MODE_HINT": ("PERFORMANCE", "ACCURACY"),
}
#: Serving accelerator -> OpenVINO device.
DEVICES = {"cpu": "CPU"}
INSTALL_HINT = "pip install 'mmship[openvino]' (or serve with --runtime onnxruntime)"


#: Held while a module is made unimportable (:func:`without_module`): the build quantizes
#: towers in threads, and two threads editing ``sys.modules`` for the same name could
#: restore each other's state.
IMPORT_GUARD_LOCK = threading.RLock()


@contextlib.contextmanager
def without_module(name: str) -> Iterator[None]:
    """Make ``name`` unimportable inside the block (``import`` raises ImportError); one
    thread at a time (:data:`IMPORT_GUARD_LOCK`)."""
    with IMPORT_GUARD_LOCK:
        before = sys.modules.get(name, ...)
        sys.modules[name] = None  # type: ignore[assignment]
        try:
            yield
        finally:
            if before is ...:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = before


@functools.cache
def _import_openvino() -> Any:
    """``openvino``, imported with ``openvino_telemetry`` unimportable: ``import openvino``
    otherwise sends a usage event ("ov import") from a forked child process and writes a
    client id into the home folder whenever no consent file says no (checked: openvino
    2026.4). Without the telemetry package OpenVINO takes its own stub and sends nothing."""
    with IMPORT_GUARD_LOCK:  # functools.cache does not stop two threads' first calls
        if "openvino" in sys.modules:
            import openvino
        else:
            with without_module("openvino_telemetry"):
                import openvino
    return openvino


def import_openvino() -> Any:
    """The ``openvino`` module, telemetry off (raises ImportError when not installed)."""
    return _import_openvino()


@functools.cache
def core() -> Any:
    """The process's one ``openvino.Core`` (compiled models of one core share its CPU
    executor, so towers do not each start their own thread pool)."""
    with IMPORT_GUARD_LOCK:
        return _import_openvino().Core()


def check_options(options: Mapping[str, Any] | None, where: str) -> dict[str, str]:
    """``options`` as OpenVINO properties, each checked against :data:`ALLOWED_OPTIONS`."""
    checked: dict[str, str] = {}
    for key, value in (options or {}).items():
        allowed = ALLOWED_OPTIONS.get(key)
        if allowed is None or str(value) not in allowed:
            raise BundleError(
                f"{where}: OpenVINO load option {key}={value!r} is not accepted "
                f"(accepted: {', '.join(f'{k} in {v}' for k, v in ALLOWED_OPTIONS.items())})",
                hint="rebuild the bundle with `mmship build`; bundles may not set other OpenVINO properties",
            )
        checked[key] = str(value)
    return checked


def _names(ports: Any) -> tuple[list[str], dict[str, int]]:
    """Each port's name as the ONNX graph had it, and every name of every port -> its index.

    A port may carry several tensor names (``pixel_values`` and an internal
    ``/vision_model/.../Cast_output_0``); the graph's own name is the one without a path.
    """
    canonical: list[str] = []
    index: dict[str, int] = {}
    for i, port in enumerate(ports):
        names = sorted(port.get_names(), key=lambda n: (n.startswith("/") or "/" in n, len(n), n))
        canonical.append(names[0] if names else port.get_any_name())
        for name in names:
            index.setdefault(name, i)
    return canonical, index


class OvSession:
    """A compiled OpenVINO model behind the :class:`~mmship.core.runtime.GraphSession` API.

    Each calling thread gets its own infer request (a request is not safe to share), and
    outputs are copied out of the request's buffers before the next call reuses them.
    """

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self._inputs, self._input_ports = _names(compiled.inputs)
        self._outputs, self._output_ports = _names(compiled.outputs)
        self._local = threading.local()

    @property
    def input_names(self) -> list[str]:
        """The graph's input names."""
        return list(self._inputs)

    @property
    def output_names(self) -> list[str]:
        """The graph's output names."""
        return list(self._outputs)

    def _request(self) -> Any:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        return request

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Run the compiled model on ``feeds``; the named outputs (default: all)."""
        request = self._request()
        request.infer({self._input_ports[name]: np.ascontiguousarray(feeds[name]) for name in self._inputs})
        names = list(outputs) if outputs is not None else self._outputs
        return {name: np.array(request.get_output_tensor(self._output_ports[name]).data, copy=True) for name in names}


class OpenVinoRuntime(InferenceRuntime):
    """OpenVINO on the CPU: fp32 IR, bf16 by inference-precision hint, NNCF int8 IR."""

    name = "openvino"
    description = "OpenVINO IR graphs on OpenVINO's CPU plugin (pip install 'mmship[openvino]')"
    file_suffixes = (".xml",)
    requires = "openvino"
    serving_backends = {"triton": ServingBackend("openvino")}
    reads_verified_bytes = True
    supports_streams = True

    @classmethod
    def graph_files(cls, path: Path) -> list[Path]:
        """The IR's ``.xml`` and the ``.bin`` of its weights beside it."""
        return [path, path.with_suffix(".bin")]

    @classmethod
    def serving_parameters(cls, target: str, options: Mapping[str, Any]) -> dict[str, str]:
        """Triton's OpenVINO backend parameters: one stream, the latency hint, and
        ``HINT_BF16`` for a variant loaded in bf16 (the backend has no f32 hint: on CPUs
        with AMX it may run an fp32 IR in bf16)."""
        if target != "triton":
            return {}
        parameters = {"NUM_STREAMS": "1", "PERFORMANCE_HINT": "LATENCY"}
        if options.get("INFERENCE_PRECISION_HINT") == "bf16":
            parameters["HINT_BF16"] = "YES"
        return parameters

    @classmethod
    def available(cls) -> bool:
        """True when ``openvino`` imports here."""
        try:
            _import_openvino()
        except ImportError:
            return False
        return True

    def providers(self, accelerator: str = "cpu") -> list[str]:
        """The OpenVINO device for ``accelerator`` (the CPU only)."""
        if not self.available():
            raise RuntimeUnavailableError("the openvino runtime is not installed here", hint=INSTALL_HINT)
        device = DEVICES.get(accelerator)
        if device is None:
            raise RuntimeUnavailableError(
                f"mmship runs OpenVINO graphs on the CPU only, not on {accelerator!r}",
                hint="serve with --accelerator cpu, or --runtime onnxruntime for CUDA/TensorRT",
            )
        return [device]

    def load(
        self,
        path: Path,
        *,
        threads: int | None = None,
        accelerator: str = "cpu",
        options: Mapping[str, Any] | None = None,
        read: Callable[[Path], bytes] | None = None,
        streams: int = 1,
    ) -> GraphSession:
        """Compile the IR at ``path`` (with ``read``: from the verified bytes of the
        ``.xml`` and ``.bin``) with the cores this process may use and ``options``.

        :param streams: 1 (default): one call at a time on every thread, the latency
            hint; more: that many calls at once, each stream on its share of the threads
            (the throughput hint), for a server that runs several batches at once.
        """
        device = self.providers(accelerator)[0]
        ov = _import_openvino()
        config = {
            "INFERENCE_NUM_THREADS": int(threads or cpu_threads()),
            "NUM_STREAMS": int(streams),
            "PERFORMANCE_HINT": "LATENCY" if streams <= 1 else "THROUGHPUT",
            # the server's own threads (decoding, HTTP) share these cores: threads pinned to
            # cores wait when those run (image int8 b1 309 ms pinned vs 274 ms not, at load 9)
            "ENABLE_CPU_PINNING": False,
            **check_options(options, str(path)),
        }
        if read is None:
            model = core().read_model(str(path))
        else:
            xml, weights = read(path), read(path.with_suffix(".bin"))
            model = core().read_model(model=xml, weights=ov.Tensor(np.frombuffer(weights, dtype=np.uint8).copy()))
        return OvSession(core().compile_model(model, device, config))


@hookimpl
def mmship_register_runtimes(register: Callable[[type[InferenceRuntime]], None]) -> None:
    """Register the OpenVINO runtime (registered whether or not ``openvino`` is
    installed: :meth:`OpenVinoRuntime.available` says, and serving falls back)."""
    register(OpenVinoRuntime)
