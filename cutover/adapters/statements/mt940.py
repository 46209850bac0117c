"""Read a SWIFT MT940 customer statement through the maintained ``mt-940`` parser.

MT940 is text: one message per statement (``:20:`` reference, ``:25:`` account, ``:60F:`` or
``:60M:`` opening balance, ``:61:`` entries with ``:86:`` details, ``:62F:`` or ``:62M:``
closing balance). A file may hold many messages; each is parsed on its own, so one statement's
balances never leak into the next, and checked by ``model.check_statement``. The whole file is
read into memory (MT940 files are per day and per account, kilobytes to a few megabytes);
files above ``MT940_BYTES_MAX`` are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from cutover.adapters.statements.model import (
    ENTRY,
    AccountStatement,
    StatementProblem,
    StatementRead,
    amount_minor,
    check_statement,
)
from cutover.errors import InputError

FORMAT: Final = "mt940"
MT940_BYTES_MAX: Final = 256 * 1024 * 1024
_STATEMENT_START: Final = re.compile(r"^:20:", re.MULTILINE)
#: Characters SWIFT's X character set allows, plus line breaks and the block braces that a
#: file with SWIFT headers carries; anything else means this is not an MT940 file.
_NOT_SWIFT: Final = re.compile(r"[^A-Za-z0-9/\-?:().,'+{} \r\n\t\"=!%&*<>;@#_]")


def _split(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each message: a message starts at its ``:20:`` tag."""
    starts = [m.start() for m in _STATEMENT_START.finditer(text)]
    return [(text.count("\n", 0, start) + 1, text[start:end])
            for start, end in zip(starts, [*starts[1:], len(text)], strict=True)]


def _balance(data: dict[str, Any], keys: tuple[str, ...], line: int, tag: str
             ) -> tuple[int | None, str | None]:
    for key in keys:
        balance = data.get(key)
        if balance is not None:
            amount = balance.amount
            return amount_minor(amount.amount, amount.currency, line, tag), amount.currency
    return None, None


class Mt940Reader:
    """Read an MT940 file's statements and entries; ``read`` holds statements and problems."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.read = StatementRead(str(self.path), FORMAT)

    def entries(self, batch_rows: int = 65_536) -> Iterator[pa.RecordBatch]:
        """Yield entry batches, one statement after another; checks each statement's balances."""
        import mt940

        if self.path.stat().st_size > MT940_BYTES_MAX:
            raise InputError(f"{self.path}: larger than {MT940_BYTES_MAX} bytes")
        try:
            text = self.path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{self.path}: byte {exc.start} is not UTF-8 text") from exc
        bad = _NOT_SWIFT.search(text)
        if bad is not None:
            line = text.count("\n", 0, bad.start()) + 1
            raise InputError(f"{self.path}:{line}: character {bad.group()!r} is outside the"
                             " SWIFT character set; is this an MT940 file?")
        messages = _split(text)
        if not messages:
            raise InputError(f"{self.path}: no MT940 statement (no :20: tag)")
        for line, message in messages:
            parsed = mt940.models.Transactions()
            try:
                parsed.parse(message)
            except Exception as exc:  # noqa: BLE001 - the parser raises many kinds
                raise InputError(f"{self.path}:{line}: MT940 statement unreadable:"
                                 f" {type(exc).__name__}: {exc}") from exc
            yield from self._statement(parsed, line, batch_rows)

    def _statement(self, parsed: Any, line: int, batch_rows: int) -> Iterator[pa.RecordBatch]:
        data = parsed.data
        opening, currency = _balance(data, ("final_opening_balance",
                                            "intermediate_opening_balance"), line, ":60F:")
        closing, _ = _balance(data, ("final_closing_balance", "intermediate_closing_balance"),
                              line, ":62F:")
        st = AccountStatement(len(self.read.statements),
                              str(data.get("transaction_reference") or "?"),
                              str(data.get("account_identification") or "?"), currency or "",
                              line, opening, closing)
        self.read.statements.append(st)
        rows: dict[str, list] = {name: [] for name in ENTRY.names}
        for txn in parsed.transactions:
            amount = txn.data.get("amount")
            if amount is None:
                continue
            value = amount_minor(abs(amount.amount), amount.currency, line, ":61:")
            value = -value if amount.amount < 0 else value
            if amount.currency != st.currency:
                self.read.problems.append(StatementProblem(line, ":61:", f"{amount.currency}"
                                                           f" entry in a {st.currency} statement"))
            st.entries += 1
            st.booked_minor += value
            reference = txn.data.get("customer_reference")
            for name, item in (("statement", st.ordinal), ("account", st.account),
                               ("currency", amount.currency), ("amount_minor", value),
                               ("booked", True), ("booking_date", txn.data.get("date")),
                               ("reference", None if reference == "NONREF" else reference),
                               ("description", txn.data.get("transaction_details")),
                               ("line", line)):
                rows[name].append(item)
            if len(rows["amount_minor"]) >= batch_rows:
                yield pa.RecordBatch.from_pydict(rows, schema=ENTRY)
                rows = {name: [] for name in ENTRY.names}
        self.read.entries += st.entries
        self.read.problems.extend(check_statement(st))
        if rows["amount_minor"]:
            yield pa.RecordBatch.from_pydict(rows, schema=ENTRY)
