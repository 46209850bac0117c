"""Read a camt.053 bank-to-customer statement: balances and entries, streamed.

The statement is validated against the official XSD while it is read, in one pass through
``cutover.xmlsafe.iter_elements``: each account, balance and entry is taken as its element ends
and then dropped, so memory stays flat in the number of entries. Entries come out as Arrow
batches of ``model.ENTRY``; balances and declared totals go into ``AccountStatement`` objects
that ``model.check_statement`` holds to opening + entries == closing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pyarrow as pa
from lxml import etree

from cutover.adapters.statements.model import (
    ENTRY,
    AccountStatement,
    StatementProblem,
    StatementRead,
    amount_minor,
    check_statement,
)
from cutover.adapters.statements.xsd import schema_for, schema_problem
from cutover.errors import InputError
from cutover.xmlsafe import iter_elements

MESSAGE: Final = "camt.053.001.02"
NS: Final = "{urn:iso:std:iso:20022:tech:xsd:camt.053.001.02}"
OPENING_CODES: Final = ("OPBD", "PRCD")
CLOSING_CODES: Final = ("CLBD",)
#: Entry statuses that move the booked balance; pending and information entries do not.
BOOKED_STATUS: Final = "BOOK"
BATCH_ROWS_DEFAULT: Final = 65_536


def _find(element: etree._Element, path: str) -> etree._Element | None:
    return element.find("./" + "/".join(NS + p for p in path.split("/")))


def _text(element: etree._Element, path: str) -> str | None:
    found = _find(element, path)
    return None if found is None or found.text is None else found.text.strip()


def _signed(element: etree._Element, where: str) -> tuple[int, str]:
    """The signed amount (credit +, debit -) and currency of a Bal or Ntry element."""
    amount = _find(element, "Amt")
    currency = None if amount is None else amount.get("Ccy")
    value = amount_minor(None if amount is None else amount.text, currency, element.sourceline,
                         f"{where}/Amt")
    indicator = _text(element, "CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        raise InputError(f"line {element.sourceline}: {where}/CdtDbtInd: {indicator!r} is not"
                         " CRDT or DBIT")
    return (value if indicator == "CRDT" else -value), str(currency)


_ENTRY_TAGS: Final = {NS + t: t for t in ("Amt", "CdtDbtInd", "Sts", "BookgDt", "NtryRef",
                                             "AcctSvcrRef", "AddtlNtryInf", "NtryDtls")}


def _entry_fields(ntry: etree._Element) -> dict[str, str | None]:
    """The direct children of an Ntry that a row needs, in one walk (pure)."""
    got: dict[str, str | None] = dict.fromkeys(("Amt", "Ccy", "CdtDbtInd", "Sts", "BookgDt",
                                                "NtryRef", "AcctSvcrRef", "AddtlNtryInf",
                                                "NtryDtls"))
    for child in ntry:
        name = _ENTRY_TAGS.get(child.tag)
        if name is None:
            continue
        if name == "NtryDtls":
            got[name] = "yes"
            continue
        if name == "BookgDt":
            first = child[0] if len(child) else None
            got[name] = None if first is None or first.text is None else first.text.strip()
            continue
        got[name] = None if child.text is None else child.text.strip()
        if name == "Amt":
            got["Ccy"] = child.get("Ccy")
    return got


class Camt053Reader:
    """Stream a camt.053 file's entries; ``read`` holds statements and problems afterwards."""

    def __init__(self, path: str | Path, validate_schema: bool = True) -> None:
        self.path = Path(path)
        self.validate_schema = validate_schema
        self.read = StatementRead(str(self.path), MESSAGE)

    def entries(self, batch_rows: int = BATCH_ROWS_DEFAULT) -> Iterator[pa.RecordBatch]:
        """Yield entry batches in file order; statements and problems are complete at the end."""
        schema = schema_for(MESSAGE) if self.validate_schema else None
        rows: dict[str, list] = {name: [] for name in ENTRY.names}
        current: AccountStatement | None = None
        tags = tuple(NS + t for t in ("Acct", "Bal", "TxsSummry", "Ntry", "Stmt"))
        try:
            for element in iter_elements(self.path, tags, schema=schema):
                tag = etree.QName(element).localname
                if tag == "Acct":
                    current = self._open(element)
                elif current is None:
                    continue
                elif tag == "Bal":
                    self._balance(current, element)
                elif tag == "TxsSummry":
                    self._summary(current, element)
                elif tag == "Ntry":
                    self._entry(current, element, rows)
                    if len(rows["amount_minor"]) >= batch_rows:
                        yield self._batch(rows)
                else:
                    self.read.problems.extend(check_statement(current))
                    current = None
        except etree.XMLSyntaxError as exc:
            # Entries before the error were yielded; the problem makes the read fail.
            self.read.problems = [schema_problem(exc, MESSAGE, self.path)]
            return
        if rows["amount_minor"]:
            yield self._batch(rows)

    def _open(self, acct: etree._Element) -> AccountStatement:
        stmt = acct.getparent()
        account = _text(acct, "Id/IBAN") or _text(acct, "Id/Othr/Id") or "?"
        currency = _text(acct, "Ccy") or ""
        opened = AccountStatement(len(self.read.statements), _text(stmt, "Id") or "?",
                                  account, currency, stmt.sourceline)
        self.read.statements.append(opened)
        return opened

    def _balance(self, st: AccountStatement, bal: etree._Element) -> None:
        code = _text(bal, "Tp/CdOrPrtry/Cd")
        value, currency = _signed(bal, "Bal")
        st.currency = st.currency or currency
        if currency != st.currency:
            self.read.problems.append(StatementProblem(bal.sourceline, "Bal/Amt/@Ccy",
                                                       f"{currency} in a {st.currency} account"))
        if code in OPENING_CODES and st.opening_minor is None:
            st.opening_minor = value
        elif code in CLOSING_CODES and st.closing_minor is None:
            st.closing_minor = value

    def _summary(self, st: AccountStatement, summary: etree._Element) -> None:
        total = _find(summary, "TtlNtries")
        if total is None:
            return
        count = _text(total, "NbOfNtries")
        st.declared_entries = int(count) if count is not None else None
        net = _text(total, "TtlNetNtryAmt")
        if net is not None and st.currency:
            value = amount_minor(net, st.currency, total.sourceline, "TtlNtries/TtlNetNtryAmt")
            st.declared_net_minor = -value if _text(total, "CdtDbtInd") == "DBIT" else value

    def _entry(self, st: AccountStatement, ntry: etree._Element, rows: dict[str, list]) -> None:
        """One Ntry as a row; its children are walked once (the hot path of a big statement)."""
        got = _entry_fields(ntry)
        if got["CdtDbtInd"] not in ("CRDT", "DBIT"):
            raise InputError(f"line {ntry.sourceline}: Ntry/CdtDbtInd: {got['CdtDbtInd']!r} is"
                             " not CRDT or DBIT")
        currency = got["Ccy"] or ""
        value = amount_minor(got["Amt"], currency, ntry.sourceline, "Ntry/Amt")
        value = value if got["CdtDbtInd"] == "CRDT" else -value
        st.currency = st.currency or currency
        if currency != st.currency:
            self.read.problems.append(StatementProblem(ntry.sourceline, "Ntry/Amt/@Ccy",
                                                       f"{currency} in a {st.currency} account"))
        booked = got["Sts"] == BOOKED_STATUS
        st.entries += 1
        st.booked_minor += value if booked else 0
        self.read.entries += 1
        day = (got["BookgDt"] or "")[:10]
        reference = got["AcctSvcrRef"] or got["NtryRef"]
        description = got["AddtlNtryInf"]
        if got["NtryDtls"] and (reference is None or description is None):
            reference = reference or _text(ntry, "NtryDtls/TxDtls/Refs/EndToEndId")
            description = description or _text(ntry, "NtryDtls/TxDtls/RmtInf/Ustrd")
        for name, item in (("statement", st.ordinal), ("account", st.account),
                           ("currency", currency), ("amount_minor", value), ("booked", booked),
                           ("booking_date", dt.date.fromisoformat(day) if day else None),
                           ("reference", reference), ("description", description),
                           ("line", ntry.sourceline)):
            rows[name].append(item)

    @staticmethod
    def _batch(rows: dict[str, list]) -> pa.RecordBatch:
        batch = pa.RecordBatch.from_pydict(rows, schema=ENTRY)
        for values in rows.values():
            values.clear()
        return batch
