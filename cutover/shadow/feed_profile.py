"""Feed profile of one window: per segment, how each input field's values, formats, amounts,
hours and inter-arrival times are distributed, as integer counts.

A partner's feed breaking (amounts in major units, numeric country codes, a clock in local
time, a truncated BIN, nulls in one channel) shows first in one segment, so everything here is
counted per segment (merchant, merchant country, card country, BIN range, channel, currency,
and a few pairs) and judged later by ``feed_health``. Counting is vectorised: every value is
coded once through a shared ``Codebook`` (so the reference and the replay windows' codes
line up), and each (segment dimension, field) pair is one ``np.bincount`` per batch. Memory
is the number of distinct (segment, code) pairs, not rows.
"""

from __future__ import annotations

import threading
import tomllib
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.domain import CHANNELS, CURRENCY_EXPONENTS
from cutover.paths import fixtures_dir

HOUR_US: Final = 3_600_000_000
SECOND_US: Final = 1_000_000
#: Hours of day counted in buckets of this many hours (24 single hours are too noisy for a
#: 300-row merchant; 3-hour buckets still place a shifted clock).
HOURS_PER_BUCKET: Final = 3
HOUR_BUCKETS: Final = 24 // HOURS_PER_BUCKET
#: log10 of amount_minor, 0..12 in eighth decades: a units switch moves two decades.
AMOUNT_BINS: Final = 96
AMOUNT_DECADES: Final = 12.0
#: log10 of the gap in seconds between a merchant's consecutive rows, -6..8 in quarter decades;
#: bin 0 holds gaps of zero (the same microsecond).
GAP_BINS: Final = 57
GAP_LOG_MIN: Final = -6.0
#: The pseudo-field counting quarantined rows (code 1) and replayable ones (code 0).
QUARANTINE: Final = "quarantine"
ALL: Final = "all"

#: Coded fields whose values are counted (``bin_range`` is derived from ``card_bin``).
CODED: Final = ("mcc", "merchant_country", "currency", "channel", "card_country", "bin_range")
#: Text fields whose format (null, empty, alphabet and length) is counted; the first group is
#: coded per distinct value, the second (one value per card or customer) is measured per row.
FORMAT_CODED: Final = ("merchant_id", "mcc", "card_bin", "card_country", "currency",
                       "merchant_country", "channel")
FORMAT_ROWWISE: Final = ("customer_id", "card_token", "device_hash", "ip_hash")
COLUMNS: Final = ("ts", "amount_minor", *FORMAT_CODED, *FORMAT_ROWWISE)

#: Segment dimensions: single columns and the pairs that matter (a channel within a country,
#: a cross-border corridor).
PAIRS: Final = {"merchant_country×channel": ("merchant_country", "channel"),
                "card_country×merchant_country": ("card_country", "merchant_country"),
                "currency×channel": ("currency", "channel")}
DIMENSIONS: Final = (ALL, "merchant_id", "merchant_country", "card_country", "bin_range",
                     "channel", "currency", *PAIRS)
_MERCHANT_SIDE: Final = ("mcc", "merchant_country", "currency", "channel")
#: Which coded fields are judged within which dimension. A segment is judged only on fields of
#: its own side: a merchant's card countries move with fraud attacks and travel (real
#: behaviour), while its country, currency and MCC are properties of the merchant's feed.
#: Card-side segments (card country, BIN range) are judged on formats, amounts stay out.
VALUE_FIELDS: Final = {
    ALL: CODED, "merchant_id": _MERCHANT_SIDE, "merchant_country": ("mcc", "currency", "channel"),
    "currency": ("merchant_country", "channel"), "channel": ("currency", "merchant_country"),
}
#: Card-side fields judged within a merchant for values never seen there only (a sentinel or
#: a recoded country), never for shares.
NEW_ONLY: Final = {"merchant_id": ("card_country", "bin_range")}
#: Dimensions whose amounts, hours of day and inter-arrival times are judged.
AMOUNT_DIMS: Final = (ALL, "merchant_id", "merchant_country", "card_country", "bin_range",
                      "currency", "channel", "merchant_country×channel", "currency×channel")
HOUR_DIMS: Final = (ALL, "merchant_id", "merchant_country", "currency", "channel")
GAP_DIMS: Final = ("merchant_id",)
FORMAT_FIELDS: Final = (*FORMAT_CODED, *FORMAT_ROWWISE, "ts")
#: Format codes kept apart in a row's signature (six bits per field, six fields per half).
SIGNATURE_CODE_MAX: Final = 63
assert len(FORMAT_FIELDS) == 12, "a signature half holds six fields of six bits"


def value_format(value: str | None) -> str:
    """The format of one text value: ``null``, ``empty``, or its alphabet and length
    (``A`` upper, ``a`` lower, ``9`` digit, ``#`` other): "US" -> "A:2", "840" -> "9:3"."""
    if value is None:
        return "null"
    if value == "":
        return "empty"
    kinds = {"9" if c.isdigit() else "A" if c.isupper() else "a" if c.islower() else "#"
             for c in value}
    return f"{''.join(sorted(kinds))}:{len(value)}"


class Codebook:
    """Values to dense integer codes, shared by every window; thread-safe, grows only."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._index: dict[Any, int] = {}
        self._lock = threading.Lock()
        #: The non-null values as an Arrow array, and their codes, for ``codes_of``.
        self._known: pa.Array | None = None
        self._known_codes = np.zeros(0, np.int64)

    def code(self, value: Any) -> int:
        """The code of one value (a new code for a value never seen)."""
        with self._lock:
            found = self._index.get(value)
            if found is None:
                found = self._index[value] = len(self.values)
                self.values.append(value)
            return found

    def codes(self, values: list[Any]) -> np.ndarray:
        """Codes of a (small) list of distinct values."""
        return np.fromiter((self.code(v) for v in values), np.int64, len(values))

    def codes_of(self, values: pa.Array) -> np.ndarray:
        """Codes of distinct Arrow values: a hash lookup of the known ones in C, Python only
        for values never seen (so a warm codebook costs one kernel per batch)."""
        known = self._known
        found = pc.index_in(values, value_set=known) if known is not None else \
            pa.nulls(len(values), pa.int32())
        out = found.to_numpy(zero_copy_only=False)
        out = np.where(np.isnan(out), -1, out).astype(np.int64) if found.null_count \
            else out.astype(np.int64)
        missing = np.flatnonzero(out < 0)
        if len(missing):
            news = values.take(pa.array(missing)).to_pylist()
            out[missing] = self.codes(news)
            with self._lock:
                self._known = pa.array([v for v in self.values if v is not None], values.type)
                self._known_codes = np.array([i for i, v in enumerate(self.values)
                                              if v is not None], np.int64)
            return out
        return self._known_codes[out] if len(out) else out

    def __len__(self) -> int:
        return len(self.values)


def _encode(column: pa.Array | pa.ChunkedArray, book: Codebook) -> np.ndarray:
    """The codebook code of every row (None for nulls), via the batch's own dictionary."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column)
    lut = np.append(book.codes_of(encoded.dictionary), book.code(None))
    index = pc.fill_null(encoded.indices, len(encoded.dictionary))
    return lut[index.to_numpy(zero_copy_only=False).astype(np.int64)]


class Coder:
    """Every code the profile counts, for one batch of traffic rows; shared across windows."""

    def __init__(self) -> None:
        self.books = {name: Codebook() for name in (*FORMAT_CODED, "bin_range")}
        self.formats = {name: Codebook() for name in FORMAT_FIELDS}
        self.pairs = {name: Codebook() for name in PAIRS}
        #: Distinct combinations of the fields' format codes seen in any row.
        self.signatures = Codebook()
        #: Per coded field: the format code of each value code, and per card_bin code its range.
        self._format_of = {name: np.zeros(0, np.int64) for name in FORMAT_CODED}
        self._range_of = np.zeros(0, np.int64)
        self._ranges = _bin_ranges()
        self._lock = threading.Lock()

    def _lookup(self, name: str) -> np.ndarray:
        """The format code of every value code of ``name`` (extended for new values)."""
        with self._lock:
            book, known = self.books[name], self._format_of[name]
            if len(known) < len(book):
                extra = [self.formats[name].code(value_format(v)) for v in book.values[len(known):]]
                self._format_of[name] = known = np.append(known, np.array(extra, np.int64))
            return known

    def _range_lookup(self) -> np.ndarray:
        with self._lock:
            book, known = self.books["card_bin"], self._range_of
            if len(known) < len(book):
                extra = [self.books["bin_range"].code(self._ranges(v))
                         for v in book.values[len(known):]]
                self._range_of = known = np.append(known, np.array(extra, np.int64))
            return known

    def encode(self, table: pa.Table) -> dict[str, np.ndarray]:
        """Per field: the value code (coded fields), ``fmt:<field>`` format codes, ``seg:<dim>``
        segment codes, and ``amount``, ``hour`` bins of every row. Columns the table lacks
        are skipped (the change-point pass reads only what its findings need)."""
        out: dict[str, np.ndarray] = {}
        have = set(table.column_names)
        for name in (n for n in FORMAT_CODED if n in have):
            out[name] = _encode(table[name], self.books[name])
            out[f"fmt:{name}"] = self._lookup(name)[out[name]]
        if "card_bin" in out:
            out["bin_range"] = self._range_lookup()[out["card_bin"]]
        for name in (n for n in FORMAT_ROWWISE if n in have):
            out[f"fmt:{name}"] = self._rowwise_format(table[name], name)
        us = pc.cast(table["ts"], pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64)
        out["ts_us"] = us
        out["fmt:ts"] = self._ts_format(us)
        out["hour"] = (us // HOUR_US) % 24 // HOURS_PER_BUCKET
        if "amount_minor" in have:
            out["amount"] = amount_bins(table["amount_minor"])
        out[f"seg:{ALL}"] = np.zeros(table.num_rows, np.int64)
        for dim in DIMENSIONS[1:]:
            if dim in PAIRS:
                left, right = PAIRS[dim]
                if left in out and right in out:
                    out[f"seg:{dim}"] = self._pair(dim, out[left], out[right])
            elif dim in out:
                out[f"seg:{dim}"] = out[dim]
        return out

    def signature(self, codes: dict[str, np.ndarray]) -> np.ndarray:
        """One code per row for the formats of all FORMAT_FIELDS together (format codes past
        SIGNATURE_CODE_MAX share the last one)."""
        halves = []
        half = len(FORMAT_FIELDS) // 2
        for part in (FORMAT_FIELDS[:half], FORMAT_FIELDS[half:]):
            key = np.zeros(len(codes["ts_us"]), np.int64)
            for name in part:
                key = key * 64 + np.minimum(codes[f"fmt:{name}"], SIGNATURE_CODE_MAX)
            halves.append(key)
        first = pc.dictionary_encode(pa.array(halves[0]))
        second = pc.dictionary_encode(pa.array(halves[1]))
        n2 = len(second.dictionary)
        local = first.indices.to_numpy().astype(np.int64) * n2 + \
            second.indices.to_numpy().astype(np.int64)
        combined = pc.dictionary_encode(pa.array(local))
        keys = combined.dictionary.to_numpy()
        h1 = first.dictionary.to_numpy()[keys // n2]
        h2 = second.dictionary.to_numpy()[keys % n2]
        lut = self.signatures.codes([(int(a), int(b)) for a, b in zip(h1, h2, strict=True)])
        return lut[combined.indices.to_numpy().astype(np.int64)]

    def signature_table(self) -> np.ndarray:
        """(signatures, fields): the format code of each field in each signature."""
        out = np.zeros((len(self.signatures), len(FORMAT_FIELDS)), np.int64)
        half = len(FORMAT_FIELDS) // 2
        for row, keys in enumerate(self.signatures.values):
            for h, key in enumerate(keys):
                for i in range(half - 1, -1, -1):
                    out[row, h * half + i] = key % 64
                    key //= 64
        return out

    def _pair(self, dim: str, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        key = pa.array(left * (1 << 31) + right)
        encoded = pc.dictionary_encode(key)
        lut = self.pairs[dim].codes_of(encoded.dictionary)
        return lut[encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)]

    def _rowwise_format(self, column: pa.ChunkedArray | pa.Array, name: str) -> np.ndarray:
        """null / empty / digits or text with its length, from the offsets (no Python per row)."""
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        column = column.cast(pa.string())
        offsets = np.frombuffer(column.buffers()[1], np.int32)[column.offset:
                                                                column.offset + len(column) + 1]
        length = np.minimum(np.diff(offsets).astype(np.int64), 99)
        digits = np.asarray(pc.fill_null(pc.utf8_is_digit(column), False)
                            .to_numpy(zero_copy_only=False), dtype=bool)
        code = np.where(digits, 100, 200) + length
        code[length == 0] = 0
        if column.null_count:
            code[~np.asarray(column.is_valid().to_numpy(zero_copy_only=False), bool)] = 1
        uniques = np.flatnonzero(np.bincount(code, minlength=300))
        lut = np.zeros(300, np.int64)
        lut[uniques] = self.formats[name].codes([_rowwise_name(int(u)) for u in uniques])
        return lut[code]

    def _ts_format(self, us: np.ndarray) -> np.ndarray:
        """The clock's precision: microseconds, whole seconds, minutes, hours or days."""
        code = np.zeros(len(us), np.int64)
        for level, unit_us in enumerate((SECOND_US, 60 * SECOND_US, HOUR_US, 24 * HOUR_US), 1):
            code[us % unit_us == 0] = level
        lut = self.formats["ts"].codes(["microsecond", "whole second", "whole minute",
                                        "whole hour", "midnight"])
        return lut[code]


def _rowwise_name(code: int) -> str:
    if code == 0:
        return "empty"
    if code == 1:
        return "null"
    return f"{'9' if code < 200 else 'text'}:{code % 100}"


def _bin_ranges() -> Any:
    """card_bin -> its issuing range in fixtures/bins.toml ("other" when it is in none)."""
    ranges = tomllib.loads((fixtures_dir() / "bins.toml").read_text("utf-8"))["ranges"]
    starts = np.array([int(r["start"]) for r in ranges])
    ends = np.array([int(r["end"]) for r in ranges])

    def lookup(card_bin: str | None) -> str:
        if card_bin is None or len(card_bin) != 6 or not card_bin.isdigit():
            return "other"
        value = int(card_bin)
        i = int(np.searchsorted(starts, value, side="right")) - 1
        return f"{starts[i]}-{ends[i]}" if i >= 0 and value <= ends[i] else "other"
    return lookup


def amount_bins(amount: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """log10(amount_minor) bins; amounts below 1 (refused anyway) land in bin 0."""
    values = pc.fill_null(amount, 1).to_numpy(zero_copy_only=False).astype(np.float64)
    logs = np.log10(np.maximum(values, 1.0)) * (AMOUNT_BINS / AMOUNT_DECADES)
    return np.clip(logs.astype(np.int64), 0, AMOUNT_BINS - 1)


def known_currency_or_channel(table: pa.Table) -> np.ndarray:
    """Rows replay would not refuse for an unknown currency or channel (a cheap proxy of
    ``store.quarantine`` for a reference window, whose quarantine was never recorded)."""
    currency = pc.is_in(table["currency"], value_set=pa.array(sorted(CURRENCY_EXPONENTS)))
    channel = pc.is_in(table["channel"], value_set=pa.array(list(CHANNELS)))
    ok = pc.and_(pc.fill_null(currency, False), pc.fill_null(channel, False))
    return np.asarray(ok.to_numpy(zero_copy_only=False), bool)


class Counts:
    """A growing (segment, code) count matrix."""

    def __init__(self, width: int = 0) -> None:
        self.fixed = width > 0
        self.matrix = np.zeros((0, width), np.int64)

    def add(self, segment: np.ndarray, code: np.ndarray, segments: int, codes: int,
            weights: np.ndarray | None = None) -> None:
        """Count rows by (segment, code); ``segments``/``codes`` bound the codes seen so far."""
        rows, width = self.matrix.shape
        if segments > rows or (not self.fixed and codes > width):
            grown = np.zeros((max(rows, segments), width if self.fixed else max(width, codes)),
                             np.int64)
            grown[:rows, :width] = self.matrix
            self.matrix = grown
        rows, width = self.matrix.shape
        flat = np.bincount(segment * width + code, weights=weights, minlength=rows * width)
        self.matrix += flat.astype(np.int64).reshape(rows, width)


@dataclass
class _Carry:
    """The last timestamp of each merchant, carried across batches for inter-arrival gaps."""

    last_us: np.ndarray


class Profile:
    """All counts of one window (reference or replay)."""

    def __init__(self, coder: Coder) -> None:
        self.coder = coder
        self.rows = 0
        self.values = {(d, f): Counts() for table in (VALUE_FIELDS, NEW_ONLY)
                       for d, fields in table.items() for f in fields}
        #: Per dimension, counts by (segment, format signature): the formats of all fields of a
        #: row as one code, so one bincount per dimension instead of one per field.
        self.signatures = {d: Counts() for d in DIMENSIONS}
        self.amount = {d: Counts(AMOUNT_BINS) for d in AMOUNT_DIMS}
        self.hour = {d: Counts(HOUR_BUCKETS) for d in HOUR_DIMS}
        self.gap = {d: Counts(GAP_BINS) for d in GAP_DIMS}
        self.quarantine = {d: Counts(2) for d in DIMENSIONS}
        self._carry = _Carry(np.zeros(0, np.int64))
        #: The window's first and last ts (microseconds): its span, for rates per hour.
        self.ts_min_us: int | None = None
        self.ts_max_us: int | None = None

    @property
    def span_us(self) -> int:
        """Microseconds between the window's first and last row (at least one hour)."""
        if self.ts_min_us is None or self.ts_max_us is None:
            return HOUR_US
        return max(self.ts_max_us - self.ts_min_us, HOUR_US)

    def segments(self, dim: str) -> int:
        """How many segment codes ``dim`` has so far."""
        if dim == ALL:
            return 1
        return len(self.coder.pairs[dim]) if dim in PAIRS else len(self.coder.books[dim])

    def add(self, table: pa.Table, quarantined: np.ndarray | None = None) -> None:
        """Fold one batch of TRAFFIC rows (``quarantined``: rows replay refused)."""
        if table.num_rows == 0:
            return
        self.rows += table.num_rows
        codes = self.coder.encode(table)
        low, high = int(codes["ts_us"].min()), int(codes["ts_us"].max())
        self.ts_min_us = low if self.ts_min_us is None else min(self.ts_min_us, low)
        self.ts_max_us = high if self.ts_max_us is None else max(self.ts_max_us, high)
        sizes = {d: self.segments(d) for d in DIMENSIONS}
        for (dim, name), counts in self.values.items():
            counts.add(codes[f"seg:{dim}"], codes[name], sizes[dim], len(self.coder.books[name]))
        signature = self.coder.signature(codes)
        for dim, counts in self.signatures.items():
            counts.add(codes[f"seg:{dim}"], signature, sizes[dim], len(self.coder.signatures))
        for dim, counts in self.amount.items():
            counts.add(codes[f"seg:{dim}"], codes["amount"], sizes[dim], AMOUNT_BINS)
        for dim, counts in self.hour.items():
            counts.add(codes[f"seg:{dim}"], codes["hour"], sizes[dim], HOUR_BUCKETS)
        if quarantined is None:
            quarantined = ~known_currency_or_channel(table)
        for dim, counts in self.quarantine.items():
            counts.add(codes[f"seg:{dim}"], quarantined.astype(np.int64), sizes[dim], 2)
        self._gaps(codes, sizes["merchant_id"])

    @property
    def formats(self) -> dict[tuple[str, str], Counts]:
        """Per (dimension, field): counts by (segment, format code), expanded from signatures."""
        table = self.coder.signature_table()
        out = {}
        for dim, counts in self.signatures.items():
            sig = counts.matrix
            rows = sig.shape[0]
            for i, name in enumerate(FORMAT_FIELDS):
                width = len(self.coder.formats[name])
                onehot = np.zeros((sig.shape[1], width), np.int64)
                onehot[np.arange(sig.shape[1]), table[:sig.shape[1], i]] = 1
                expanded = Counts()
                expanded.matrix = sig @ onehot if rows else np.zeros((0, width), np.int64)
                out[(dim, name)] = expanded
        return out

    def _gaps(self, codes: dict[str, np.ndarray], merchants: int) -> None:
        """Gaps between each merchant's consecutive rows (the previous batch's last row too)."""
        merchant, us = codes["seg:merchant_id"], codes["ts_us"]
        if len(self._carry.last_us) < merchants:
            self._carry.last_us = np.append(self._carry.last_us, np.full(
                merchants - len(self._carry.last_us), -1, np.int64))
        order = np.lexsort((us, merchant))
        m, t = merchant[order], us[order]
        previous = np.empty_like(t)
        previous[1:] = t[:-1]
        first = np.ones(len(m), bool)
        first[1:] = m[1:] != m[:-1]
        previous[first] = self._carry.last_us[m[first]]
        last = np.ones(len(m), bool)
        last[:-1] = first[1:]
        self._carry.last_us[m[last]] = t[last]
        known = previous >= 0
        self.gap["merchant_id"].add(m[known], gap_bins(t[known] - previous[known]), merchants,
                                    GAP_BINS)


def gap_bins(gap_us: np.ndarray) -> np.ndarray:
    """Bin 0: no gap (the same microsecond or out of order); then quarter decades of seconds."""
    seconds = np.maximum(gap_us, 1) / SECOND_US
    bins = ((np.log10(seconds) - GAP_LOG_MIN) * 4).astype(np.int64) + 1
    bins = np.clip(bins, 1, GAP_BINS - 1)
    bins[gap_us <= 0] = 0
    return bins
