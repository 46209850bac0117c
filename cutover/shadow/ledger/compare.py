"""Compare the two books: what each would have captured, paid in fees and lost to fraud.

Read from the balances table, per book, per account class and per currency, with candidate
minus legacy. Figures are shown positive the way finance reads them (captured volume is the
merchant payable's credit balance negated).
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import Engine, func, select

from cutover.domain import format_money
from cutover.shadow.ledger.posting_rules import (
    DISPUTE_LOSS,
    FEE_EXPENSE,
    FRAUD_LOSS,
    MERCHANT_PAYABLE,
)
from cutover.shadow.ledger.schema import BOOK_NAMES, accounts, balances

#: The measures compared, with the class each reads and the sign that shows it positive.
MEASURES: Final[dict[str, tuple[str, int]]] = {
    "captured": (MERCHANT_PAYABLE, -1),
    "fees": (FEE_EXPENSE, 1),
    "fraud_losses": (FRAUD_LOSS, 1),
    "dispute_losses": (DISPUTE_LOSS, 1),
}
#: The report.json field (per currency, per side) that counts the same money as each measure
#: under the money model (cutover.stack.money).
REPORT_FIELDS: Final[dict[str, str]] = {
    "captured": "approved_{side}_minor",
    "fees": "fees_{side}_minor",
    "fraud_losses": "fraud_loss_{side}_minor",
    "dispute_losses": "dispute_loss_{side}_minor",
}


def class_totals(engine: Engine) -> dict[tuple[str, str, str], int]:
    """{(book, account class, currency): balance_minor} over every account."""
    query = (select(balances.c.book_id, accounts.c.account_class, accounts.c.currency,
                    func.sum(balances.c.balance_minor))
             .select_from(balances.join(accounts, accounts.c.account_id == balances.c.account_id))
             .group_by(balances.c.book_id, accounts.c.account_class, accounts.c.currency))
    with engine.connect() as conn:
        return {(BOOK_NAMES.get(int(b), "?"), c, cur): int(s)
                for b, c, cur, s in conn.execute(query).all()}


def compare_books(totals: dict[tuple[str, str, str], int]) -> list[dict[str, object]]:
    """One row per (measure, currency): legacy, candidate and candidate minus legacy."""
    currencies = sorted({cur for _, _, cur in totals})
    rows = []
    for currency in currencies:
        for measure, (account_class, sign) in MEASURES.items():
            legacy = sign * totals.get(("legacy", account_class, currency), 0)
            candidate = sign * totals.get(("candidate", account_class, currency), 0)
            rows.append({"measure": measure, "currency": currency,
                         "legacy_minor": legacy, "candidate_minor": candidate,
                         "delta_minor": candidate - legacy,
                         "legacy": format_money(legacy, currency),
                         "candidate": format_money(candidate, currency),
                         "delta": format_money(candidate - legacy, currency)})
    return rows


def against_report(rows: list[dict[str, Any]], report: dict[str, Any]
                   ) -> list[dict[str, object]]:
    """Each book's figure beside report.json's for the same currency and measure.

    ``agrees`` is True when they are equal; otherwise ``reason`` names why they differ (a
    currency or field the report lacks, a ledger applied from another run). Fraud let through
    in the report is not a ledger measure: it is fraud_losses plus fraud approved without a
    chargeback yet (``fraud_pending``), shown so a reader sees where the two meet.
    """
    money = report.get("money", {}).get("by_currency", {}) if isinstance(report, dict) else {}
    out = []
    for row in rows:
        figures = money.get(row["currency"]) if isinstance(money, dict) else None
        for side in ("legacy", "candidate"):
            field = REPORT_FIELDS[str(row["measure"])].format(side=side)
            booked = int(row[f"{side}_minor"])
            entry: dict[str, object] = {"measure": row["measure"], "currency": row["currency"],
                                        "book": side, "ledger_minor": booked,
                                        "report_field": field}
            if not isinstance(figures, dict) or field not in figures:
                entry.update(report_minor=None, agrees=False,
                             reason=f"report.json has no {field} for {row['currency']}")
            else:
                reported = int(figures[field])
                entry.update(report_minor=reported, agrees=reported == booked,
                             reason=None if reported == booked else
                             "the ledger holds other postings than this run's diffs (applied "
                             "from another run, or before a re-report)")
            out.append(entry)
    return out
