"""Property: ``load_config`` on any text returns a config or raises one ``ConfigError``
naming the problems, within a time bound.

The loader runs in a worker process that is killed when an example outlives the bound,
so a text that makes the loader hang (a YAML alias bomb, say) fails the test with that
text instead of hanging the suite."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given

from tests.fuzz.strategies import yaml_texts

pytestmark = pytest.mark.fuzz

#: Longest one config text may take to load.
EXAMPLE_TIMEOUT_S = 5.0


def _serve_loads(connection, folder: str) -> None:
    """Worker loop: load each text received, answer what happened."""
    from mmship.core.config import load_config
    from mmship.core.errors import ConfigError

    path = Path(folder) / "deploy_config.yaml"
    while True:
        text = connection.recv()
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_config(path)
            connection.send(("config", ""))
        except ConfigError as exc:
            connection.send(("refused", exc.message if exc.hint else "ConfigError without a hint"))
        except BaseException as exc:  # noqa: BLE001 (the property: nothing else ever escapes)
            connection.send(("crashed", f"{type(exc).__name__}: {exc}"[:500]))


class LoaderWorker:
    """A process running ``load_config``; restarted after a timeout."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.context = multiprocessing.get_context("spawn")
        self._start()

    def _start(self) -> None:
        self.connection, child = self.context.Pipe()
        self.process = self.context.Process(target=_serve_loads, args=(child, str(self.folder)), daemon=True)
        self.process.start()

    def load(self, text: str) -> tuple[str, str]:
        self.connection.send(text)
        if not self.connection.poll(EXAMPLE_TIMEOUT_S + 10 * (not getattr(self, "_warm", False))):
            self.process.kill()
            self.process.join()
            self._start()
            return "timeout", f"load_config took over {EXAMPLE_TIMEOUT_S} s"
        self._warm = True
        return self.connection.recv()

    def close(self) -> None:
        self.process.kill()
        self.process.join()


@pytest.fixture(scope="module")
def loader(tmp_path_factory) -> Iterator[LoaderWorker]:
    worker = LoaderWorker(tmp_path_factory.mktemp("fuzz-config"))
    try:
        yield worker
    finally:
        worker.close()


def test_the_worker_tells_a_config_from_a_refusal(loader):
    assert loader.load("model:\n  adapter: clip\n")[0] in ("config", "refused")
    outcome, message = loader.load("model: [\n")
    assert outcome == "refused" and "YAML" in message


@given(text=yaml_texts())
def test_load_config_answers_or_refuses_in_time(loader, text):
    outcome, detail = loader.load(text)
    assert outcome in ("config", "refused"), f"{outcome}: {detail}"
    if outcome == "refused":
        assert "without a hint" not in detail


@pytest.mark.parametrize("text", ["\x08", "model:\n  adapter: cl\x00ip\n", "\ufffe"])
def test_a_character_yaml_forbids_is_a_config_error(tmp_path, text):
    """PyYAML's reader refuses these before parsing; that used to escape as a ReaderError."""
    from mmship.core.config import load_config
    from mmship.core.errors import ConfigError

    path = tmp_path / "deploy_config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="YAML syntax error"):
        load_config(path)
