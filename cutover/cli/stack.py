"""CLI commands of the stack area (registered on the root app by cutover.cli)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands and groups to the root app."""
