"""CLI group `cutover sim`: the simulated world (traffic generator, legacy core, end-of-day files)."""

from __future__ import annotations

import typer

from cutover.cli import sim_eod, sim_feed, sim_legacy, sim_traffic

sim_app = typer.Typer(help="The simulated world: generate traffic, serve the legacy core.",
                      no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Mount `cutover sim` with the commands of its modules."""
    sim_traffic.add(sim_app)
    sim_legacy.add(sim_app)
    sim_eod.add(sim_app)
    sim_feed.add(sim_app)
    app.add_typer(sim_app, name="sim")
