"""CLI commands of the shadow area: `cutover shadow apply|verify|anchor|reconcile|compare|balances`.

Thin: each command resolves the ledger database, calls cutover.shadow.ledger, and prints.
Data goes to stdout (a table, or one JSON object with --json), diagnostics to stderr. pyarrow
and SQLAlchemy are imported inside the commands so `cutover --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

shadow_app = typer.Typer(
    short_help="The shadow ledger: apply a replay, verify, reconcile, compare the two books.",
    help="The shadow ledger: a double-entry twin of the legacy books and the candidate's books."
         " Apply a replay's diffs, verify the audit chain, reconcile against the legacy"
         " end-of-day file, and compare what each side would have booked.",
    no_args_is_help=True,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

RUN_DIR_HELP = ("A replay run directory (holds diffs/ and, by default, the ledger at"
                " RUN_DIR/ledger.db).")
DB_HELP = ("Any SQLAlchemy URL for the ledger, e.g. sqlite:///books.db or"
           " postgresql+psycopg://user@host/db. Default: sqlite:///RUN_DIR/ledger.db.")
JSON_HELP = "Print one JSON object on stdout instead of a table."


def register(app: typer.Typer) -> None:
    """Add this area's commands and groups to the root app."""
    app.add_typer(shadow_app, name="shadow")


def _engine(run_dir: Path | None, db: str | None, must_exist: bool = True) -> Any:
    from sqlalchemy import inspect

    from cutover.errors import StoreError
    from cutover.shadow.ledger.uow import default_url, make_engine
    if db is None and run_dir is None:
        raise StoreError("give a RUN_DIR or --db URL to say which ledger to use")
    if db is None:
        assert run_dir is not None
        if not run_dir.is_dir():
            raise StoreError(f"run directory {run_dir} does not exist")
        db = default_url(run_dir)
        if must_exist and not (run_dir / "ledger.db").is_file():
            raise StoreError(f"{run_dir} has no ledger.db; run `cutover shadow apply {run_dir}`")
    engine = make_engine(db)
    if must_exist and not inspect(engine).has_table("ledger_entries"):
        raise StoreError("the database holds no shadow ledger; run `cutover shadow apply`")
    return engine


def _print_json(payload: dict[str, Any]) -> None:
    typer.echo(json.dumps(payload, indent=2, sort_keys=True))


@shadow_app.command("apply")
def apply_cmd(
    run_dir: Path = typer.Argument(..., help=RUN_DIR_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    batch_rows: int = typer.Option(100_000, "--batch-rows", min=1, max=10_000_000,
                                   help="Diff rows planned and written at a time; each part"
                                        " file is still one transaction."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar on stderr."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Post every diffs part of RUN_DIR into both books; resumable and idempotent.

    Each part is applied in one transaction with its progress row, so a killed apply loses
    nothing and a rerun skips what is done; a (book, txn_id, kind) already booked is never
    booked twice.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from cutover.shadow.ledger.apply import apply_run, diff_parts, part_rows
    engine = _engine(run_dir, db, must_exist=False)
    total = sum(part_rows(p) for p in diff_parts(run_dir))
    with Progress(TextColumn("ledger apply"), BarColumn(), TextColumn("{task.completed:,} rows"),
                  TimeRemainingColumn(), console=err, disable=quiet, transient=True) as bar:
        task = bar.add_task("apply", total=total)
        summary = apply_run(engine, run_dir, batch_rows, lambda n: bar.advance(task, n))
    payload = {"parts_total": summary.parts_total, "parts_applied": summary.parts_applied,
               "parts_skipped": summary.parts_skipped, "rows_in": summary.rows_in,
               "entries": summary.entries, "postings": summary.postings,
               "duplicates_skipped": summary.duplicates_skipped,
               "seconds": round(summary.seconds, 3),
               "postings_per_s": round(summary.postings_per_s)}
    if as_json:
        _print_json(payload)
        return
    out.print(f"applied {summary.parts_applied} of {summary.parts_total} parts"
              f" ({summary.parts_skipped} already done): {summary.entries:,} entries,"
              f" {summary.postings:,} postings in {summary.seconds:.2f} s"
              f" ({summary.postings_per_s:,.0f} postings/s)")


@shadow_app.command("verify")
def verify_cmd(
    run_dir: Path | None = typer.Argument(None, help=RUN_DIR_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    anchor: Path | None = typer.Option(None, "--anchor", help="An anchor file written by"
                                       " `cutover shadow anchor`: the ledger must still hold"
                                       " that chain head."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Recompute the audit hash chain and prove the books: exit 1 naming the first bad entry.

    Also proves each book sums to zero per currency and the balances equal the postings
    (exit 4 if not: the ledger's invariants are broken). With CUTOVER_LEDGER_KEY set the
    chain is checked as HMAC under that key; with --anchor, against an exported head.
    """
    from cutover.errors import ChainBroken, InvariantBroken
    from cutover.shadow.ledger.anchor import check_anchor, read_anchor
    from cutover.shadow.ledger.verify import verify_ledger
    pinned = read_anchor(anchor) if anchor is not None else None
    engine = _engine(run_dir, db)
    report = verify_ledger(engine)
    payload = {"entries": report.entries, "ok": report.ok,
               "chain_break": None if report.chain_break is None else {
                   **report.chain_break.__dict__, "message": str(report.chain_break)},
               "book_sums": report.book_sums, "balance_drift": report.balance_drift}
    if as_json:
        _print_json(payload)
    if report.chain_break is not None:
        raise ChainBroken(f"audit chain broken at {report.chain_break}")
    if pinned is not None and anchor is not None:
        check_anchor(engine, pinned, anchor)
    nonzero = [s for s in report.book_sums if s["sum_minor"] != 0]
    if nonzero or report.balance_drift:
        raise InvariantBroken(f"books not zero per currency: {nonzero};"
                              f" balances differing from postings: {report.balance_drift[:5]}")
    if not as_json:
        out.print(f"chain intact: {report.entries:,} entries verified; every book sums to zero"
                  " per currency; balances equal postings")


@shadow_app.command("anchor")
def anchor_cmd(
    run_dir: Path | None = typer.Argument(None, help=RUN_DIR_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    out_file: Path = typer.Option(..., "--out", help="Anchor file to write (JSON); keep it"
                                  " outside the database's reach."),
) -> None:
    """Export the audit chain's head (seq and hash) so a later rewrite can be detected.

    Example: cutover shadow anchor runs/r1 --out anchors/r1.json, then later
    cutover shadow verify runs/r1 --anchor anchors/r1.json (exit 1 if the ledger was rewritten).
    """
    from cutover.paths import output_file
    from cutover.shadow.ledger.anchor import current_anchor, write_anchor
    output_file(out_file, "--out")
    pinned = current_anchor(_engine(run_dir, db))
    write_anchor(pinned, out_file)
    out.print(f"anchored seq {pinned.head_seq:,} hash {pinned.head_hash[:16]}…"
              f"{' (keyed)' if pinned.keyed else ''} to {out_file}")


@shadow_app.command("reconcile")
def reconcile_cmd(
    run_dir: Path | None = typer.Argument(None, help=RUN_DIR_HELP),
    legacy_balances: Path | None = typer.Option(None, "--legacy-balances",
                                                help="The legacy core's end-of-day balance file"
                                                     " (fixed width)."),
    statement: Path | None = typer.Option(None, "--statement",
                                          help="A bank statement to reconcile against instead:"
                                               " camt.053 (XML) or MT940; each break lists the"
                                               " entries that explain it."),
    layout: str = typer.Option("legacy_balances", "--layout",
                               help="Record layout of the balance file (cutover/fixtures/layouts)."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    save: bool = typer.Option(False, "--save",
                              help="Also write the result to RUN_DIR/reconcile.json (what the"
                                   " TUI's Ledger screen shows), breaks or not."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Compare the legacy book's merchant payables and gateway fees with the legacy books.

    The books are the end-of-day balance file (--legacy-balances) or a bank statement
    (--statement, camt.053 or MT940). Lists every break (account, currency, expected by the
    mirror, booked by the legacy side, difference, and for a statement the entries that differ);
    exit 1 if there is any, 0 with "0 breaks". --save keeps the result in RUN_DIR/reconcile.json.
    """
    from cutover.errors import InputError, ReconcileBreaks
    from cutover.shadow.ledger.reconcile import (
        compare_balances,
        mirror_balances,
        read_balance_file,
        reconcile_result,
        save_reconcile,
    )
    if (legacy_balances is None) == (statement is None):
        raise InputError("give exactly one of --legacy-balances FILE or --statement FILE")
    if save and run_dir is None:
        # Checked before any work: the result belongs next to the run it reconciles.
        raise InputError("--save writes RUN_DIR/reconcile.json: give the RUN_DIR")
    engine = _engine(run_dir, db)
    if statement is not None:
        from cutover.shadow.ledger.statement_reconcile import statement_balances, statement_result

        legacy, entries_table, info = statement_balances(statement)
        mirror = mirror_balances(engine)
        breaks = compare_balances(legacy, mirror)
        result = statement_result(engine, statement, legacy, mirror, breaks, entries_table, info)
    else:
        assert legacy_balances is not None
        legacy = read_balance_file(legacy_balances, layout)
        mirror = mirror_balances(engine)
        breaks = compare_balances(legacy, mirror)
        result = reconcile_result(legacy, mirror, breaks, legacy_balances)
    if save:
        assert run_dir is not None
        saved = save_reconcile(run_dir, result)
        err.print(f"saved {saved}")
    if as_json:
        _print_json(result)
    else:
        _print_breaks(breaks, result["accounts_compared"])
        _print_entries(result)
    if breaks:
        raise ReconcileBreaks(f"{len(breaks)} breaks between the mirror and"
                              f" {statement or legacy_balances}; first: {breaks[0].account}"
                              f" {breaks[0].currency}")


def _print_entries(result: dict[str, Any]) -> None:
    """For a statement reconciliation: the entries that explain each break."""
    from cutover.domain import format_money

    for brk in result["breaks"]:
        for entry in brk.get("entries", []):
            shown = [("booked", entry["booked_minor"]), ("expected", entry["expected_minor"])]
            money = ", ".join(f"{name} {'none' if v is None else format_money(v, brk['currency'])}"
                              for name, v in shown)
            out.print(f"  {brk['account']} {brk['currency']}: entry {entry['reference']}"
                      f" (statement line {entry['line'] or '-'}): {money}", highlight=False)


def _print_breaks(breaks: list[Any], accounts_compared: int) -> None:
    from cutover.domain import format_money
    if not breaks:
        out.print(f"0 breaks ({accounts_compared} accounts)")
        return
    table = Table("account", "currency", "booked (legacy)", "expected (mirror)", "difference",
                  title=f"{len(breaks)} breaks")
    for b in breaks:
        table.add_row(b.account, b.currency, format_money(b.legacy_minor, b.currency),
                      format_money(b.mirror_minor, b.currency),
                      format_money(b.difference_minor, b.currency))
    out.print(table)


@shadow_app.command("compare")
def compare_cmd(
    run_dir: Path | None = typer.Argument(None, help=RUN_DIR_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Captured volume, fees, fraud and dispute losses per book and currency, candidate minus
    legacy; with RUN_DIR, each figure beside report.json's (exit 1 if any differs)."""
    from cutover.shadow.ledger.compare import against_report, class_totals, compare_books
    rows = compare_books(class_totals(_engine(run_dir, db)))
    checked = _against_report(run_dir, rows, against_report)
    if as_json:
        _print_json({"rows": rows, "against_report": checked})
    else:
        table = Table("measure", "currency", "legacy", "candidate", "candidate - legacy",
                      *(["report.json"] if checked is not None else []))
        agree = {(c["measure"], c["currency"]): all(x["agrees"] for x in checked
                                                   if (x["measure"], x["currency"]) ==
                                                   (c["measure"], c["currency"]))
                 for c in checked} if checked is not None else {}
        for r in rows:
            mark = [] if checked is None else \
                ["equal" if agree[(r["measure"], r["currency"])] else "DIFFERS"]
            table.add_row(str(r["measure"]), str(r["currency"]), str(r["legacy"]),
                          str(r["candidate"]), str(r["delta"]), *mark)
        out.print(table)
    differ = [c for c in checked or [] if not c["agrees"]]
    if differ:
        from cutover.errors import CheckFailed
        first = differ[0]
        raise CheckFailed(f"{len(differ)} ledger figures differ from report.json; first: "
                          f"{first['measure']} {first['currency']} ({first['book']} book): "
                          f"{first['reason']}")


def _against_report(run_dir: Path | None, rows: list[dict[str, Any]],
                    against: Any) -> list[dict[str, Any]] | None:
    """The rows checked against the run's latest report, or None without a run or report."""
    if run_dir is None:
        return None
    from cutover.shadow.report import latest_report_path
    path = latest_report_path(run_dir)
    if path is None:
        return None
    return against(rows, json.loads(path.read_text(encoding="utf-8")))


@shadow_app.command("balances")
def balances_cmd(
    run_dir: Path | None = typer.Argument(None, help=RUN_DIR_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    book: str | None = typer.Option(None, "--book", help="Only this book: legacy or candidate."),
    account_class: str | None = typer.Option(None, "--class",
                                             help="Only this account class, e.g."
                                                  " MERCHANT_PAYABLE."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Every account's balance (debit +, credit -) per book and currency."""
    from sqlalchemy import select

    from cutover.domain import format_money
    from cutover.shadow.ledger.schema import BOOK_IDS, BOOK_NAMES, accounts, balances
    query = (select(balances.c.book_id, accounts.c.name, accounts.c.currency,
                    balances.c.balance_minor)
             .select_from(balances.join(accounts, accounts.c.account_id == balances.c.account_id))
             .order_by(balances.c.book_id, accounts.c.name, accounts.c.currency))
    if book is not None:
        if book not in BOOK_IDS:
            from cutover.errors import InputError
            raise InputError(f"--book must be one of {', '.join(BOOK_IDS)}, got {book!r}")
        query = query.where(balances.c.book_id == BOOK_IDS[book])
    if account_class is not None:
        query = query.where(accounts.c.account_class == account_class)
    with _engine(run_dir, db).connect() as conn:
        rows = [{"book": BOOK_NAMES[int(b)], "account": a, "currency": c, "balance_minor": int(v),
                 "balance": format_money(int(v), c)} for b, a, c, v in conn.execute(query)]
    if as_json:
        _print_json({"balances": rows})
        return
    table = Table("book", "account", "currency", "balance")
    for r in rows:
        table.add_row(r["book"], r["account"], r["currency"], r["balance"])
    out.print(table)
