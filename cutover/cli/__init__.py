"""The `cutover` command: one typer app, one module per area, errors mapped to exit codes.

The CLI is thin: each area module parses options, calls the package, and prints. Heavy
libraries (pyarrow, xgboost, textual, zeep) are imported inside commands so `--help` is fast.
Data goes to stdout, diagnostics to stderr, so output pipes cleanly.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Final

import typer
from rich.console import Console

from cutover import __version__
from cutover.errors import CutoverError, exit_code_for

#: Area modules under cutover.cli; each exposes ``register(app)``. Order is the --help order.
AREAS = ("demo", "sim", "files", "adapters", "soap", "stack", "replay", "shadow", "migrate",
         "tui", "live")

app = typer.Typer(
    name="cutover",
    help="Move a payment backend off a legacy core onto a new stack, phase by phase, on evidence.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
    add_completion=False,
)
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cutover {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Move a payment backend off a legacy core onto a new stack, phase by phase, on evidence."""


for _area in AREAS:
    importlib.import_module(f"cutover.cli.{_area}").register(app)


#: Set to 1 (or pass --debug) to see the traceback of an unexpected error.
DEBUG_ENV: Final = "CUTOVER_DEBUG"
#: What an unexpected error exits with: the same as a broken invariant (nothing we expected).
UNEXPECTED_EXIT: Final = 4


def _print_error(text: str) -> None:
    # Escaped: a message may hold brackets (cutover[ray], lists) that are not markup. Masked:
    # a message may quote an input value, and a card number must not reach a terminal log.
    from rich.markup import escape

    from cutover.pan import mask_pans
    err.print(f"[bold red]error:[/] {escape(mask_pans(text))}", highlight=False, soft_wrap=True)


def _debug_wanted(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def main() -> None:
    """Console-script entry point: run the app and map our errors to exit codes.

    The last line of defence: an exception that is not one of ours (a bug, or a foreign
    error nobody translated) becomes one line and exit 4, never a traceback, unless
    ``--debug`` or ``CUTOVER_DEBUG=1`` asks for it. Real causes are fixed where they arise.
    """
    debug = _debug_wanted(sys.argv)
    if "--debug" in sys.argv:
        sys.argv.remove("--debug")
    try:
        app()
    except CutoverError as error:
        _print_error(str(error))
        sys.exit(exit_code_for(error))
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 (the guard exists to catch what nobody expected)
        if debug:
            raise
        first = (str(error).splitlines() or [""])[0][:300]
        _print_error(f"unexpected {type(error).__name__}: {first} (a bug in cutover; rerun"
                     f" with --debug or {DEBUG_ENV}=1 for the traceback)")
        sys.exit(UNEXPECTED_EXIT)
