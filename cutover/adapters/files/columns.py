"""Vectorised field codecs: decode a column of fixed-width slices, encode a column back.

Reading a million-line file one field at a time in Python costs minutes; slicing every field
out of a block of lines with Arrow and casting whole columns costs well under a second. Each
decoder returns the typed column plus a mask of the rows it could not read and why, so the
reader can quarantine exactly those lines. Encoders are the inverse and refuse, naming the
field and the row, any value that would not fit its width (never truncate money).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.adapters.files.codecs import OVERPUNCH, packed_decode, packed_encode
from cutover.adapters.files.layout import FieldSpec
from cutover.errors import BadRecord
from cutover.values import rolled_over

_OVERPUNCH_SET = pa.array(list(OVERPUNCH) + list("0123456789"))
_OVERPUNCH_CHARS = pa.array(list(OVERPUNCH))
_STRPTIME = {"CCYYMMDD": "%Y%m%d", "YYMMDD": "%y%m%d"}
_STRFTIME = {"CCYYMMDD": "%Y%m%d", "YYMMDD": "%y%m%d", "YYDDD": "%y%j", "CCYYDDD": "%Y%j"}
#: POSIX %y pivot, used for two-digit Julian years too so both date forms agree.
_YY_PIVOT = 69
_US_PER_S = 1_000_000


@dataclass
class Decoded:
    """A decoded column (None for constants), the rows that failed, and why they failed."""

    values: pa.Array | None
    bad: np.ndarray
    reason: str


def _np(array: pa.Array, fill: object) -> np.ndarray:
    return array.fill_null(fill).to_numpy(zero_copy_only=False)


def to_text(raw: pa.Array, encoding: str) -> tuple[pa.Array, np.ndarray]:
    """Binary slices to strings; rows whose bytes are not valid in ``encoding`` are flagged.

    For ASCII layouts the reader has already quarantined lines with non-ASCII bytes, so the
    cast (which validates UTF-8) is all that is needed here.
    """
    if encoding.lower().replace("_", "-") in ("ascii", "utf-8", "utf8", "us-ascii"):
        try:
            return raw.cast(pa.string()), np.zeros(len(raw), bool)
        except pa.ArrowInvalid:
            pass
    values, bad = [], np.zeros(len(raw), bool)
    for i, item in enumerate(raw.to_pylist()):  # slow path: only for non-UTF-8 bytes
        try:
            values.append(item.decode(encoding))
        except UnicodeDecodeError:
            values.append("")
            bad[i] = True
    return pa.array(values, pa.string()), bad


def decode_field(spec: FieldSpec, raw: pa.Array, encoding: str) -> Decoded:
    """Decode one field's slices (binary) into its Arrow column."""
    if spec.type == "constant":
        expected = pa.scalar(spec.value.encode(encoding), pa.binary())
        ok = _np(pc.equal(raw, expected), False)
        return Decoded(None, ~ok, f"expected constant {spec.value!r}")
    if spec.type == "packed":
        return _decode_packed(raw)
    text, bad_bytes = to_text(raw, encoding)
    decoder = {"text": _decode_text, "integer": _decode_integer, "amount": _decode_integer,
               "date": _decode_date, "time": _decode_time, "timestamp": _decode_timestamp}
    out = decoder[spec.type](spec, text)
    if spec.optional and spec.type != "text":
        blank = _np(pc.equal(pc.utf8_trim(text, " "), ""), False)
        out.values = pc.if_else(pa.array(blank), pa.nulls(len(text), out.values.type), out.values)
        out.bad &= ~blank
    out.bad |= bad_bytes
    return out


def _decode_text(spec: FieldSpec, text: pa.Array) -> Decoded:
    trim = {"right": pc.utf8_rtrim, "left": pc.utf8_ltrim, "both": pc.utf8_trim}.get(spec.trim)
    values = trim(text, spec.pad) if trim else text
    if spec.optional:
        values = pc.if_else(pc.equal(values, ""), pa.nulls(len(values), pa.string()), values)
    return Decoded(values, np.zeros(len(text), bool), "bad text")


def _decode_integer(spec: FieldSpec, text: pa.Array) -> Decoded:
    if spec.sign == "none":
        ok = _np(pc.ascii_is_decimal(text), False)
        values = pc.cast(pc.if_else(pa.array(ok), text, "0"), pa.int64())
        return Decoded(values, ~ok, f"bad digits in {spec.type} field")
    width = spec.length
    body = pc.utf8_slice_codeunits(text, 0, width - 1)
    index = _np(pc.index_in(pc.utf8_slice_codeunits(text, width - 1, width), _OVERPUNCH_SET), -1)
    body_ok = _np(pc.ascii_is_decimal(body), False) if width > 1 else np.ones(len(text), bool)
    ok = body_ok & (index >= 0)
    magnitude = _np(pc.cast(pc.if_else(pa.array(body_ok), body, "0"), pa.int64()), 0) \
        if width > 1 else np.zeros(len(text), np.int64)
    magnitude = magnitude * 10 + index % 10
    signed = np.where((index >= 10) & (index < 20), -magnitude, magnitude)
    return Decoded(pa.array(signed, pa.int64()), ~ok, "bad zoned (overpunch) number")


def _decode_date(spec: FieldSpec, text: pa.Array) -> Decoded:
    digits_ok = _np(pc.ascii_is_decimal(text), False)
    safe = pc.if_else(pa.array(digits_ok), text, "0" * spec.length)
    if spec.format in _STRPTIME:
        parsed = pc.strptime(safe, format=_STRPTIME[spec.format], unit="s", error_is_null=True)
        values = pc.cast(parsed, pa.date32())
        # strptime moves a day that does not exist (20260230 -> 2026-03-02): refused.
        ok = digits_ok & _np(pc.is_valid(values), False) & ~rolled_over(
            safe, parsed, _STRPTIME[spec.format])
        return Decoded(values, ~ok, f"bad {spec.format} date")
    year_digits = 2 if spec.format == "YYDDD" else 4
    year = _np(pc.cast(pc.utf8_slice_codeunits(safe, 0, year_digits), pa.int64()), 0)
    if year_digits == 2:
        year = np.where(year < _YY_PIVOT, 2000 + year, 1900 + year)
    doy = _np(pc.cast(pc.utf8_slice_codeunits(safe, year_digits, spec.length), pa.int64()), 0)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    ok = digits_ok & (doy >= 1) & (doy <= 365 + leap)
    jan1 = (np.clip(year, 1, 9999) - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    days = (jan1 + np.where(ok, doy - 1, 0)).astype(np.int64).astype(np.int32)
    return Decoded(pa.array(days, pa.int32()).cast(pa.date32()), ~ok, f"bad {spec.format} date")


def _decode_time(spec: FieldSpec, text: pa.Array) -> Decoded:
    digits_ok = _np(pc.ascii_is_decimal(text), False)
    number = _np(pc.cast(pc.if_else(pa.array(digits_ok), text, "0"), pa.int64()), 0)
    if spec.format == "HHMM":
        hours, minutes, seconds = number // 100, number % 100, np.zeros_like(number)
    else:
        hours, minutes, seconds = number // 10000, number // 100 % 100, number % 100
    ok = digits_ok & (hours < 24) & (minutes < 60) & (seconds < 60)
    total = np.where(ok, hours * 3600 + minutes * 60 + seconds, 0).astype(np.int32)
    return Decoded(pa.array(total, pa.int32()).cast(pa.time32("s")), ~ok, f"bad {spec.format} time")


def _decode_timestamp(spec: FieldSpec, text: pa.Array) -> Decoded:
    digits_ok = _np(pc.ascii_is_decimal(text), False)
    safe = pc.if_else(pa.array(digits_ok), text, "19700101000000000000")
    seconds = pc.strptime(pc.utf8_slice_codeunits(safe, 0, 14), format="%Y%m%d%H%M%S",
                          unit="s", error_is_null=True)
    ok = digits_ok & _np(pc.is_valid(seconds), False) & ~rolled_over(
        pc.utf8_slice_codeunits(safe, 0, 14), seconds, "%Y%m%d%H%M%S")
    micros = _np(pc.cast(pc.utf8_slice_codeunits(safe, 14, 20), pa.int64()), 0)
    epoch_s = _np(pc.cast(seconds, pa.int64()), 0)
    values = pa.array(epoch_s * _US_PER_S + micros, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    return Decoded(values, ~ok, "bad CCYYMMDDHHMMSSffffff timestamp")


def _decode_packed(raw: pa.Array) -> Decoded:
    values, bad = [], np.zeros(len(raw), bool)
    for i, item in enumerate(raw.to_pylist()):
        try:
            values.append(packed_decode(item))
        except BadRecord:
            values.append(0)
            bad[i] = True
    return Decoded(pa.array(values, pa.int64()), bad, "bad packed decimal (COMP-3)")


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


def _refuse(spec: FieldSpec, bad: np.ndarray, why: str) -> None:
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BadRecord(f"field {spec.name!r} (positions {spec.start}-{spec.stop}): row {row}"
                        f" {why}; {int(bad.sum())} row(s) affected")


def _blank_nulls(spec: FieldSpec, column: pa.Array, encoded: pa.Array) -> pa.Array:
    if column.null_count == 0:
        return encoded
    if not spec.optional:
        _refuse(spec, _np(pc.is_null(column), True), "is null but the field is not optional")
    return pc.if_else(pc.is_null(column), " " * spec.length, encoded)


def encode_field(spec: FieldSpec, column: pa.Array | None) -> pa.Array | str:
    """Encode a column into strings of exactly ``spec.length`` characters (a str for constants)."""
    if spec.type == "constant":
        return spec.value
    if column is None:
        raise BadRecord(f"field {spec.name!r} is missing from the records to write")
    encoder = {"text": _encode_text, "integer": _encode_integer, "amount": _encode_integer,
               "date": _encode_date, "time": _encode_time, "timestamp": _encode_timestamp,
               "packed": _encode_packed}[spec.type]
    encoded = encoder(spec, column)
    too_long = _np(pc.not_equal(pc.utf8_length(encoded), spec.length), True)
    _refuse(spec, too_long, f"does not fit in {spec.length} characters")
    return _blank_nulls(spec, column, encoded)


def _encode_text(spec: FieldSpec, column: pa.Array) -> pa.Array:
    text = column.cast(pa.string()).fill_null("")
    pad = pc.utf8_rpad if spec.justify == "left" else pc.utf8_lpad
    return pad(text, width=spec.length, padding=spec.pad)


def _encode_integer(spec: FieldSpec, column: pa.Array) -> pa.Array:
    values = _np(column.cast(pa.int64()), 0)
    if spec.sign == "none":
        _refuse(spec, values < 0, "is negative but the field is unsigned")
        return pc.utf8_lpad(pa.array(values).cast(pa.string()), width=spec.length, padding="0")
    digits = pc.utf8_lpad(pa.array(np.abs(values)).cast(pa.string()), width=spec.length,
                          padding="0")
    last = np.abs(values) % 10 + np.where(values < 0, 10, 0)
    body = pc.utf8_slice_codeunits(digits, 0, spec.length - 1)
    return pc.binary_join_element_wise(body, _OVERPUNCH_CHARS.take(pa.array(last)), "")


def _encode_date(spec: FieldSpec, column: pa.Array) -> pa.Array:
    dates = column.cast(pa.date32())
    return pc.strftime(dates, format=_STRFTIME[spec.format]).fill_null("")


def _encode_time(spec: FieldSpec, column: pa.Array) -> pa.Array:
    seconds = _np(column.cast(pa.time32("s")).cast(pa.int32()), 0).astype(np.int64)
    number = seconds // 3600 * 100 + seconds // 60 % 60
    if spec.format == "HHMMSS":
        number = number * 100 + seconds % 60
    return pc.utf8_lpad(pa.array(number).cast(pa.string()), width=spec.length, padding="0")


def _encode_timestamp(spec: FieldSpec, column: pa.Array) -> pa.Array:
    stamps = column.cast(pa.timestamp("us", tz="UTC"))
    micros = _np(stamps.cast(pa.int64()), 0)
    whole = pa.array(micros - micros % _US_PER_S, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    seconds = pc.strftime(whole.cast(pa.timestamp("s", tz="UTC")), format="%Y%m%d%H%M%S")
    fraction = pc.utf8_lpad(pa.array(micros % _US_PER_S).cast(pa.string()), width=6, padding="0")
    return pc.binary_join_element_wise(seconds.fill_null(""), fraction, "")


def _encode_packed(spec: FieldSpec, column: pa.Array) -> pa.Array:
    out = []
    for value in column.to_pylist():
        out.append(" " * spec.length if value is None
                   else packed_encode(value, spec.length).decode("latin-1"))
    return pa.array(out, pa.string())
