"""Reconcile the mirror's legacy book against a bank statement (camt.053 or MT940).

A statement carries more than balances: every entry, referenced by the transaction it books.
So a break is not just "account X is off by 12.34": the entries whose amounts the mirror does
not have (or has differently) are listed beside it, which is usually the whole explanation.

The statement's closing balances are compared with ``reconcile.compare_balances``; for each
break, the statement's entries on that account are matched by transaction reference with the
mirror's postings on the same account (the camt.053 AcctSvcrRef, or the first word of an
MT940 entry's :86: line, is the txn_id).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine, func, select

from cutover.adapters.statements import read_statement
from cutover.shadow.ledger.reconcile import RECONCILED_CLASSES, BalanceMap, ReconcileBreak
from cutover.shadow.ledger.schema import BOOK_IDS, accounts, entries, postings

#: Entries listed per break; a break explained by more is summarised by their count.
EXPLAIN_ENTRIES_MAX: Final = 20


def statement_balances(path: Path) -> tuple[BalanceMap, pa.Table, dict[str, Any]]:
    """Closing balance per (account, currency), all entries, and what was read (for JSON).

    When an account has several statements in the file, the last one's closing balance is the
    account's figure (statements come in date order).
    """
    read, table = read_statement(path)
    figures: BalanceMap = {}
    for st in read.statements:
        if st.closing_minor is not None:
            figures[(st.account, st.currency)] = st.closing_minor
    info = {"format": read.format, "statements": len(read.statements), "entries": read.entries}
    return figures, table, info


def _entry_keys(table: pa.Table) -> pa.Array:
    """The txn reference of each entry: the reference, else the first word of the details."""
    first_word = pc.list_element(pc.split_pattern(pc.fill_null(table["description"], ""), " "),
                                 0)
    return pc.coalesce(table["reference"], first_word)


def mirror_entries(engine: Engine, account: str, currency: str) -> dict[str, int]:
    """{txn_id: amount} the mirror's legacy book posted to one account, in the file convention."""
    with engine.connect() as conn:
        row = conn.execute(select(accounts.c.account_id, accounts.c.account_class)
                           .where(accounts.c.name == account,
                                  accounts.c.currency == currency)).first()
        if row is None or row.account_class not in RECONCILED_CLASSES:
            return {}
        sign = RECONCILED_CLASSES[row.account_class]
        query = (select(entries.c.txn_id, func.sum(postings.c.amount_minor))
                 .select_from(postings.join(entries, entries.c.seq == postings.c.entry_seq))
                 .where(postings.c.account_id == row.account_id,
                        entries.c.book_id == BOOK_IDS["legacy"])
                 .group_by(entries.c.txn_id))
        return {txn: sign * int(total) for txn, total in conn.execute(query).all()}


def explain(engine: Engine, brk: ReconcileBreak, table: pa.Table) -> list[dict[str, Any]]:
    """The entries of one break's account whose amounts the mirror does not match."""
    mine = table.filter(pc.and_(pc.equal(table["account"], brk.account),
                                pc.equal(table["currency"], brk.currency)))
    booked: dict[str, int] = {}
    lines: dict[str, int] = {}
    for key, amount, line in zip(_entry_keys(mine).to_pylist(), mine["amount_minor"].to_pylist(),
                                 mine["line"].to_pylist(), strict=True):
        booked[key] = booked.get(key, 0) + amount
        lines.setdefault(key, line)
    mirror = mirror_entries(engine, brk.account, brk.currency)
    out = []
    for key in sorted(set(booked) | set(mirror)):
        statement_minor, mirror_minor = booked.get(key), mirror.get(key)
        if statement_minor != mirror_minor:
            out.append({"reference": key, "booked_minor": statement_minor,
                        "expected_minor": mirror_minor, "line": lines.get(key)})
    return out


def statement_result(engine: Engine, path: Path, booked: BalanceMap, mirror: BalanceMap,
                     breaks: list[ReconcileBreak], table: pa.Table,
                     info: dict[str, Any]) -> dict[str, Any]:
    """The JSON object of a statement reconciliation: breaks with the entries explaining them."""
    named = []
    for brk in breaks:
        found = explain(engine, brk, table)
        named.append({**brk.as_dict(), "expected_minor": brk.mirror_minor,
                      "booked_minor": brk.legacy_minor, "entries": found[:EXPLAIN_ENTRIES_MAX],
                      "entries_differing": len(found)})
    return {"accounts_compared": len(set(booked) | set(mirror)), "breaks": named,
            "ok": not breaks, "statement": str(path), **info}
