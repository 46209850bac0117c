"""The simulated core's end-of-day books as a bank would send them: camt.053 and MT940.

Most banks today hand over their books as ISO 20022 camt.053 statements or SWIFT MT940, not as
fixed-width balance files. This writes the same books as ``eod.export_eod``'s balance file (one
statement per ledger account and currency, in that file's sign convention: merchant payables
and gateway fees positive) with one entry per approved transaction, referenced by its txn_id, so
`cutover shadow reconcile RUN --statement FILE` can match the shadow ledger entry by entry.

The statement covers ``since`` (or the file's day) to the end of ``as_of``: the opening balance
is what the period had before it (zero for period books), the closing balance the opening plus
the entries. The camt.053 is written element by element (lxml's incremental writer), so memory
holds the period's entries as Arrow columns, not as XML.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from lxml import etree

from cutover.domain import currency_exponent
from cutover.store.traffic import BATCH_ROWS_DEFAULT, iter_batches

CAMT_NS: Final = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
#: References in camt.053 (AcctSvcrRef) and MT940 (:20:) have these maximum lengths.
CAMT_REF_CHARS_MAX: Final = 35
MT940_REF_CHARS_MAX: Final = 16
#: Bank transaction code (proprietary) of each kind of entry.
ENTRY_CODES: Final = {"capture": "CAPTURE", "fee": "FEE"}
_COLUMNS: Final = ["txn_id", "ts", "legacy_decision", "merchant_id", "currency", "amount_minor",
                   "legacy_route", "legacy_fee_minor"]


@dataclass(frozen=True)
class StatementSummary:
    """What was written: the two files, how many account statements and entries."""

    camt053_path: Path
    mt940_path: Path
    statements: int
    entries: int


def entry_rows(batch: pa.RecordBatch | pa.Table) -> pa.Table:
    """One row per posting the legacy books make for a batch's approvals (pure).

    Columns: account, currency, txn_id, ts, amount_minor, kind. Fees are booked for routed
    approvals, as in ``eod.balance_partials``.
    """
    table = pa.table(batch) if isinstance(batch, pa.RecordBatch) else batch
    approved = table.filter(pc.equal(table["legacy_decision"], "approve"))
    routed = approved.filter(pc.is_valid(approved["legacy_route"]))

    def rows(part: pa.Table, prefix: str, key: str, amount: str, kind: str) -> pa.Table:
        return pa.table({
            "account": pc.binary_join_element_wise(prefix, part[key], ""),
            "currency": part["currency"], "txn_id": part["txn_id"], "ts": part["ts"],
            "amount_minor": part[amount].cast(pa.int64()),
            "kind": pa.array([kind] * part.num_rows, pa.string())})

    return pa.concat_tables([
        rows(approved, "MERCHANT_PAYABLE:", "merchant_id", "amount_minor", "capture"),
        rows(routed, "FEE_EXPENSE:", "legacy_route", "legacy_fee_minor", "fee")])


def _period_entries(store_dir: Path, start: dt.datetime | None, end: dt.datetime,
                    batch_rows: int) -> pa.Table:
    ts_type = pa.timestamp("us", tz="UTC")
    expr = ds.field("ts") < pa.scalar(end, ts_type)
    if start is not None:
        expr = expr & (ds.field("ts") >= pa.scalar(start, ts_type))
    parts = [entry_rows(b) for b in iter_batches(store_dir, batch_rows, _COLUMNS, expr)]
    if not parts:
        return entry_rows(pa.table({c: pa.array([], t) for c, t in (
            ("txn_id", pa.string()), ("ts", ts_type), ("legacy_decision", pa.string()),
            ("merchant_id", pa.string()), ("currency", pa.string()),
            ("amount_minor", pa.int64()), ("legacy_route", pa.string()),
            ("legacy_fee_minor", pa.int64()))}))
    return pa.concat_tables(parts)


def statement_books(store_dir: str | Path, as_of: dt.date, since: dt.date | None = None,
                    batch_rows: int = BATCH_ROWS_DEFAULT) -> tuple[pa.Table, pa.Table]:
    """(opening balances per account, the period's non-zero entries sorted by account, time)."""
    day = dt.datetime.combine(since or as_of, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(as_of, dt.time(), tzinfo=dt.UTC) + dt.timedelta(days=1)
    if since is None:
        before = _period_entries(Path(store_dir), None, day, batch_rows)
        opening = before.group_by(["account", "currency"]).aggregate([("amount_minor", "sum")])
        opening = opening.rename_columns(["account", "currency", "opening_minor"])
    else:
        opening = pa.table({"account": pa.array([], pa.string()),
                            "currency": pa.array([], pa.string()),
                            "opening_minor": pa.array([], pa.int64())})
    entries = _period_entries(Path(store_dir), day, end, batch_rows)
    entries = entries.filter(pc.not_equal(entries["amount_minor"], 0))
    order = [("account", "ascending"), ("currency", "ascending"), ("ts", "ascending"),
             ("txn_id", "ascending"), ("kind", "ascending")]
    return opening, entries.sort_by(order)


def _accounts(opening: pa.Table, entries: pa.Table) -> list[tuple[str, str, int]]:
    """(account, currency, opening_minor) of every account with a balance or an entry, sorted."""
    found = {(a, c): int(o) for a, c, o in zip(opening["account"].to_pylist(),
                                                opening["currency"].to_pylist(),
                                                opening["opening_minor"].to_pylist(), strict=True)}
    for key in zip(entries["account"].to_pylist(), entries["currency"].to_pylist(), strict=True):
        found.setdefault(key, 0)
    return [(a, c, o) for (a, c), o in sorted(found.items())]


def _slices(entries: pa.Table) -> dict[tuple[str, str], tuple[int, int]]:
    """Row range of each (account, currency) in the sorted entries."""
    if entries.num_rows == 0:
        return {}
    keys = pc.binary_join_element_wise(entries["account"], entries["currency"], "\x00")
    values = np.asarray(keys.to_pylist(), dtype=object)
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    stops = np.append(starts[1:], len(values))
    return {tuple(values[s].split("\x00")): (int(s), int(e))
            for s, e in zip(starts, stops, strict=True)}


def decimal_text(amount_minor: int, currency: str, separator: str = ".") -> str:
    """Unsigned major-unit text of an amount: 1234 USD -> "12.34" (MT940: "12,34")."""
    exponent = currency_exponent(currency)
    whole, frac = divmod(abs(amount_minor), 10**exponent)
    return f"{whole}{separator}{frac:0{exponent}d}" if exponent else f"{whole}{separator}"


def export_statements(store_dir: str | Path, out_dir: str | Path, as_of: dt.date,
                      since: dt.date | None = None,
                      batch_rows: int = BATCH_ROWS_DEFAULT) -> StatementSummary:
    """Write statement_<date>.camt053.xml and statement_<date>.mt940 for the period."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    opening, entries = statement_books(store_dir, as_of, since, batch_rows)
    accounts = _accounts(opening, entries)
    slices = _slices(entries)
    start = since or as_of
    camt = out_dir / f"statement_{as_of:%Y%m%d}.camt053.xml"
    mt940 = out_dir / f"statement_{as_of:%Y%m%d}.mt940"
    write_camt053(camt, accounts, entries, slices, start, as_of)
    write_mt940(mt940, accounts, entries, slices, start, as_of)
    return StatementSummary(camt, mt940, len(accounts), entries.num_rows)


def _statement_parts(accounts: list[tuple[str, str, int]], entries: pa.Table,
                     slices: dict[tuple[str, str], tuple[int, int]]
                     ) -> Iterator[tuple[str, str, int, int, dict[str, list]]]:
    """(account, currency, opening, closing, entry columns) per statement, in order."""
    columns = {name: entries[name].to_pylist() for name in ("txn_id", "ts", "amount_minor",
                                                             "kind")}
    for account, currency, opened in accounts:
        lo, hi = slices.get((account, currency), (0, 0))
        part = {name: values[lo:hi] for name, values in columns.items()}
        yield account, currency, opened, opened + sum(part["amount_minor"]), part


def write_camt053(path: Path, accounts: list[tuple[str, str, int]], entries: pa.Table,
                  slices: dict[tuple[str, str], tuple[int, int]], start: dt.date,
                  as_of: dt.date) -> None:
    """Write the statements as one camt.053.001.02 message, valid against its XSD."""
    created = dt.datetime.combine(as_of, dt.time(23, 59, 59)).isoformat()
    temp = path.with_name(f".{path.name}.tmp")
    with etree.xmlfile(str(temp), encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element("Document", nsmap={None: CAMT_NS}), xf.element("BkToCstmrStmt"):
            xf.write(_el("GrpHdr", [_el("MsgId", f"CUTOVER-EOD-{as_of:%Y%m%d}"),
                                    _el("CreDtTm", created)]))
            for n, (account, currency, opened, closing, part) in enumerate(
                    _statement_parts(accounts, entries, slices)):
                with xf.element("Stmt"):
                    _write_statement_head(xf, n, account, currency, opened, closing, part,
                                          created, start, as_of)
                    for txn_id, ts, amount, kind in zip(part["txn_id"], part["ts"],
                                                        part["amount_minor"], part["kind"],
                                                        strict=True):
                        xf.write(_entry(txn_id, ts, amount, kind, currency))
    temp.replace(path)


def _write_statement_head(xf: etree.xmlfile, n: int, account: str, currency: str,
                          opened: int, closing: int, part: dict[str, list], created: str,
                          start: dt.date, as_of: dt.date) -> None:
    xf.write(_el("Id", f"{as_of:%Y%m%d}-{n + 1:06d}"))
    xf.write(_el("CreDtTm", created))
    xf.write(_el("Acct", [_el("Id", [_el("Othr", [_el("Id", account)])]), _el("Ccy", currency)]))
    xf.write(_balance("OPBD", opened, currency, start))
    xf.write(_balance("CLBD", closing, currency, as_of))
    net = closing - opened
    xf.write(_el("TxsSummry", [_el("TtlNtries", [
        _el("NbOfNtries", str(len(part["txn_id"]))),
        _el("TtlNetNtryAmt", decimal_text(net, currency)),
        _el("CdtDbtInd", "CRDT" if net >= 0 else "DBIT")])]))


def _el(tag: str, content: str | list[etree._Element], **attrs: str) -> etree._Element:
    element = etree.Element(tag, attrs)
    if isinstance(content, str):
        element.text = content
    else:
        element.extend(content)
    return element


def _balance(code: str, amount_minor: int, currency: str, day: dt.date) -> etree._Element:
    return _el("Bal", [_el("Tp", [_el("CdOrPrtry", [_el("Cd", code)])]),
                       _el("Amt", decimal_text(amount_minor, currency), Ccy=currency),
                       _el("CdtDbtInd", "CRDT" if amount_minor >= 0 else "DBIT"),
                       _el("Dt", [_el("Dt", day.isoformat())])])


def _entry(txn_id: str, ts: dt.datetime, amount_minor: int, kind: str,
           currency: str) -> etree._Element:
    return _el("Ntry", [
        _el("NtryRef", kind),
        _el("Amt", decimal_text(amount_minor, currency), Ccy=currency),
        _el("CdtDbtInd", "CRDT" if amount_minor >= 0 else "DBIT"),
        _el("Sts", "BOOK"),
        _el("BookgDt", [_el("Dt", ts.date().isoformat())]),
        _el("AcctSvcrRef", txn_id[:CAMT_REF_CHARS_MAX]),
        _el("BkTxCd", [_el("Prtry", [_el("Cd", ENTRY_CODES[kind])])])])


def write_mt940(path: Path, accounts: list[tuple[str, str, int]], entries: pa.Table,
                slices: dict[tuple[str, str], tuple[int, int]], start: dt.date,
                as_of: dt.date) -> None:
    """Write one MT940 message per account; the txn_id of each entry is in its :86: line."""
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "w", encoding="ascii", newline="\n") as out:
        for n, (account, currency, opened, closing, part) in enumerate(
                _statement_parts(accounts, entries, slices)):
            out.write(f":20:{f'EOD{as_of:%y%m%d}{n + 1:07d}'[:MT940_REF_CHARS_MAX]}\n")
            out.write(f":25:{account}\n:28C:{n + 1}/1\n")
            out.write(f":60F:{_mt_amount(opened, currency, start)}\n")
            for txn_id, ts, amount, kind in zip(part["txn_id"], part["ts"],
                                                part["amount_minor"], part["kind"],
                                                strict=True):
                mark = "C" if amount >= 0 else "D"
                out.write(f":61:{ts:%y%m%d}{mark}{decimal_text(amount, currency, ',')}"
                          f"NMSCNONREF\n:86:{txn_id} {ENTRY_CODES[kind]}\n")
            out.write(f":62F:{_mt_amount(closing, currency, as_of)}\n-\n")
    temp.replace(path)


def _mt_amount(amount_minor: int, currency: str, day: dt.date) -> str:
    mark = "C" if amount_minor >= 0 else "D"
    return f"{mark}{day:%y%m%d}{currency}{decimal_text(amount_minor, currency, ',')}"
