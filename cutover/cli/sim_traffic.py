"""CLI commands of `cutover sim` for the traffic part of the simulated world."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def add(sim_app: typer.Typer) -> None:
    """Add this module's commands to the `cutover sim` group."""
    sim_app.command("traffic")(traffic)


def traffic(
    rows: int = typer.Option(..., "--rows", min=1, max=100_000_000,
                             help="How many transactions to generate."),
    seed: int = typer.Option(..., "--seed", min=0, max=2**32 - 1,
                             help="Seed: the same seed gives the same store."),
    out: Path = typer.Option(..., "--out", "-o",
                             help="Store directory (new, empty, or a previous store to replace)."),
    start: str = typer.Option("2026-09-01", "--start", help="First UTC day, YYYY-MM-DD."),
    days: int | None = typer.Option(None, "--days", min=1, max=3_660,
                                    help="Number of days. Default max(7, rows // 5000)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Generate a deterministic traffic store: legacy outcomes, fraud labels, gateway results."""
    import datetime as dt

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cutover.errors import InputError
    from cutover.sim.traffic import generate

    try:
        first_day = dt.date.fromisoformat(start)
    except ValueError as exc:
        raise InputError(f"--start {start!r} is not a date YYYY-MM-DD") from exc
    if rows <= 0:
        raise InputError(f"--rows must be positive, got {rows}")
    err = Console(stderr=True)
    columns = (TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("rows", total=rows)
        summary = generate(out, rows, seed, start=first_day, days=days,
                           on_progress=lambda done: progress.update(task, completed=done))
    data = {"path": str(summary.path), "rows": summary.rows, "days": len(summary.days),
            "first_day": summary.days[0] if summary.days else None,
            "last_day": summary.days[-1] if summary.days else None,
            "fraud_rows": summary.fraud_rows, "fraud_by_pattern": summary.fraud_by_pattern,
            "chargeback_rows": summary.chargeback_rows,
            "legacy_approved": summary.legacy_approved, "legacy_declined": summary.legacy_declined,
            "legacy_review": summary.legacy_review, "currencies": summary.currencies,
            "seconds": round(summary.seconds, 3)}
    if as_json:
        typer.echo(json.dumps(data))
        return
    _print_table(data)


def _print_table(data: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="traffic store", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in data.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        table.add_row(key.replace("_", " "), str(value))
    Console().print(table)
