"""Narrowing a replay: a time window, one merchant, a deterministic sample, a row limit.

The sample is decided by a hash of ``txn_id`` alone, so the same transaction is in or out of
every run with the same fraction, whatever the batch size, the resume point or the machine.
The hash is computed over Arrow's string buffers with numpy (no per-row Python).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from cutover.domain import TS
from cutover.errors import InputError

_FNV_OFFSET: Final = np.uint64(0xCBF29CE484222325)
_MIX_1: Final = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2: Final = np.uint64(0x94D049BB133111EB)
_TWO_64: Final = float(2**64)
_BASE: Final = np.uint64(0x100000001B3)


def parse_when(text: str | datetime | date | None, option: str = "--since") -> datetime | None:
    """An ISO date or datetime as an aware UTC datetime (a naive value is taken as UTC)."""
    if text is None:
        return None
    if isinstance(text, datetime):
        value = text
    elif isinstance(text, date):
        value = datetime(text.year, text.month, text.day)
    else:
        try:
            value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"{option} {text!r}: expected an ISO date (2026-10-01) or datetime"
                             " (2026-10-01T12:00:00Z)") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def txn_hash(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash per string (polynomial over the bytes, then a splitmix finaliser)."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    array = pc.fill_null(array.cast(pa.large_string()), "")
    n = len(array)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    offsets_buf, data_buf = array.buffers()[1], array.buffers()[2]
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[array.offset: array.offset + n + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    sums = np.zeros(n, dtype=np.uint64)
    # Horner's rule over byte positions, one vector step per position for all strings of one
    # length: ids share a few lengths, so this is a few dozen numpy steps, not one per row.
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        if length == 0:
            continue
        firsts = offsets[rows]
        acc = np.zeros(len(rows), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(int(length)):
                acc = acc * _BASE + data[firsts + j]
        sums[rows] = acc
    with np.errstate(over="ignore"):
        h = sums ^ _FNV_OFFSET ^ lengths.astype(np.uint64)
        h = (h ^ (h >> np.uint64(30))) * _MIX_1
        h = (h ^ (h >> np.uint64(27))) * _MIX_2
        return h ^ (h >> np.uint64(31))


def hash_fraction(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Each string's hash as a number in [0, 1)."""
    return txn_hash(values).astype(np.float64) / _TWO_64


@dataclass(frozen=True)
class Narrowing:
    """Which rows of the store a replay covers (all of them when every field is None)."""

    since: datetime | None = None
    until: datetime | None = None
    merchant: str | None = None
    sample: float | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.sample is not None and not 0.0 < self.sample <= 1.0:
            raise InputError(f"--sample {self.sample}: a fraction in (0, 1]")
        if self.limit is not None and self.limit <= 0:
            raise InputError(f"--limit {self.limit}: must be a positive number of rows")
        if self.since and self.until and self.since >= self.until:
            raise InputError(f"--since {self.since.isoformat()} is not before --until"
                             f" {self.until.isoformat()}")

    def expression(self) -> ds.Expression | None:
        """The filter the Parquet reader can push down (time window and merchant)."""
        parts = []
        if self.since is not None:
            parts.append(ds.field("ts") >= pa.scalar(self.since, TS))
        if self.until is not None:
            parts.append(ds.field("ts") < pa.scalar(self.until, TS))
        if self.merchant is not None:
            parts.append(ds.field("merchant_id") == self.merchant)
        expr = None
        for part in parts:
            expr = part if expr is None else expr & part
        return expr

    def keep(self, table: pa.Table) -> pa.Table:
        """Apply every filter to a table that was read without pushdown."""
        expr = self.expression()
        if expr is not None:
            table = table.filter(expr)
        return self.keep_sample(table)

    def keep_sample(self, table: pa.Table) -> pa.Table:
        """Apply the sample (it cannot be pushed down to the reader: it hashes txn_id)."""
        if self.sample is not None and self.sample < 1.0 and table.num_rows:
            table = table.filter(pa.array(hash_fraction(table["txn_id"]) < self.sample))
        return table

    def as_dict(self) -> dict[str, Any]:
        """Plain data for run.json."""
        out = asdict(self)
        for key in ("since", "until"):
            out[key] = out[key].isoformat() if out[key] else None
        return out
