"""NACHA file structure and code tables: what the record layout alone cannot see.

The layout reads every line into typed fields. A NACHA file is more than its lines: entries
live inside a batch (a batch header, then entries and their addenda, then a batch control), the
file control comes last and only all-9 block filler may follow it, an addenda record follows
its entry, and the codes in the records (service class, SEC, transaction, return reason, change
code, addenda type allowed for the batch's SEC code) come from the NACHA Operating Rules'
tables, shipped in fixtures/codes/ach_codes.toml. This checker sees the lines and the decoded
records while the reader streams them and reports findings by level (structure, semantic), each
naming the line, the record type code, the field and its positions.

Per-line work is vectorised over each chunk (record type codes as a NumPy byte array); only the
structural records (file and batch headers and controls, a handful per batch) go through a
Python loop, because their order is a small state machine.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.adapters.files.controls import BATCH_COLUMN, ControlCheck
from cutover.adapters.files.findings import Finding, record_type_code
from cutover.adapters.files.layout import Layout
from cutover.errors import LayoutError
from cutover.paths import fixtures_dir

#: Findings kept per kind of problem; the count of the rest is reported, not every line.
FINDINGS_PER_KIND_MAX: Final = 20
_FILLER: Final = b"9" * 94
_ONE, _FIVE, _SIX, _SEVEN, _EIGHT, _NINE = (ord(c) for c in "156789")
#: Weights of the ABA routing number check digit over the 8 digits of the RDFI routing.
_CHECK_WEIGHTS: Final = np.array([3, 7, 1, 3, 7, 1, 3, 7], np.int64)
#: Addenda record types and the addenda type code each carries (positions 2-3).
ADDENDA_TYPES: Final = {
    "addenda_02": "02", "addenda_05": "05", "addenda_98": "98", "addenda_98_refused": "98",
    "addenda_99": "99", "addenda_99_dishonored": "99", "addenda_99_contested": "99",
    **{f"addenda_{n}": str(n) for n in range(10, 19)},
}
#: Addenda types that may follow an entry of any SEC code (returns, NOCs).
ANY_SEC_ADDENDA: Final = ("98", "99")
#: Fields holding a date the rules allow blank or all zeros, by record type.
OPTIONAL_DATES: Final = {"batch_header": ("effective_entry_date", "70-75"),
                         "addenda_99": ("date_of_death", "22-27"),
                         "addenda_99_contested": ("date_original_entry_returned", "22-27")}


@dataclass(frozen=True)
class AchCodes:
    """The NACHA code tables (fixtures/codes/ach_codes.toml)."""

    service_class: frozenset[int]
    sec_addenda: dict[str, tuple[str, ...]]
    transaction: frozenset[int]
    returns: dict[str, str]
    changes: dict[str, str]
    refused_changes: dict[str, str]
    entry_fields: dict[str, tuple[tuple[str, int, int], ...]]

    def entry_fields_of(self, sec: str | None) -> tuple[tuple[str, int, int], ...]:
        """(name, first, last position) of the SEC code's own entry fields."""
        return self.entry_fields.get(sec or "", self.entry_fields["DEFAULT"])


@lru_cache(maxsize=1)
def ach_codes() -> AchCodes:
    """Load the shipped code tables once; LayoutError if they are malformed."""
    path = fixtures_dir() / "codes" / "ach_codes.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return AchCodes(
            service_class=frozenset(int(k) for k in raw["service_class_codes"]),
            sec_addenda={k: tuple(v) for k, v in raw["sec_codes"].items()},
            transaction=frozenset(int(k) for k in raw["transaction_codes"]),
            returns=dict(raw["return_codes"]), changes=dict(raw["change_codes"]),
            refused_changes=dict(raw["refused_change_codes"]),
            entry_fields={sec: tuple((str(n), int(a), int(b)) for n, a, b in fields)
                          for sec, fields in raw["entry_fields"].items()})
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise LayoutError(f"{path}: NACHA code tables unreadable: {exc}") from exc


@dataclass
class _State:
    """Where the stream is between chunks: inside a batch, past the file control, and so on."""

    header_line: int | None = None
    batch_line: int | None = None
    control_line: int | None = None
    prev_code: int = 0
    prev_line: int = 0
    prev_wants_addenda: bool = False
    lines: int = 0
    batches: int = 0
    sec_by_batch: dict[int, str] = field(default_factory=dict)
    class_by_batch: dict[int, tuple[int, int]] = field(default_factory=dict)
    file_control: dict[str, int] = field(default_factory=dict)


class NachaChecker:
    """Structure and semantic checks of a NACHA file, fed by FileReader chunk by chunk."""

    def __init__(self, layout: Layout) -> None:
        if layout.record_length != len(_FILLER):
            raise LayoutError(f"layout {layout.name}: the NACHA checker needs 94-character"
                              f" records, not {layout.record_length}")
        self.codes = ach_codes()
        self._state = _State()
        self._findings: list[Finding] = []
        self._per_kind: dict[str, int] = {}

    # -- structure: the order of records ---------------------------------------------------

    def observe_lines(self, lines: pa.Array, numbers: np.ndarray) -> None:
        """Check the order of one chunk of lines (94-character fixed form)."""
        if not len(lines):
            return
        codes, indicator = _bytes_at(lines, 0), _bytes_at(lines, 78)
        filler = pc.equal(lines, pa.scalar(_FILLER, pa.binary())).fill_null(False) \
            .to_numpy(zero_copy_only=False)
        state = self._state
        state.lines += len(lines)
        structural = np.flatnonzero(np.isin(codes, (_ONE, _FIVE, _EIGHT, _NINE)) | filler)
        in_batch_before = state.batch_line is not None
        after_control_before = state.control_line is not None
        in_batch, after_control = self._walk(structural, codes, filler, numbers)
        body = np.flatnonzero(np.isin(codes, (_SIX, _SEVEN)))
        if len(body):
            where = np.searchsorted(structural, body) - 1
            inside = np.where(where >= 0, in_batch[np.maximum(where, 0)], in_batch_before)
            late = np.where(where >= 0, after_control[np.maximum(where, 0)], after_control_before)
            self._flag(body[~inside & ~late], numbers, lines, "outside",
                       "entry or addenda record outside a batch (no batch header before it)")
            self._flag(body[late], numbers, lines, "after_control",
                       "record after the file control record")
        self._addenda_order(codes, indicator, numbers, lines)

    def _walk(self, structural: np.ndarray, codes: np.ndarray, filler: np.ndarray,
              numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The state machine over headers, controls and filler; state after each of them."""
        state = self._state
        in_batch = np.zeros(len(structural), bool)
        after_control = np.zeros(len(structural), bool)
        for k, i in enumerate(structural):
            line, code = int(numbers[i]), int(codes[i])
            if state.control_line is not None and not filler[i]:
                self._add("structure", line, chr(code), "after_control",
                          f"record after the file control record (line {state.control_line})")
            elif filler[i]:
                if state.control_line is None:
                    self._add("structure", line, "9", "filler",
                              "block filler (all 9s) before the file control record")
            elif code == _ONE:
                self._file_header(line)
            elif code == _FIVE:
                if state.batch_line is not None:
                    self._add("structure", state.batch_line, "5", "no_control",
                              f"batch has no batch control (next batch header at line {line})")
                state.batch_line, state.batches = line, state.batches + 1
            elif code == _EIGHT:
                if state.batch_line is None:
                    self._add("structure", line, "8", "control_alone",
                              "batch control without a batch header")
                state.batch_line = None
            else:
                self._file_control(line)
            in_batch[k] = state.batch_line is not None
            after_control[k] = state.control_line is not None
        return in_batch, after_control

    def _file_header(self, line: int) -> None:
        state = self._state
        if state.header_line is not None:
            self._add("structure", line, "1", "header_twice",
                      f"second file header (the first is at line {state.header_line})")
        elif line != 1:
            self._add("structure", line, "1", "header_late",
                      f"file header at line {line}; it must be the first record")
        state.header_line = state.header_line or line

    def _file_control(self, line: int) -> None:
        state = self._state
        if state.batch_line is not None:
            self._add("structure", state.batch_line, "5", "no_control",
                      f"batch has no batch control before the file control (line {line})")
            state.batch_line = None
        state.control_line = line

    def _addenda_order(self, codes: np.ndarray, indicator: np.ndarray, numbers: np.ndarray,
                       lines: pa.Array) -> None:
        """Addenda follow an entry (or addenda); an entry's indicator says whether they do."""
        state = self._state
        prev = np.concatenate(([state.prev_code], codes[:-1]))
        stray = np.flatnonzero((codes == _SEVEN) & ~np.isin(prev, (_SIX, _SEVEN)))
        self._flag(stray, numbers, lines, "stray_addenda",
                   "addenda record without an entry detail record before it")
        wants = (codes == _SIX) & (indicator == ord("1"))
        refuses = (codes == _SIX) & (indicator == ord("0"))
        wanted_prev = np.concatenate(([state.prev_wants_addenda], wants[:-1]))
        refused_prev = np.concatenate(([False], refuses[:-1]))
        missing = np.flatnonzero(wanted_prev & (codes != _SEVEN))
        for i in missing:
            entry_line = int(numbers[i - 1]) if i > 0 else state.prev_line
            self._add("structure", entry_line, "6", "missing_addenda",
                      "addenda record indicator is 1 but no addenda record follows",
                      "addenda_record_indicator", "79-79")
        extra = np.flatnonzero(refused_prev & (codes == _SEVEN))
        for i in extra:
            self._add("structure", int(numbers[i - 1]), "6", "unexpected_addenda",
                      "addenda record indicator is 0 but an addenda record follows",
                      "addenda_record_indicator", "79-79")
        state.prev_code, state.prev_line = int(codes[-1]), int(numbers[-1])
        state.prev_wants_addenda = bool(wants[-1])

    # -- semantic: codes against the tables ------------------------------------------------

    def observe_records(self, record_type: str, table: pa.Table) -> None:
        """Check one decoded chunk's codes, dates and the addenda types its batch allows."""
        if record_type == "batch_header":
            self._batch_headers(table)
        elif record_type == "entry":
            self._entries(table)
            self._addenda_counts(table)
        elif record_type == "batch_control":
            self._batch_controls(table)
        elif record_type == "file_control":
            row = table.slice(0, 1).to_pylist()[0]
            self._state.file_control = {k: row[k] for k in ("batch_count", "block_count")}
        if record_type in ADDENDA_TYPES:
            self._addenda(record_type, table)
        if record_type in OPTIONAL_DATES:
            name, positions = OPTIONAL_DATES[record_type]
            self._optional_dates(table, name, positions, record_type)

    def _batch_headers(self, table: pa.Table) -> None:
        codes = self.codes
        rows = zip(table["_line"].to_pylist(), table[BATCH_COLUMN].to_pylist(),
                   table["standard_entry_class_code"].to_pylist(),
                   table["service_class_code"].to_pylist(), table["batch_number"].to_pylist(),
                   strict=True)
        for line, batch, sec, service, number in rows:
            self._state.sec_by_batch[batch] = sec
            self._state.class_by_batch[batch] = (service, number)
            if sec not in codes.sec_addenda:
                self._add("semantic", line, "5", "sec", f"SEC code {sec!r} is not one of"
                          f" {', '.join(sorted(codes.sec_addenda))}",
                          "standard_entry_class_code", "51-53")
            if service not in codes.service_class:
                self._add("semantic", line, "5", "service_class", f"service class code"
                          f" {service} is not one of {sorted(codes.service_class)}",
                          "service_class_code", "2-4")

    def _batch_controls(self, table: pa.Table) -> None:
        rows = zip(table["_line"].to_pylist(), table[BATCH_COLUMN].to_pylist(),
                   table["service_class_code"].to_pylist(), table["batch_number"].to_pylist(),
                   strict=True)
        for line, batch, service, number in rows:
            opened = self._state.class_by_batch.get(batch)
            if opened is not None and opened[0] != service:
                self._add("structure", line, "8", "control_class", f"service class code"
                          f" {service} differs from its batch header's {opened[0]}",
                          "service_class_code", "2-4")
            if opened is not None and opened[1] != number:
                self._add("structure", line, "8", "control_number", f"batch number {number}"
                          f" differs from its batch header's {opened[1]}",
                          "batch_number", "88-94")

    def _entries(self, table: pa.Table) -> None:
        lines = table["_line"].to_numpy()
        tx = table["transaction_code"].to_numpy(zero_copy_only=False)
        bad_tx = ~np.isin(tx, np.array(sorted(self.codes.transaction)))
        for i in np.flatnonzero(bad_tx):
            self._add("semantic", int(lines[i]), "6", "transaction_code",
                      f"transaction code {tx[i]} is not in the NACHA table",
                      "transaction_code", "2-3")
        routing = table["rdfi_routing"].to_numpy(zero_copy_only=False).astype(np.int64)
        digits = (routing[:, None] // 10 ** np.arange(7, -1, -1)) % 10
        expected = (10 - (digits @ _CHECK_WEIGHTS) % 10) % 10
        given = table["check_digit"].to_numpy(zero_copy_only=False).astype(str)
        wrong = np.flatnonzero(given != expected.astype(str))
        for i in wrong:
            self._add("semantic", int(lines[i]), "6", "check_digit",
                      f"check digit {given[i]!r} does not match routing"
                      f" {routing[i]:08d} (expected {expected[i]})", "check_digit", "12-12")

    def _addenda_counts(self, table: pa.Table) -> None:
        """"number_of_addenda_records" of CTX, ENR, ATX, TRX and IAT entries must be digits."""
        sec_of = self._state.sec_by_batch
        rows = zip(table["_line"].to_pylist(), table[BATCH_COLUMN].to_pylist(),
                   table["dfi_account_number"].to_pylist(),
                   table["individual_name"].to_pylist(), strict=True)
        for line, batch, account, name in rows:
            view = dict(zip(("dfi_account_number", "individual_name"), (account, name),
                            strict=True))
            for field_name, first, last in self.codes.entry_fields_of(sec_of.get(batch)):
                if field_name != "number_of_addenda_records":
                    continue
                value = entry_slice(view, first, last)
                if not value.isdigit():
                    self._add("semantic", line, "6", "addenda_count", f"{field_name} {value!r}"
                              f" is not a number ({sec_of.get(batch)} entry)", field_name,
                              f"{first}-{last}")

    def _addenda(self, record_type: str, table: pa.Table) -> None:
        codes, addenda_type = self.codes, ADDENDA_TYPES[record_type]
        code_rt = "7" + addenda_type
        lines = table["_line"].to_pylist()
        for line, batch in zip(lines, table[BATCH_COLUMN].to_pylist(), strict=True):
            sec = self._state.sec_by_batch.get(batch)
            allowed = codes.sec_addenda.get(sec or "", ())
            if sec in codes.sec_addenda and addenda_type not in (*allowed, *ANY_SEC_ADDENDA):
                self._add("semantic", line, code_rt, "addenda_type", f"addenda type"
                          f" {addenda_type} is not allowed in a {sec} batch (allowed:"
                          f" {', '.join(allowed) or 'none'}, 98, 99)", None, "2-3")
        if record_type == "addenda_99":
            self._table_codes(table, "return_reason_code", codes.returns, code_rt, "4-6",
                              "return reason code")
        elif record_type == "addenda_98":
            self._table_codes(table, "change_code", codes.changes, code_rt, "4-6",
                              "change code")
        elif record_type == "addenda_98_refused":
            self._table_codes(table, "change_code", codes.changes, code_rt, "65-67",
                              "change code")

    def _table_codes(self, table: pa.Table, name: str, known: dict[str, str], code_rt: str,
                     positions: str, what: str) -> None:
        values = table[name].to_pylist()
        for line, value in zip(table["_line"].to_pylist(), values, strict=True):
            if value not in known:
                self._add("semantic", line, code_rt, name, f"{what} {value!r} is not in the"
                          f" NACHA table ({min(known)}-{max(known)})", name, positions)

    def _optional_dates(self, table: pa.Table, name: str, positions: str,
                        record_type: str) -> None:
        code_rt = "5" if record_type == "batch_header" else "799"
        for line, value in zip(table["_line"].to_pylist(), table[name].to_pylist(),
                               strict=True):
            text = (value or "").strip()
            if text in ("", "000000"):
                continue
            try:
                dt.datetime.strptime(text, "%y%m%d")
            except ValueError:
                self._add("layout", line, code_rt, name, f"{text!r} is not a YYMMDD date"
                          " (blank or 000000 allowed)", name, positions)

    # -- the end ---------------------------------------------------------------------------

    def finish(self, checks: list[ControlCheck]) -> list[Finding]:
        """Close the structure (open batch, missing records, counts) and return all findings."""
        state = self._state
        if state.batch_line is not None:
            self._add("structure", state.batch_line, "5", "no_control",
                      "batch has no batch control before the end of the file")
        if state.header_line is None:
            self._add("structure", None, "1", "no_header", "the file has no file header")
        if state.control_line is None:
            self._add("structure", None, "9", "no_control_record",
                      "the file has no file control record")
        declared = state.file_control
        if declared:
            self._counts(declared)
        for kind, count in self._per_kind.items():
            if count > FINDINGS_PER_KIND_MAX:
                self._findings.append(Finding("structure", None, None, None, None,
                                              f"{count - FINDINGS_PER_KIND_MAX} more findings"
                                              f" of kind {kind} not listed"))
        return self._findings

    def _counts(self, declared: dict[str, int]) -> None:
        """Batch and block counts: warnings, since files in circulation miscount and pass."""
        state = self._state
        line = state.control_line
        blocks = -(-state.lines // 10)
        if declared.get("batch_count") != state.batches:
            self._add("structure", line, "9", "batch_count", f"declares"
                      f" {declared.get('batch_count')} batches, the file has {state.batches}",
                      "batch_count", "2-7", "warning")
        if declared.get("block_count") != blocks:
            self._add("structure", line, "9", "block_count", f"declares"
                      f" {declared.get('block_count')} blocks, the file's {state.lines} lines"
                      f" make {blocks}", "block_count", "8-13", "warning")
        if state.lines % 10:
            self._add("structure", None, "9", "blocking", f"{state.lines} lines is not a"
                      " multiple of the blocking factor 10 (no block filler)", None, None,
                      "warning")

    def _flag(self, rows: np.ndarray, numbers: np.ndarray, lines: pa.Array, kind: str,
              message: str) -> None:
        for i in rows:
            self._add("structure", int(numbers[i]), record_type_code(lines[int(i)].as_py()),
                      kind, message)

    def _add(self, level: str, line: int | None, code: str | None, kind: str, message: str,
             field_name: str | None = None, positions: str | None = None,
             severity: str = "error") -> None:
        seen = self._per_kind.get(kind, 0) + 1
        self._per_kind[kind] = seen
        if seen <= FINDINGS_PER_KIND_MAX:
            self._findings.append(Finding(level, line, code, field_name, positions, message,
                                          severity))


#: Where the layout's generic entry columns sit, to cut a SEC code's own fields out of them.
_ENTRY_COLUMNS: Final = (("dfi_account_number", 13, 17), ("individual_identification", 40, 15),
                         ("individual_name", 55, 22), ("discretionary_data", 77, 2))


def entry_slice(row: dict[str, str | None], first: int, last: int) -> str:
    """Positions ``first``-``last`` of an entry, rebuilt from the layout's generic text
    columns (positions no text column covers read as spaces)."""
    line = [" "] * 94
    for name, start, width in _ENTRY_COLUMNS:
        text = (row.get(name) or "").ljust(width)[:width]
        line[start - 1:start - 1 + width] = text
    return "".join(line[first - 1:last])


def entry_view(sec: str | None, row: dict[str, object]) -> dict[str, str]:
    """An entry's SEC-specific fields by their names (CCD's receiving company name, SHR's
    card expiration date, IAT's foreign receiver's account number, ...)."""
    text = {k: (v if isinstance(v, str) else None) for k, v in row.items()}
    out = {}
    for name, first, last in ach_codes().entry_fields_of(sec):
        out[name] = entry_slice(text, first, last).rstrip()
    return out


def _bytes_at(lines: pa.Array, offset: int) -> np.ndarray:
    """The byte at ``offset`` of every line (0 where a line is shorter), without a copy per line."""
    offsets = np.frombuffer(lines.buffers()[1], np.int32)[lines.offset:lines.offset + len(lines) + 1]
    data = lines.buffers()[2]
    buf = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)
    out = np.zeros(len(lines), np.uint8)
    ok = lengths > offset
    out[ok] = buf[starts[ok] + offset]
    return out
