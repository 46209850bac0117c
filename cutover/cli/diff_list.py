"""`cutover diff list RUN`: the run's diffs as a table or JSON, filtered and sorted.

The same paged query the TUI's Diffs screen runs (``cutover.tui.views.diffs``: pure data, no
Textual), so a finding on screen can be listed in a script and the other way round. Amount
filters and the amount sort use the indicative reference amount (cutover/fixtures/fx), since
minor units of different currencies do not compare.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import typer
from rich.console import Console
from rich.table import Table

from cutover.errors import InputError

out = Console()
LIMIT_MAX: Final = 500
SORTS: Final = {"ts": "ts", "amount": "amount_minor", "severity": "severity",
                "category": "category", "txn_id": "txn_id"}


def diff_list_cmd(
    run_dir: Path = typer.Argument(..., help="A replay run directory (holds diffs/)."),
    category: str = typer.Option("mismatches", "--category", help="A category, 'mismatches' "
                                 "(not match, quarantined or expected) or 'all'."),
    segment: str = typer.Option("", "--segment", help="DIMENSION=VALUE, e.g. "
                                "merchant_country=NG (merchant_id, merchant_country, channel, mcc)."),
    min_amount: float | None = typer.Option(None, "--min-amount", min=0, help="At least this "
                                            "much in the indicative reference currency (USD)."),
    since: str | None = typer.Option(None, "--since", help="From this time (ISO, UTC)."),
    until: str | None = typer.Option(None, "--until", help="Before this time (ISO, UTC)."),
    sort: str = typer.Option("ts", "--sort", help=f"One of {', '.join(SORTS)}; amount sorts by "
                             "the indicative reference amount."),
    descending: bool = typer.Option(False, "--desc", help="Largest / latest first."),
    limit: int = typer.Option(50, "--limit", min=1, max=LIMIT_MAX, help="Rows per page."),
    page_no: int = typer.Option(1, "--page", min=1, help="Page number, from 1."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List a run's diffs with filters (category, segment, amount, time) and a sort."""
    from cutover.store.filters import parse_when
    from cutover.tui.views import diffs as views

    if sort not in SORTS:
        raise InputError(f"--sort {sort!r}: one of {', '.join(SORTS)}")
    try:
        query = views.DiffQuery(category=category, segment=views.parse_segment(segment),
                                min_amount_ref=min_amount, since=parse_when(since),
                                until=parse_when(until, "--until"), sort=SORTS[sort],
                                descending=descending, page=page_no - 1, page_rows=limit)
    except ValueError as exc:
        allowed = ", ".join(views.CATEGORY_CHOICES)
        raise InputError(f"{exc}; --category is one of {allowed}") from exc
    dataset = views.open_diffs(run_dir)
    if dataset is None:
        raise InputError(f"{run_dir}: no diffs parts; run `cutover replay` first")
    total = views.count_rows(dataset, query)
    rows = _plain(views.page(dataset, query).to_pylist())
    if as_json:
        typer.echo(json.dumps({"total": total, "page": page_no, "rows": rows}, default=str))
        return
    out.print(_table(rows, total, page_no, limit))


def _plain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with their amount as a money string beside the minor units."""
    from cutover.domain import MoneyError, format_money
    for row in rows:
        try:
            row["amount"] = format_money(int(row["amount_minor"]), row["currency"])
        except (MoneyError, TypeError, ValueError):
            row["amount"] = None
    return rows


def _table(rows: list[dict[str, Any]], total: int, page_no: int, limit: int) -> Table:
    first = (page_no - 1) * limit + 1
    table = Table("txn_id", "time (UTC)", "category", "amount", "segment", "legacy",
                  "candidate", title=f"diffs {first:,}-{first + len(rows) - 1:,} of {total:,}"
                  if rows else f"no diffs on page {page_no} ({total:,} match)")
    for r in rows:
        table.add_row(r["txn_id"], f"{r['ts']:%Y-%m-%d %H:%M:%S}" if r["ts"] else "",
                      r["category"] + (" (expected)" if r["expected"] else ""),
                      r["amount"] or str(r["amount_minor"]),
                      f"{r['merchant_id']} {r['merchant_country']} {r['channel']}",
                      str(r["legacy_decision"]), str(r["candidate_decision"]))
    return table
