"""The statement contract: account statements, their entries as Arrow, and what did not add up.

A statement is trusted only when it is consistent with itself: opening balance plus booked
entries equals the closing balance, and any totals it declares (entry count and sum) match its
entries. These are pure checks over plain values, shared by the camt.053 and MT940 readers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Final

import pyarrow as pa

from cutover.domain import MoneyError, to_minor
from cutover.errors import InputError

#: One row per statement entry; ``amount_minor`` is signed (credit +, debit -).
ENTRY: Final = pa.schema([
    pa.field("statement", pa.int32(), nullable=False),
    pa.field("account", pa.string(), nullable=False),
    pa.field("currency", pa.string(), nullable=False),
    pa.field("amount_minor", pa.int64(), nullable=False),
    pa.field("booked", pa.bool_(), nullable=False),
    pa.field("booking_date", pa.date32()),
    pa.field("reference", pa.string()),
    pa.field("description", pa.string()),
    pa.field("line", pa.int64()),
])


@dataclass
class AccountStatement:
    """One account's statement: balances and the sum and count of its booked entries."""

    ordinal: int
    statement_id: str
    account: str
    currency: str
    line: int | None = None
    opening_minor: int | None = None
    closing_minor: int | None = None
    entries: int = 0
    booked_minor: int = 0
    declared_entries: int | None = None
    declared_net_minor: int | None = None

    @property
    def expected_closing_minor(self) -> int | None:
        """Opening plus booked entries: what the closing balance must be."""
        return None if self.opening_minor is None else self.opening_minor + self.booked_minor

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class StatementProblem:
    """Something in a statement that does not add up or cannot be read, and where."""

    line: int | None
    element: str
    message: str

    def describe(self, path: str) -> str:
        """"file:line: element: message"."""
        return f"{path}:{self.line or '?'}: {self.element}: {self.message}"


@dataclass
class StatementRead:
    """What a read found: the format, the statements, how many entries, and the problems."""

    path: str
    format: str
    statements: list[AccountStatement] = field(default_factory=list)
    entries: int = 0
    problems: list[StatementProblem] = field(default_factory=list)


def amount_minor(text: str | Decimal | None, currency: str | None, line: int | None,
                 element: str) -> int:
    """An unsigned amount in minor units; InputError naming line and element if not exact."""
    if text is None or currency is None:
        raise InputError(f"line {line}: {element}: amount or currency missing")
    try:
        return to_minor(text if isinstance(text, Decimal) else str(text).strip(), currency)
    except MoneyError as exc:
        raise InputError(f"line {line}: {element}: {exc}") from exc


def check_statement(st: AccountStatement) -> list[StatementProblem]:
    """Opening + booked entries == closing, and declared count and net sum match (pure)."""
    problems = []
    where = f"statement {st.statement_id} ({st.account} {st.currency})"
    if st.opening_minor is None or st.closing_minor is None:
        missing = "opening" if st.opening_minor is None else "closing"
        problems.append(StatementProblem(st.line, where, f"no {missing} booked balance"))
    elif st.expected_closing_minor != st.closing_minor:
        problems.append(StatementProblem(
            st.line, where, f"opening {st.opening_minor} + booked entries {st.booked_minor}"
            f" = {st.expected_closing_minor}, but the closing balance is {st.closing_minor}"
            f" (minor units of {st.currency})"))
    if st.declared_entries is not None and st.declared_entries != st.entries:
        problems.append(StatementProblem(st.line, f"{where} TxsSummry/TtlNtries/NbOfNtries",
                                         f"declares {st.declared_entries} entries, has"
                                         f" {st.entries}"))
    if st.declared_net_minor is not None and st.declared_net_minor != st.booked_minor:
        problems.append(StatementProblem(st.line, f"{where} TxsSummry/TtlNtries/TtlNetNtryAmt",
                                         f"declares a net {st.declared_net_minor}, entries add"
                                         f" to {st.booked_minor}"))
    return problems
