"""ISO 20022 payments into the traffic store: pain.001 (initiation) and pacs.008 (interbank).

A credit transfer is one record of traffic: the debtor's account is the customer, the
creditor's the merchant, the instructed (or settled) amount the amount. The file is validated
against the official XSD of its version and its control totals are checked like a batch file's
trailer: ``NbOfTxs`` and ``CtrlSum`` of the group header (and of each pain.001 payment
information block) must equal the count and sum of the transactions, or nothing is imported.

Transfers carry no card, MCC or gateway: those columns get the neutral values in
``TRANSFER_DEFAULTS``; the legacy outcome is "approve" with the ISO status code of a payment
that was accepted (pain.001) or settled (pacs.008).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
from lxml import etree

from cutover.adapters.importer import assemble_traffic, commit
from cutover.adapters.statements.model import StatementProblem
from cutover.adapters.statements.xsd import ISO_NS_PREFIX, message_id, schema_for, schema_problem
from cutover.domain import MoneyError, to_minor
from cutover.errors import ControlTotalMismatch, InputError
from cutover.xmlsafe import iter_elements

#: What each message calls its transactions and its group header, and the outcome it implies.
MESSAGES: Final = {
    "pain.001.001.03": {"tx": "CdtTrfTxInf", "amount": ("Amt/InstdAmt", "Amt/EqvtAmt/Amt"),
                        "code": "ACCP"},
    "pacs.008.001.02": {"tx": "CdtTrfTxInf", "amount": ("IntrBkSttlmAmt",), "code": "ACSC"},
}
TRANSFER_DEFAULTS: Final = {"mcc": "0000", "card_token": "", "card_bin": "", "channel": "ecom",
                            "legacy_decision": "approve", "legacy_reason": "approved",
                            "legacy_fee_minor": 0, "legacy_latency_ms": 0}
#: Transfers read from one file at most (a pain.001 batch is thousands, not millions).
TRANSFERS_MAX: Final = 5_000_000


@dataclass
class PaymentsRead:
    """Transfers read from one message, as TRAFFIC columns, and the control-total checks."""

    message: str
    columns: dict[str, list] = field(default_factory=dict)
    lines: list[int] = field(default_factory=list)
    problems: list[StatementProblem] = field(default_factory=list)


def _text(element: etree._Element, path: str, ns: str) -> str | None:
    found = element.find("./" + "/".join(ns + p for p in path.split("/")))
    return None if found is None or found.text is None else found.text.strip()


def _first(element: etree._Element, paths: tuple[str, ...], ns: str) -> str | None:
    return next((v for v in (_text(element, p, ns) for p in paths) if v), None)


def _timestamp(text: str | None, line: int | None) -> dt.datetime:
    if not text:
        raise InputError(f"line {line}: CreDtTm missing")
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"line {line}: CreDtTm {text!r} is not an ISO date-time") from exc
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class _Totals:
    """Declared and actual count and sum of one scope (group header or payment block)."""

    def __init__(self, scope: str, line: int | None, count: str | None, total: str | None):
        self.scope, self.line = scope, line
        self.count = int(count) if count else None
        self.total = Decimal(total) if total else None
        self.seen, self.sum = 0, Decimal(0)

    def add(self, amount: Decimal) -> None:
        self.seen += 1
        self.sum += amount

    def problems(self) -> list[StatementProblem]:
        out = []
        if self.count is not None and self.count != self.seen:
            out.append(StatementProblem(self.line, f"{self.scope}/NbOfTxs",
                                        f"declares {self.count} transactions, has {self.seen}"))
        if self.total is not None and self.total != self.sum:
            out.append(StatementProblem(self.line, f"{self.scope}/CtrlSum",
                                        f"declares {self.total}, transactions add to {self.sum}"))
        return out


def read_payments(path: str | Path, validate_schema: bool = True) -> PaymentsRead:
    """Read a pain.001 or pacs.008 file into TRAFFIC columns; check NbOfTxs and CtrlSum."""
    path = Path(path)
    message = message_id(path)
    if message not in MESSAGES:
        raise InputError(f"{path}: {message} is not a supported payment message (supported:"
                         f" {', '.join(MESSAGES)})")
    spec, ns = MESSAGES[message], "{" + ISO_NS_PREFIX + message + "}"
    out = PaymentsRead(message, {name: [] for name in (
        "txn_id", "ts", "merchant_id", "customer_id", "card_country", "amount_minor",
        "currency", "merchant_country", "legacy_code")})
    schema = schema_for(message) if validate_schema else None
    group: _Totals | None = None
    block: _Totals | None = None
    blocks: list[_Totals] = []
    created: dt.datetime | None = None
    tags = tuple(ns + t for t in ("GrpHdr", "PmtInf", spec["tx"]))
    try:
        for element in iter_elements(path, tags, schema=schema):
            tag = etree.QName(element).localname
            if tag == "GrpHdr":
                group = _Totals("GrpHdr", element.sourceline, _text(element, "NbOfTxs", ns),
                                _text(element, "CtrlSum", ns))
                created = _timestamp(_text(element, "CreDtTm", ns), element.sourceline)
            elif tag == "PmtInf":
                block = None  # its transactions were counted as they ended
            else:
                parent = element.getparent()
                if message.startswith("pain.") and (block is None or block.line !=
                                                    parent.sourceline):
                    block = _Totals(f"PmtInf {_text(parent, 'PmtInfId', ns)}",
                                    parent.sourceline, _text(parent, "NbOfTxs", ns),
                                    _text(parent, "CtrlSum", ns))
                    blocks.append(block)
                _transfer(out, element, parent, ns, spec, created, group, block)
                if len(out.lines) > TRANSFERS_MAX:
                    raise InputError(f"{path}: more than {TRANSFERS_MAX} transfers")
    except etree.XMLSyntaxError as exc:
        out.problems = [schema_problem(exc, message, path)]
        return out
    for totals in ([group] if group else []) + blocks:
        out.problems.extend(totals.problems())
    return out


def _transfer(out: PaymentsRead, tx: etree._Element, parent: etree._Element, ns: str,
              spec: dict[str, Any], created: dt.datetime | None, group: _Totals | None,
              block: _Totals | None) -> None:
    """Add one CdtTrfTxInf as a TRAFFIC row (pain.001 debtor data sits on its PmtInf)."""
    holder = parent if out.message.startswith("pain.") else tx
    found = (tx.find("./" + "/".join(ns + p for p in path.split("/"))) for path in spec["amount"])
    amount_el = next((el for el in found if el is not None and el.text), None)
    if amount_el is None or amount_el.text is None:
        raise InputError(f"line {tx.sourceline}: {' or '.join(spec['amount'])} missing")
    currency = amount_el.get("Ccy") or ""
    amount = Decimal(amount_el.text.strip())
    try:
        minor = to_minor(amount, currency)
    except MoneyError as exc:
        raise InputError(f"line {amount_el.sourceline}: {amount_el.tag}: {exc}") from exc
    for totals in (group, block):
        if totals is not None:
            totals.add(amount)
    reference = _first(tx, ("PmtId/TxId", "PmtId/InstrId", "PmtId/EndToEndId"), ns)
    if not reference or reference == "NOTPROVIDED":
        reference = f"line{tx.sourceline}"
    row = {"txn_id": f"{out.message}:{reference}", "ts": created,
           "merchant_id": _first(tx, ("CdtrAcct/Id/IBAN", "CdtrAcct/Id/Othr/Id", "Cdtr/Nm"), ns),
           "customer_id": _first(holder, ("DbtrAcct/Id/IBAN", "DbtrAcct/Id/Othr/Id", "Dbtr/Nm"),
                                 ns),
           "card_country": _first(holder, ("Dbtr/PstlAdr/Ctry",), ns) or "",
           "amount_minor": minor, "currency": currency,
           "merchant_country": _first(tx, ("Cdtr/PstlAdr/Ctry",), ns) or "",
           "legacy_code": spec["code"]}
    for name, value in row.items():
        out.columns[name].append(value)
    out.lines.append(tx.sourceline)


def payments_table(read: PaymentsRead) -> tuple[dict[str, pa.Array], int]:
    """The read transfers as TRAFFIC columns (with the transfer defaults) and their count."""
    n = len(read.lines)
    cols: dict[str, pa.Array] = {
        name: pa.array(values, pa.timestamp("us", tz="UTC") if name == "ts" else
                       pa.int64() if name == "amount_minor" else pa.string())
        for name, values in read.columns.items()}
    for name, value in TRANSFER_DEFAULTS.items():
        cols[name] = pa.array([value] * n, pa.int64() if isinstance(value, int) else pa.string())
    return cols, n


def import_payments(path: str | Path, store: str | Path) -> Any:
    """Import a pain.001 or pacs.008 file; ControlTotalMismatch imports nothing."""
    path = Path(path)
    read = read_payments(path)
    if read.problems:
        detail = "; ".join(p.describe(str(path)) for p in read.problems[:5])
        schema = any(p.message.startswith("not valid") for p in read.problems)
        raise (InputError if schema else ControlTotalMismatch)(
            f"{path}: {len(read.problems)} problem(s), nothing imported: {detail}")
    cols, n = payments_table(read)
    reasons, fields = np.full(n, "", dtype=object), np.full(n, "", dtype=object)
    table, reasons, fields = assemble_traffic(cols, n, reasons, fields)
    return commit(table, np.asarray(read.lines, np.int64), reasons, fields, None, path,
                  Path(store), [])
