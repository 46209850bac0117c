"""The shadow ledger, read-only: both books per account class, the audit chain, reconciliation.

Reads through ``cutover.shadow.ledger`` (the same functions as `cutover shadow compare|verify`).
Reconciliation needs the legacy end-of-day file, which a run directory does not hold, so the
screen shows the breaks of a saved `cutover shadow reconcile --json` result
(RUN_DIR/reconcile.json) when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cutover.errors import CutoverError
from cutover.shadow.ledger.compare import class_totals
from cutover.shadow.ledger.uow import default_url, make_engine
from cutover.shadow.ledger.verify import verify_ledger
from cutover.tui.views.run import read_json

RECONCILE_FILE: Final = "reconcile.json"
LEDGER_FILE: Final = "ledger.db"


@dataclass
class LedgerView:
    """What the Ledger screen shows; ``error`` says why a part is missing."""

    url: str | None
    balances: list[dict[str, Any]] = field(default_factory=list)
    verify: dict[str, Any] | None = None
    reconcile: dict[str, Any] | None = None
    error: str | None = None


def default_ledger_url(run_dir: Path) -> str | None:
    """sqlite:///RUN_DIR/ledger.db when that file exists, else None."""
    if (Path(run_dir) / LEDGER_FILE).is_file():
        return default_url(Path(run_dir))
    return None


def read_ledger(url: str | None, run_dir: Path, with_verify: bool = True) -> LedgerView:
    """Balances per class of both books, the verify result and any saved reconciliation."""
    view = LedgerView(url=_shown_url(url, run_dir) if url else None)
    view.reconcile, _ = read_json(Path(run_dir) / RECONCILE_FILE)
    if url is None:
        view.error = "no ledger: run `cutover shadow apply RUN_DIR` or pass --ledger URL"
        return view
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    try:
        engine = make_engine(url)
    except (CutoverError, SQLAlchemyError) as exc:
        view.error = f"cannot read the ledger: {exc}"
        return view
    try:
        if not inspect(engine).has_table("ledger_entries"):
            view.error = "the database holds no shadow ledger"
            return view
        view.balances = class_balances(engine)
        if with_verify:
            view.verify = verify_summary(engine)
    except (CutoverError, SQLAlchemyError) as exc:
        view.error = f"cannot read the ledger: {exc}"
    finally:
        # Disposed on every path, so no pooled connection is closed later by the garbage
        # collector on the UI thread.
        engine.dispose()
    return view


def class_balances(engine: Any) -> list[dict[str, Any]]:
    """One row per (account class, currency): legacy, candidate, candidate minus legacy."""
    totals = class_totals(engine)
    keys = sorted({(cls, cur) for _, cls, cur in totals})
    rows = []
    for account_class, currency in keys:
        legacy = totals.get(("legacy", account_class, currency), 0)
        candidate = totals.get(("candidate", account_class, currency), 0)
        rows.append({"account_class": account_class, "currency": currency,
                     "legacy_minor": legacy, "candidate_minor": candidate,
                     "delta_minor": candidate - legacy})
    return rows


def verify_summary(engine: Any) -> dict[str, Any]:
    """`cutover shadow verify` as plain data: ok, entries checked, the first break if any."""
    report = verify_ledger(engine)
    return {"ok": report.ok, "entries": report.entries,
            "chain_break": None if report.chain_break is None else str(report.chain_break),
            "nonzero_books": [s for s in report.book_sums if s["sum_minor"] != 0],
            "balance_drift": len(report.balance_drift)}


def _shown_url(url: str, run_dir: Path) -> str:
    """The default ledger as RUN_DIR/ledger.db (short, and the same on every machine)."""
    if url == default_url(Path(run_dir)):
        return f"RUN_DIR/{LEDGER_FILE}"
    return _redacted(url)


def _redacted(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL we cannot parse is shown as unknown, never raised
        return "<ledger URL>"
