"""The `cutover` command: one typer app, one module per area, errors mapped to exit codes.

The CLI is thin: each area module parses options, calls the package, and prints. Heavy
libraries (pyarrow, xgboost, textual, zeep) are imported inside commands so `--help` is fast.
Data goes to stdout, diagnostics to stderr, so output pipes cleanly.
"""

from __future__ import annotations

import importlib
import sys

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


def main() -> None:
    """Console-script entry point: run the app and map our errors to exit codes."""
    try:
        app()
    except CutoverError as error:
        # Escaped: a message may hold brackets (cutover[ray], lists) that are not markup.
        from rich.markup import escape
        err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(exit_code_for(error))
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
