"""The edges of a delimited file: a line to the fixed form its layout describes, and back.

A delimited layout is loaded as the fixed-width layout of its widest values (see layout.py),
so reading a delimited line means padding each column to its field's width the way the fixed
codecs expect, and writing means taking the padding off again. Everything between - decoding,
matching record types, control totals, rejects - is the fixed-width code, tested once.

Values are written in their shortest form: text without its padding, numbers without leading
zeros (a zoned number keeps its overpunched last digit), dates, times and timestamps at their
one width, an empty column for a null. A file in that form reads and writes back byte for byte.
There is no quoting: legacy exports that use a delimiter never put it inside a value, and a
value that holds it is refused on write (naming field and row) rather than quoted in a way the
legacy side may not read.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.adapters.files.layout import FieldSpec, Layout, RecordType
from cutover.errors import BadRecord

#: Prefix of the constant fields layout.py adds to cover unused positions; they are no column.
FILL_PREFIX: Final = "_fill_"
#: Types whose text has exactly one width: a shorter value cannot be padded into meaning.
EXACT_WIDTH_TYPES: Final = frozenset({"date", "time", "timestamp", "constant"})
NUMERIC_TYPES: Final = frozenset({"integer", "amount"})

#: One line that could not be put in fixed form: (index in chunk, record type, field, reason).
Failure = tuple[int, str | None, str | None, str]


def columns(record: RecordType) -> tuple[FieldSpec, ...]:
    """The fields of a delimited record that are columns, in column order."""
    return tuple(f for f in record.fields if not f.name.startswith(FILL_PREFIX))


def _as_text(lines: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Lines as strings and a mask of the ones that are not valid UTF-8 (slow path only then)."""
    try:
        return lines.cast(pa.string()), np.zeros(len(lines), bool)
    except pa.ArrowInvalid:
        values, bad = [], np.zeros(len(lines), bool)
        for i, raw in enumerate(lines.to_pylist()):
            try:
                values.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                values.append("")
                bad[i] = True
        return pa.array(values, pa.string()), bad


def _pad(spec: FieldSpec, value: pa.Array) -> tuple[pa.Array, np.ndarray, str]:
    """One column padded to the field's width; the rows that cannot be, and why."""
    width = pc.utf8_length(value).to_numpy(zero_copy_only=False)
    empty = width == 0
    if spec.type in EXACT_WIDTH_TYPES:
        bad = ~empty & (width != spec.length)
        why = f"{spec.type} must be exactly {spec.length} characters"
    else:
        bad = width > spec.length
        why = f"longer than {spec.length} characters"
    if spec.type in NUMERIC_TYPES:
        padded = pc.utf8_lpad(value, width=spec.length, padding="0")
    elif spec.justify == "right":
        padded = pc.utf8_lpad(value, width=spec.length, padding=spec.pad)
    else:
        padded = pc.utf8_rpad(value, width=spec.length, padding=spec.pad)
    # An empty column is a blank field: null when optional, refused by the codec when not.
    padded = pc.if_else(pa.array(empty), " " * spec.length, padded)
    return padded, bad, why


def _record_lines(layout: Layout, record: RecordType, parts: pa.Array
                  ) -> tuple[pa.Array, np.ndarray, np.ndarray, list[tuple[int, str, str]]]:
    """For rows split into this record's column count: fixed lines, which rows are this record
    type (its discriminator columns say so), which cannot be padded, and why."""
    pieces, bad_any, failures = [], np.zeros(len(parts), bool), []
    for i, spec in enumerate(columns(record)):
        padded, bad, why = _pad(spec, pc.list_element(parts, i))
        for row in np.flatnonzero(bad & ~bad_any):
            failures.append((int(row), spec.name, why))
        bad_any |= bad
        pieces.append(padded)
    # Each matcher of a delimited record sits exactly on one column (see layout.py).
    by_start = {spec.start: i for i, spec in enumerate(columns(record))}
    hit = np.ones(len(parts), bool)
    for m in record.matchers:
        hit &= pc.is_in(pieces[by_start[m.start]], pa.array(list(m.values))).fill_null(False) \
            .to_numpy(zero_copy_only=False)
    tail = record.fill * (layout.record_length - sum(f.length for f in columns(record)))
    fixed = pc.binary_join_element_wise(*pieces, tail, "")
    return fixed, hit, bad_any, failures


def to_fixed(layout: Layout, lines: pa.Array) -> tuple[pa.Array, list[Failure]]:
    """Turn delimited lines (binary) into the layout's fixed form; list the lines that fail.

    A failed line comes back empty, for the reader to skip: it has already been explained.
    """
    assert layout.delimiter is not None, "to_fixed is for delimited layouts"
    text, undecodable = _as_text(lines)
    if "ascii" in layout.encoding.lower():
        undecodable |= ~pc.string_is_ascii(text).to_numpy(zero_copy_only=False)
    parts = pc.split_pattern(text, layout.delimiter)
    counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
    out = np.full(len(lines), None, dtype=object)
    done = undecodable.copy()
    failures: list[Failure] = [(int(i), None, None, f"bytes outside {layout.encoding}")
                               for i in np.flatnonzero(undecodable)]
    for record in layout.records:
        rows = np.flatnonzero(~done & (counts == len(columns(record))))
        if not len(rows):
            continue
        fixed, hit, bad, why = _record_lines(layout, record, parts.take(pa.array(rows)))
        failures += [(int(rows[r]), record.name, name, reason) for r, name, reason in why
                     if hit[r]]
        good = hit & ~bad
        out[rows[good]] = fixed.filter(pa.array(good)).to_pylist()
        done[rows[hit]] = True
    widths = sorted({len(columns(r)) for r in layout.records})
    for i in np.flatnonzero(~done):
        why = "unknown record type" if counts[i] in widths else \
            f"{counts[i]} fields, but record types have {widths}"
        failures.append((int(i), None, None, why))
    fixed = pa.array(out, pa.string()).fill_null("")
    if _utf8_compatible(layout.encoding):
        return fixed.cast(pa.binary()), failures
    return pa.array([v.encode(layout.encoding) for v in fixed.to_pylist()], pa.binary()), \
        failures


def _utf8_compatible(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in ("ascii", "us-ascii", "utf-8", "utf8")


def _natural(spec: FieldSpec, piece: pa.Array) -> pa.Array:
    """One encoded fixed-width column in its shortest delimited form."""
    blank = pc.equal(pc.utf8_trim(piece, " "), "")
    if spec.type in NUMERIC_TYPES and spec.sign == "overpunch":
        body = pc.utf8_ltrim(pc.utf8_slice_codeunits(piece, 0, spec.length - 1), "0")
        short = pc.binary_join_element_wise(
            body, pc.utf8_slice_codeunits(piece, spec.length - 1, spec.length), "")
    elif spec.type in NUMERIC_TYPES:
        trimmed = pc.utf8_ltrim(piece, "0")
        short = pc.if_else(pc.equal(trimmed, ""), "0", trimmed)
    elif spec.type == "text":
        trim = pc.utf8_ltrim if spec.justify == "right" else pc.utf8_rtrim
        short = trim(piece, spec.pad)
    else:
        short = piece
    return pc.if_else(blank, "", short) if spec.type != "text" else short


def to_delimited(layout: Layout, record: RecordType, pieces: list[pa.Array | str],
                 rows: int) -> pa.Array:
    """Join one record type's encoded fields into delimited lines (line ending included).

    ``pieces`` are the fixed-width encodings of ``record.fields`` in order (a str for a
    constant); a value holding the delimiter is refused, naming the field and the row.
    """
    assert layout.delimiter is not None, "to_delimited is for delimited layouts"
    out = []
    for spec, piece in zip(record.fields, pieces, strict=True):
        if spec.name.startswith(FILL_PREFIX):
            continue
        column = pa.array([piece] * rows, pa.string()) if isinstance(piece, str) else piece
        value = _natural(spec, column.cast(pa.string()))
        holds = pc.match_substring(value, layout.delimiter).fill_null(False) \
            .to_numpy(zero_copy_only=False)
        if holds.any():
            raise BadRecord(f"field {spec.name!r}: row {int(np.flatnonzero(holds)[0])} holds the"
                            f" delimiter {layout.delimiter!r}; {int(holds.sum())} row(s) affected")
        out.append(value)
    return _join(out, layout.delimiter, layout.line_ending, rows)


def _join(values: list[pa.Array], delimiter: str, ending: str, rows: int) -> pa.Array:
    joined = pc.binary_join_element_wise(*values, delimiter) if len(values) > 1 else values[0]
    return pc.binary_join_element_wise(joined, pa.array([ending] * rows, pa.string()), "")
