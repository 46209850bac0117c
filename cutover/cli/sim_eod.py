"""CLI command `cutover sim eod`: the simulated legacy core writes its end-of-day files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer
from rich.console import Console

err = Console(stderr=True)


def add(sim_app: typer.Typer) -> None:
    """Add `eod` and `switch-log` to the `cutover sim` group."""
    sim_app.command("eod")(eod)
    sim_app.command("switch-log")(switch_log)


#: Transactions a simulated switch log holds unless --limit says otherwise.
SWITCH_LOG_LIMIT_DEFAULT = 10_000


def switch_log(
    store: Path = typer.Argument(..., help="Traffic store directory (day=YYYY-MM-DD partitions)."),
    out: Path = typer.Option(..., "--out", "-o", help="The ISO 8583 log to write."),
    switch: str = typer.Option("ascii_switch", "--switch",
                               help="Switch spec: ascii_switch, binary_switch or a TOML path."),
    limit: int = typer.Option(SWITCH_LOG_LIMIT_DEFAULT, "--limit", min=1,
                              help="Transactions to log (each a 0100 request and its 0110)."),
) -> None:
    """Write a card switch's ISO 8583 log (0100/0110 pairs) of the store's first transactions.

    Card numbers in it are the networks' published test numbers, never real ones.
    """
    from itertools import islice

    from cutover.adapters.iso8583 import load_switch
    from cutover.sim.switch_log import write_switch_log
    from cutover.store.traffic import iter_batches

    columns = ["ts", "amount_minor", "mcc", "merchant_id", "merchant_country", "currency",
               "legacy_decision"]
    rows = (row for batch in iter_batches(store, 65_536, columns) for row in batch.to_pylist()
            if row["amount_minor"] >= 0)
    messages = write_switch_log(out, load_switch(switch), islice(rows, limit))
    typer.echo(f"{out}: {messages} messages ({messages // 2} transactions)")


def eod(
    store: Path = typer.Argument(..., help="Traffic store directory (day=YYYY-MM-DD partitions)."),
    out: Path = typer.Option(..., "--out", "-o",
                             help="Directory for authlog_<date>.txt and balances_<date>.txt."),
    as_of: str | None = typer.Option(None, "--as-of",
                                     help="UTC day YYYY-MM-DD: the log holds that day, balances"
                                          " run up to its end. Default: the whole store, dated"
                                          " by its last day."),
    since: str | None = typer.Option(None, "--since",
                                     help="UTC day YYYY-MM-DD the balances open on (period"
                                          " books, to match a shadow ledger of a replay window)."
                                          " Default: the store's first day."),
    statements: bool = typer.Option(True, "--statements/--no-statements",
                                    help="Also write the books as a bank would: a camt.053"
                                         " statement and an MT940 file (one statement per"
                                         " account, one entry per transaction)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Write the legacy core's end-of-day authorisation log, balance file and statements."""
    from cutover.errors import InputError
    from cutover.sim.eod import export_eod

    def _day(option: str, text: str | None) -> dt.date | None:
        try:
            return dt.date.fromisoformat(text) if text else None
        except ValueError as exc:
            raise InputError(f"{option} {text!r} is not a date YYYY-MM-DD") from exc

    day, opened = _day("--as-of", as_of), _day("--since", since)
    with err.status("writing end-of-day files"):
        summary = export_eod(store, out, day, since=opened)
    data = {"as_of": summary.as_of.isoformat(), "authlog": str(summary.authlog_path),
            "balances": str(summary.balances_path), "transactions": summary.transactions,
            "amount_total_minor": summary.amount_total_minor, "accounts": summary.accounts,
            "balance_total_minor": summary.balance_total_minor}
    if statements:
        from cutover.sim.eod_statements import export_statements

        with err.status("writing camt.053 and MT940 statements"):
            books = export_statements(store, out, summary.as_of, since=opened)
        data.update({"camt053": str(books.camt053_path), "mt940": str(books.mt940_path),
                     "statement_entries": books.entries})
    if as_json:
        typer.echo(json.dumps(data))
        return
    for key, value in data.items():
        typer.echo(f"{key}: {value}")
