"""The root Typer app and ``main()``: exit codes and error handling for every command.

Exit codes: 0 success; 1 a user error (one paragraph with the fix, no traceback unless
``--debug`` or ``MMSHIP_DEBUG=1``); 2 a usage error.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Sequence

import typer

from mmship import __version__
from mmship.core.cli.console import console, print_error
from mmship.core.errors import MmshipError


def _version(value: bool) -> None:
    if value:
        console.print(f"mmship {__version__}")
        raise typer.Exit(0)


def build_app(with_plugins: bool = True) -> typer.Typer:
    """The ``mmship`` app with every command plugins add through
    ``mmship_register_commands`` (mmship's own commands are plugins too); without
    ``with_plugins``, only the root options."""
    app = typer.Typer(
        name="mmship",
        help="Ship Hugging Face multimodal models (CLIP, FLAVA, fusion) from checkpoint to endpoint.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
        debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    ) -> None:
        """mmship: build, serve, deploy and benchmark multimodal models."""
        if debug:
            os.environ["MMSHIP_DEBUG"] = "1"

    if with_plugins:
        from mmship.core.manager import get_plugin_manager

        manager = get_plugin_manager()
        # pluggy lists implementations last-registered first; commands appear in load order
        for impl in reversed(manager.pm.hook.mmship_register_commands.get_hookimpls()):
            try:
                manager.call_for_plugin("mmship_register_commands", impl.plugin_name, app=app)
            except Exception as exc:  # a plugin's commands must not break the CLI
                manager.fail(
                    impl.plugin_name, f"mmship_register_commands failed: {type(exc).__name__}: {exc}", traceback.format_exc()
                )
    return app


def _exception_types(name: str) -> tuple[type[BaseException], ...]:
    """``name`` from click and from typer: typer 0.29 vendors its own click, whose
    exceptions (and ``typer.Exit``/``typer.Abort``) are not click's."""
    found: list[type[BaseException]] = []
    for module_name in ("click.exceptions", "typer._click.exceptions", "typer.exceptions"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        cls = getattr(module, name, None)
        if isinstance(cls, type) and cls not in found:
            found.append(cls)
    return tuple(found)


EXIT = _exception_types("Exit")
ABORT = _exception_types("Abort")
CLICK_ERROR = _exception_types("ClickException")


def _debug(argv: Sequence[str]) -> bool:
    return "--debug" in argv or os.environ.get("MMSHIP_DEBUG", "") not in {"", "0"}


#: The exit code of a command stopped by Ctrl-C (128 + SIGINT).
INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns (and, as a console script, exits with) the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app = build_app()
        command = typer.main.get_command(app)
        result = command.main(args=args, prog_name="mmship", standalone_mode=False)
        if result == INTERRUPTED:  # typer answers Ctrl-C with this code, silently
            print_error("interrupted")
        return result if isinstance(result, int) else 0
    except MmshipError as exc:
        if _debug(args):
            traceback.print_exc()
        print_error(exc.message, exc.hint)
        return exc.exit_code
    except EXIT as exc:
        return exc.exit_code
    except ABORT:
        print_error("aborted")
        return 1
    except CLICK_ERROR as exc:  # usage errors
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        print_error("interrupted")
        return INTERRUPTED


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
