"""CLI commands of the tui area: `cutover tui RUN_DIR [--plan-db URL] [--ledger URL] [--follow]`.

Textual and pyarrow are imported inside the command so `cutover --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer


def tui(
    run_dir: Path = typer.Argument(..., help="A replay run directory (holds diffs/, report.json)."),
    plan_db: str | None = typer.Option(None, "--plan-db", envvar="CUTOVER_PLAN_DB",
                                       help="SQLAlchemy URL of the cutover plan state; shows the"
                                            " phase, its gate on this run and the history."),
    ledger: str | None = typer.Option(None, "--ledger",
                                      help="SQLAlchemy URL of the shadow ledger (default"
                                           " sqlite:///RUN_DIR/ledger.db when it exists)."),
    follow: bool = typer.Option(False, "--follow",
                                help="Re-read the run every second while a replay writes it."),
) -> None:
    """Watch a run: overview, diffs, one transaction's detail, the ledger and the plan.

    Read-only, except marking a mismatch pattern as expected (key e), which appends a rule to
    RUN_DIR/diff_rules.toml.
    """
    from cutover.errors import StoreError
    if not run_dir.is_dir():
        raise StoreError(f"run directory {run_dir} does not exist")
    from cutover.tui.app import CutoverApp
    from cutover.tui.config import TuiConfig
    CutoverApp(TuiConfig(run_dir=run_dir.resolve(), plan_db=plan_db, ledger_url=ledger,
                         follow=follow)).run()


def register(app: typer.Typer) -> None:
    """Add this area's commands and groups to the root app."""
    app.command("tui")(tui)
