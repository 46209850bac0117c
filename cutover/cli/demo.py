"""`cutover demo`: the whole pipeline on the simulated world, in a fresh folder, no server needed.

The demo is the first thing a new user runs, so it must finish in about two minutes on two
cores, leave every artefact on disk for the commands it suggests next, and stop the legacy core
it started even when a stage fails. The stages themselves live in `demo_stages`.
"""

from __future__ import annotations

from pathlib import Path

import typer

DEMO_DIR_DEFAULT = Path("demo")
DEMO_SIZE_DEFAULT = 150_000
DEMO_SEED_DEFAULT = 7


def register(app: typer.Typer) -> None:
    """Add the top-level `cutover demo` command."""
    app.command("demo")(demo)


def demo(
    folder: Path = typer.Option(DEMO_DIR_DEFAULT, "--dir", help="Folder for everything the demo writes "
                                "(traffic store, cassette, end-of-day files, models, run, ledger)."),
    size: int = typer.Option(DEMO_SIZE_DEFAULT, "--size", min=5_000, max=5_000_000,
                             help="Transactions to generate (history plus replay window)."),
    seed: int = typer.Option(DEMO_SEED_DEFAULT, "--seed", min=0, max=2**32 - 1,
                             help="Seed of the simulated world; "
                             "the same seed gives byte-identical traffic."),
    force: bool = typer.Option(False, "--force", help="Start over in a folder that already holds a demo."),
) -> None:
    """Run the whole pipeline on simulated data, with no server of your own.

    Generates traffic, serves the legacy core over SOAP and calls it through zeep, records a
    cassette, exports and imports end-of-day batch files, trains the fraud model, replays the
    last third of the traffic through legacy and candidate, builds and reconciles the shadow
    ledger, and gates the first cutover phase. Ends on a summary and the next commands.
    """
    from cutover.cli.demo_stages import run_demo

    run_demo(folder, size=size, seed=seed, force=force)
