"""Stream a batch file into typed Arrow batches per record type, quarantining bad lines.

This is the port through which legacy batch files enter cutover. It reads in bounded chunks
(a file larger than memory works), slices every field out of a whole chunk of lines at once,
and yields ``(record_type, pa.RecordBatch)``. A line that cannot be read (wrong length, bad
digits, bad date, unknown record type) is written to the rejects file with its line number,
field and reason, card numbers masked, and reading goes on. Control totals are checked after
the last line; ``raise_for_controls`` raises ControlTotalMismatch naming each failing total.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.adapters.files.columns import decode_field
from cutover.adapters.files.controls import (
    BATCH_COLUMN,
    ControlCheck,
    ControlTracker,
    failure_message,
)
from cutover.adapters.files.delimited import columns as delimited_columns
from cutover.adapters.files.delimited import to_fixed
from cutover.adapters.files.findings import Finding, FormatChecker, record_type_code
from cutover.adapters.files.layout import Layout, RecordType
from cutover.adapters.files.nacha import NachaChecker
from cutover.adapters.tokenize import mask_pans
from cutover.domain import CURRENCY_EXPONENTS
from cutover.errors import ControlTotalMismatch, InputError

#: Bytes read per chunk: big enough to amortise Arrow calls, small enough to bound memory.
CHUNK_BYTES: Final = 8 * 1024 * 1024
BATCH_ROWS_DEFAULT: Final = 65_536
def make_checker(layout: Layout) -> FormatChecker | None:
    """The format checker the layout names (structure and code tables), or None."""
    if layout.checker == "nacha":
        return NachaChecker(layout)
    return None


#: Rejects kept in memory for the report (all of them go to the rejects file).
REJECT_SAMPLE_MAX: Final = 20
_KNOWN_CURRENCIES: Final = pa.array(sorted(CURRENCY_EXPONENTS))


@dataclass
class ReadReport:
    """What a read saw: lines read, lines rejected, good records per type, control checks."""

    read: int = 0
    rejected: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    checks: list[ControlCheck] = field(default_factory=list)
    reject_sample: list[dict] = field(default_factory=list)
    #: Structure and code-table findings of the layout's checker, and lines padded or trimmed.
    findings: list[Finding] = field(default_factory=list)
    warnings: int = 0


class FileReader:
    """Read ``path`` with ``layout``; iterate ``batches()``; then look at ``report``."""

    def __init__(self, path: str | Path, layout: Layout, rejects_path: str | Path | None = None,
                 chunk_bytes: int = CHUNK_BYTES) -> None:
        self.path = Path(path)
        self.layout = layout
        self.rejects_path = Path(rejects_path) if rejects_path else None
        self.chunk_bytes = chunk_bytes
        self.report = ReadReport()
        self._tracker = ControlTracker(layout)
        self._batch_ordinal = 0
        self._rejects: IO[str] | None = None
        self._checker = make_checker(layout)

    def batches(self, batch_rows: int = BATCH_ROWS_DEFAULT) -> Iterator[tuple[str, pa.RecordBatch]]:
        """Yield ``(record_type, batch)`` in file order of chunks; fills ``report`` at the end."""
        if batch_rows <= 0:
            raise ValueError("batch_rows must be positive")
        if not self.path.is_file():
            raise InputError(f"batch file {self.path} does not exist or is not a file")
        # A second iteration starts over rather than adding to the first one's counts.
        self.report, self._batch_ordinal = ReadReport(), 0
        self._tracker = ControlTracker(self.layout)
        self._checker = make_checker(self.layout)
        pending: dict[str, list[pa.Table]] = {}
        try:
            if self.rejects_path:
                self._rejects = self.rejects_path.open("w", encoding="utf-8")
            for lines, first_line in self._chunks():
                for name, table in self._process(lines, first_line):
                    pending.setdefault(name, []).append(table)
                    if sum(t.num_rows for t in pending[name]) >= batch_rows:
                        yield from self._flush(name, pending.pop(name), batch_rows)
            for name in list(pending):
                yield from self._flush(name, pending.pop(name), batch_rows)
        finally:
            if self._rejects:
                self._rejects.close()
        self.report.checks = self._tracker.checks()
        if self._checker is not None:
            self.report.findings.extend(self._checker.finish(self.report.checks))

    def raise_for_controls(self) -> None:
        """Raise ControlTotalMismatch naming every failing total (call after iterating)."""
        failing = [c for c in self.report.checks if not c.ok]
        if failing:
            raise ControlTotalMismatch(failure_message(str(self.path), failing))

    def _flush(self, name: str, tables: list[pa.Table], batch_rows: int
               ) -> Iterator[tuple[str, pa.RecordBatch]]:
        table = pa.concat_tables(tables).combine_chunks()
        for batch in table.to_batches(max_chunksize=batch_rows):
            yield name, batch

    def _chunks(self) -> Iterator[tuple[pa.Array, int]]:
        """Yield (lines as a binary array, line number of the first) with bounded memory."""
        ending = self.layout.line_ending.encode()
        width = self.layout.record_length
        carry, next_line = b"", 1
        with self.path.open("rb") as handle:
            while True:
                chunk = handle.read(self.chunk_bytes)
                buf = carry + chunk
                if not buf:
                    return
                if ending:
                    cut = buf.rfind(ending) if chunk else len(buf)
                    if cut < 0:
                        carry = buf
                        continue
                    body, carry = buf[:cut], buf[cut + len(ending):] if chunk else b""
                    lines = pa.array(body.split(ending), pa.binary())
                else:
                    usable = len(buf) // width * width if chunk else len(buf)
                    body, carry = buf[:usable], buf[usable:]
                    lines = pa.array([body[i:i + width] for i in range(0, len(body), width)],
                                     pa.binary())
                if len(lines):
                    yield lines, next_line
                    next_line += len(lines)
                if not chunk:
                    return

    def _classify(self, lines: pa.Array) -> np.ndarray:
        """Index of the first record type whose matchers all hold, -1 when none does."""
        kinds = np.full(len(lines), -1, np.int64)
        for index, record in enumerate(self.layout.records):
            hit = np.ones(len(lines), bool)
            for m in record.matchers:
                piece = pc.binary_slice(lines, m.start - 1, m.start - 1 + m.length)
                wanted = pa.array([v.encode(self.layout.encoding) for v in m.values], pa.binary())
                hit &= pc.is_in(piece, wanted).fill_null(False).to_numpy(zero_copy_only=False)
            kinds = np.where((kinds < 0) & hit, index, kinds)
        return kinds

    def _process(self, raws: pa.Array, first_line: int) -> Iterator[tuple[str, pa.Table]]:
        numbers = np.arange(first_line, first_line + len(raws), dtype=np.int64)
        raws, numbers = self._drop_blank(raws, numbers)
        if not len(raws):
            return
        self.report.read += len(raws)
        lines, skip = self._fixed_form(self._lenient(raws, numbers), numbers)
        if self._checker is not None:
            self._checker.observe_lines(lines, numbers)
        kinds = self._classify(lines)
        lengths = pc.binary_length(lines).to_numpy(zero_copy_only=False)
        opens = np.zeros(len(lines), np.int64)
        if self.layout.batch_open is not None:
            open_index = [r.name for r in self.layout.records].index(self.layout.batch_open)
            opens = (kinds == open_index).astype(np.int64)
        batch_ord = self._batch_ordinal + np.cumsum(opens)
        self._batch_ordinal = int(batch_ord[-1])
        wrong = skip | (lengths != self.layout.record_length)
        for i in np.flatnonzero(~wrong & self._non_ascii(lines)):
            self._reject(raws[i].as_py(), int(numbers[i]), self._kind_name(kinds[i]), None,
                         f"bytes outside {self.layout.encoding}")
            wrong[i] = True
        for i in np.flatnonzero(wrong & ~skip & (lengths != self.layout.record_length)):
            self._reject(raws[i].as_py(), int(numbers[i]), self._kind_name(kinds[i]), None,
                         f"wrong length {lengths[i]}, expected {self.layout.record_length}")
        for i in np.flatnonzero(~wrong & (kinds < 0)):
            self._reject(raws[i].as_py(), int(numbers[i]), None, None, "unknown record type")
        for index, record in enumerate(self.layout.records):
            rows = np.flatnonzero(~wrong & (kinds == index))
            if len(rows):
                take = pa.array(rows)
                table = self._decode(record, lines.take(take), numbers[rows], batch_ord[rows],
                                     raws.take(take))
                if table.num_rows:
                    self._tracker.observe(record.name, table)
                    if self._checker is not None:
                        self._checker.observe_records(record.name, table)
                    self.report.by_type[record.name] = \
                        self.report.by_type.get(record.name, 0) + table.num_rows
                    yield record.name, table.drop_columns([BATCH_COLUMN])

    def _drop_blank(self, raws: pa.Array, numbers: np.ndarray) -> tuple[pa.Array, np.ndarray]:
        """Empty lines (a trailing newline too many) are not records: skipped with a warning."""
        if self.layout.delimited or not self.layout.pad_short_lines:
            return raws, numbers
        blank = pc.less_equal(pc.binary_length(raws), 1).to_numpy(zero_copy_only=False)
        if blank.any():
            blank &= np.isin(np.asarray(raws.to_pylist(), dtype=object), [b"", b"\r"])
        if not blank.any():
            return raws, numbers
        for i in np.flatnonzero(blank):
            self._warn(int(numbers[i]), b"", "empty line skipped")
        return raws.filter(pa.array(~blank)), numbers[~blank]

    def _lenient(self, raws: pa.Array, numbers: np.ndarray) -> pa.Array:
        """Drop a CR before the LF and pad short lines, as the layout allows (with a warning).

        Only lines that need it are touched (the rest stay zero-copy), so a clean file costs
        one length scan.
        """
        layout = self.layout
        if layout.delimited or not (layout.accept_crlf or layout.pad_short_lines):
            return raws
        width, ending = layout.record_length, layout.line_ending
        lengths = pc.binary_length(raws).to_numpy(zero_copy_only=False)
        fix = np.zeros(len(raws), bool)
        if layout.accept_crlf and ending == "\n":
            fix |= lengths == width + 1
        if layout.pad_short_lines:
            fix |= (lengths > 0) & (lengths < width)
        if not fix.any():
            return raws
        items = raws.to_pylist()
        for i in np.flatnonzero(fix):  # rare path: only the lines that need mending
            line = items[i].removesuffix(b"\r") if layout.accept_crlf else items[i]
            if layout.pad_short_lines and 0 < len(line) < width:
                self._warn(int(numbers[i]), line, f"short line of {len(line)} characters"
                           f" padded with spaces to {width}")
                line = line.ljust(width, b" ")
            items[i] = line
        return pa.array(items, pa.binary())

    def _warn(self, line: int, raw: bytes, reason: str) -> None:
        self.report.warnings += 1
        if len(self.report.findings) < REJECT_SAMPLE_MAX:
            self.report.findings.append(Finding(
                "layout", line, record_type_code(raw), None, None, reason, "warning"))

    def _fixed_form(self, raws: pa.Array, numbers: np.ndarray) -> tuple[pa.Array, np.ndarray]:
        """The lines in the layout's fixed form, and a mask of those already rejected.

        Fixed-width lines are that form already; delimited ones are padded out column by column,
        and a line that cannot be (wrong field count, a value too wide) is rejected here.
        """
        skip = np.zeros(len(raws), bool)
        if not self.layout.delimited:
            return raws, skip
        lines, failures = to_fixed(self.layout, raws)
        for i, record_type, field_name, why in failures:
            self._reject(raws[i].as_py(), int(numbers[i]), record_type, field_name, why)
            skip[i] = True
        return lines, skip

    def _non_ascii(self, lines: pa.Array) -> np.ndarray:
        """Lines with bytes above 127 in an ASCII layout; one scan of the chunk's bytes."""
        flags = np.zeros(len(lines), bool)
        binary = any(f.type == "packed" for r in self.layout.records for f in r.fields)
        if "ascii" not in self.layout.encoding.lower() or binary:
            return flags
        data = np.frombuffer(lines.buffers()[2], np.uint8) if lines.buffers()[2] else None
        if data is None or not (data > 127).any():
            return flags
        for i, line in enumerate(lines.to_pylist()):  # rare path: only chunks with such bytes
            flags[i] = not line.isascii()
        return flags

    def _kind_name(self, kind: int) -> str | None:
        return self.layout.records[kind].name if kind >= 0 else None

    def _decode(self, record: RecordType, lines: pa.Array, numbers: np.ndarray,
                batch_ord: np.ndarray, raws: pa.Array) -> pa.Table:
        """Decode every field of one record type; quarantine rows any field refuses.

        ``raws`` are the lines as the file holds them (they differ from ``lines`` for a
        delimited file): a reject shows the line the user can find in the file.
        """
        columns: dict[str, pa.Array] = {}
        reason: list[tuple[np.ndarray, str, str]] = []
        # A delimited file has no positions a user could look up; it has column numbers.
        column_of = {f.name: i + 1 for i, f in enumerate(delimited_columns(record))} \
            if self.layout.delimited else {}
        for spec in record.fields:
            raw = pc.binary_slice(lines, spec.start - 1, spec.stop)
            decoded = decode_field(spec, raw, self.layout.encoding)
            if decoded.values is not None:
                columns[spec.name] = decoded.values
            where = f"in column {column_of[spec.name]}" if spec.name in column_of else \
                f"at positions {spec.start}-{spec.stop}"
            reason.append((decoded.bad, spec.name, f"{decoded.reason} {where}"))
        for spec in record.data_fields:
            if spec.type == "amount":
                currency = columns[spec.currency_field] if spec.currency_field else \
                    pa.array([spec.currency] * len(lines), pa.string())
                unknown = ~pc.is_in(currency, _KNOWN_CURRENCIES).fill_null(False) \
                    .to_numpy(zero_copy_only=False)
                reason.append((unknown, spec.currency_field or spec.name,
                               "unknown ISO 4217 currency for the amount"))
        bad = np.zeros(len(lines), bool)
        for mask, field_name, why in reason:
            for i in np.flatnonzero(mask & ~bad):
                self._reject(raws[i].as_py(), int(numbers[i]), record.name, field_name, why)
            bad |= mask
        keep = pa.array(~bad)
        table = pa.table({**columns, "_line": pa.array(numbers, pa.int64()),
                          BATCH_COLUMN: pa.array(batch_ord, pa.int64())})
        return table.filter(keep).cast(record.schema().append(pa.field(BATCH_COLUMN, pa.int64())))

    def _positions(self, record_type: str | None, field_name: str | None) -> str | None:
        """"start-stop" of a field of a fixed-width record type, None when unknown."""
        if record_type is None or field_name is None or self.layout.delimited:
            return None
        spec = next((f for f in self.layout.by_name[record_type].fields
                     if f.name == field_name), None)
        return None if spec is None else f"{spec.start}-{spec.stop}"

    def _reject(self, raw: bytes, line: int, record_type: str | None, field_name: str | None,
                reason: str) -> None:
        """Quarantine one line: counted, sampled, and written with card numbers masked."""
        self.report.rejected += 1
        entry = {"file": str(self.path), "line": line, "record_type": record_type,
                 "record_type_code": record_type_code(raw), "field": field_name,
                 "positions": self._positions(record_type, field_name), "reason": reason,
                 "raw": mask_pans(raw.decode(self.layout.encoding, errors="replace"))}
        if len(self.report.reject_sample) < REJECT_SAMPLE_MAX:
            self.report.reject_sample.append(entry)
        if self._rejects:
            self._rejects.write(json.dumps(entry) + "\n")
