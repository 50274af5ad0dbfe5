"""The CLI draws on the process's rich console, so a library's progress bars during a
build (NNCF's: ``Progress(console=None)``, i.e. ``rich.get_console()``) are stacked under
the stage's status line instead of two consoles redrawing the same terminal lines."""

from __future__ import annotations

import rich
from rich.progress import Progress

from mmship.core.cli.console import console


def test_a_library_progress_bar_nests_in_the_build_status():
    assert console is rich.get_console()
    with console.status("variant openvino-int8: building"):
        with Progress() as bar:  # no console given, as NNCF's track creates it
            assert bar.live._nested  # drawn inside the status's display, not over it
            bar.add_task("Statistics collection", total=1)
