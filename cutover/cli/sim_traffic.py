"""CLI commands of `cutover sim` for the traffic part of the simulated world."""

from __future__ import annotations

import typer


def add(sim_app: typer.Typer) -> None:
    """Add this module's commands to the `cutover sim` group."""
