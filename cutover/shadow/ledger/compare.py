"""Compare the two books: what each would have captured, paid in fees and lost to fraud.

Read from the balances table, per book, per account class and per currency, with candidate
minus legacy. Figures are shown positive the way finance reads them (captured volume is the
merchant payable's credit balance negated).
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import Engine, func, select

from cutover.domain import format_money
from cutover.shadow.ledger.posting_rules import FEE_EXPENSE, FRAUD_LOSS, MERCHANT_PAYABLE
from cutover.shadow.ledger.schema import BOOK_NAMES, accounts, balances

#: The measures compared, with the class each reads and the sign that shows it positive.
MEASURES: Final[dict[str, tuple[str, int]]] = {
    "captured": (MERCHANT_PAYABLE, -1),
    "fees": (FEE_EXPENSE, 1),
    "fraud_losses": (FRAUD_LOSS, 1),
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
