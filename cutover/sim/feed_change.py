"""Feed changes for rehearsal: a partner feed breaking in one segment from a time on.

A scenario file (``cutover/fixtures/feed_changes/*.toml``) says what breaks (amounts in major
units, numeric country codes, a clock in local time, a sentinel, nulls, truncation, swapped
fields, a new enum value, a coarser clock), in which segment (a named value, the n-th largest,
or the one with about N rows) and from when (a share of the window). ``apply_change`` rewrites
only the request fields of the affected rows: the recorded legacy outcome stays as the core
booked it, which is what a replay sees when the feed to the new stack broke and the old one
did not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from cutover.config import StrictModel, config_model, load
from cutover.domain import TS
from cutover.errors import InputError
from cutover.paths import fixtures_dir

HOUR_US: Final = 3_600_000_000
TEXT_FIELDS: Final = ("merchant_id", "mcc", "card_bin", "card_country", "currency",
                      "merchant_country", "channel", "device_hash", "ip_hash", "customer_id")
FIELDS: Final = (*TEXT_FIELDS, "amount_minor", "ts")
#: ISO 3166 / 4217 numeric codes of the simulated world's countries and currencies.
ISO_NUMERIC: Final = {
    "US": "840", "CA": "124", "GB": "826", "DE": "276", "FR": "250", "NL": "528", "ES": "724",
    "IT": "380", "IE": "372", "JP": "392", "SG": "702", "AU": "036", "BR": "076", "MX": "484",
    "NG": "566", "AE": "784", "BH": "048", "CH": "756", "USD": "840", "CAD": "124", "GBP": "826",
    "EUR": "978", "JPY": "392", "SGD": "702", "AUD": "036", "BRL": "986", "MXN": "484",
    "NGN": "566", "AED": "784", "BHD": "048", "CHF": "756"}
TIME_UNITS_US: Final = {"second": 1_000_000, "minute": 60_000_000, "hour": HOUR_US,
                        "day": 24 * HOUR_US}


class Segment(StrictModel):
    """Which rows break: those of one value of ``column``, chosen by value, rank or size."""

    column: Literal["merchant_id", "merchant_country", "card_country", "channel", "currency",
                    "mcc"]
    value: str | None = Field(None, description="The value of `column` whose rows break.")
    rank: int | None = Field(None, ge=1, le=10_000,
                             description="Or: the value with the rank-th most rows (1 = most).")
    rows: int | None = Field(None, ge=1, description="Or: the value whose rows in the window "
                             "are closest to this.")

    @model_validator(mode="after")
    def _one_way(self) -> Segment:
        if sum(x is not None for x in (self.value, self.rank, self.rows)) != 1:
            raise ValueError("give exactly one of value, rank, rows")
        return self


@config_model("feed_change", "cutover/fixtures/feed_changes/*.toml")
class FeedChange(StrictModel):
    """One feed change: what happens to ``field`` in ``segment`` from ``start`` on."""

    name: str = Field(description="Short name, used in bench output and run folders.")
    description: str = Field("", description="What the change stands for.")
    kind: Literal["divide", "recode", "shift_time", "set_value", "set_null", "truncate", "swap",
                  "round_time"] = Field(description="What happens to `field`.")
    field: Literal[FIELDS] = Field(  # type: ignore[valid-type]
        description="The request field that changes.")
    segment: Segment
    start: float = Field(0.5, ge=0.0, lt=1.0, description="Share of the window (by time) "
                         "after which rows change: 0.5 = from the middle on.")
    share: float = Field(1.0, gt=0.0, le=1.0, description="Share of the segment's rows from "
                         "`start` on that change (null spikes, new values).")
    divisor: int | None = Field(None, ge=2, description="divide: amounts divided by this.")
    hours: int | None = Field(None, ge=-23, le=23, description="shift_time: hours added.")
    value: str | None = Field(None, description="set_value: the value written.")
    length: int | None = Field(None, ge=0, description="truncate: characters kept.")
    other: Literal[TEXT_FIELDS] | None = Field(  # type: ignore[valid-type]
        None, description="swap: the field swapped with `field`.")
    unit: Literal["second", "minute", "hour", "day"] | None = Field(
        None, description="round_time: the clock's new precision.")
    seed: int = Field(0, description="Seed of the random choice of rows when `share` < 1.")


def load_change(path: Path) -> FeedChange:
    """A scenario file, validated (ConfigError naming the file and key)."""
    return load(FeedChange, Path(path))


def shipped_changes() -> list[Path]:
    """The scenario files shipped with cutover."""
    return sorted((fixtures_dir() / "feed_changes").glob("*.toml"))


def pick_segment(table: pa.Table, segment: Segment) -> str:
    """The value of ``segment.column`` the change applies to."""
    if segment.value is not None:
        return segment.value
    counts = pc.value_counts(table[segment.column])
    values = counts.field("values").to_pylist()
    n = np.array(counts.field("counts").to_pylist())
    if not len(values):
        raise InputError(f"no rows to pick a {segment.column} from")
    order = np.lexsort((np.array(values, dtype=object).astype(str), -n))
    if segment.rank is not None:
        if segment.rank > len(values):
            raise InputError(f"rank {segment.rank}: only {len(values)} values of "
                             f"{segment.column}")
        return str(values[order[segment.rank - 1]])
    assert segment.rows is not None
    closest = np.lexsort((np.array(values, dtype=object).astype(str),
                          np.abs(n - segment.rows)))
    return str(values[closest[0]])


def affected_rows(table: pa.Table, change: FeedChange, since_us: int | None = None) -> tuple[
        np.ndarray, str, int]:
    """(mask of the rows that change, the segment value, the start in microseconds)."""
    us = pc.cast(table["ts"], pa.int64()).to_numpy(zero_copy_only=False)
    low = int(us.min()) if since_us is None else since_us
    window = us >= low
    value = pick_segment(table.filter(pa.array(window)), change.segment)
    start_us = low + int((int(us.max()) - low) * change.start)
    mask = window & (us >= start_us) & np.asarray(
        pc.fill_null(pc.equal(table[change.segment.column], value), False), bool)
    if change.share < 1.0:
        rng = np.random.default_rng(change.seed)
        mask &= rng.random(len(mask)) < change.share
    return mask, value, start_us


def apply_change(table: pa.Table, change: FeedChange,
                 since_us: int | None = None) -> tuple[pa.Table, dict[str, object]]:
    """``table`` with the change applied to its affected rows, and what was done (field,
    segment, first changed time, rows changed)."""
    mask, value, start_us = affected_rows(table, change, since_us)
    hit = pa.array(mask)
    out = _rewrite(table, change, hit)
    changed = np.flatnonzero(mask)
    first = int(pc.cast(table["ts"], pa.int64()).to_numpy()[changed].min()) if len(changed) \
        else None
    return out, {"name": change.name, "field": change.field,
                 "segment": f"{change.segment.column}={value}", "rows": int(mask.sum()),
                 "start_us": start_us, "first_us": first}


def _set(table: pa.Table, name: str, values: pa.Array | pa.ChunkedArray) -> pa.Table:
    return table.set_column(table.column_names.index(name), name,
                            values.cast(table.schema.field(name).type))


def _rewrite(table: pa.Table, c: FeedChange, hit: pa.Array) -> pa.Table:
    col = table[c.field]
    if c.kind == "divide":
        new = pc.max_element_wise(pc.divide(col, c.divisor or 100), 1)
    elif c.kind == "recode":
        text = col.to_pylist()
        new = pa.array([ISO_NUMERIC.get(v, v) if v is not None else None for v in text])
    elif c.kind == "shift_time":
        new = pc.cast(pc.add(pc.cast(col, pa.int64()), (c.hours or 0) * HOUR_US), TS)
    elif c.kind == "round_time":
        unit = TIME_UNITS_US[c.unit or "minute"]
        raw = pc.cast(col, pa.int64())
        new = pc.cast(pc.multiply(pc.divide(raw, unit), unit), TS)
    elif c.kind == "set_value":
        new = pa.array([c.value] * len(col), pa.string()) if c.field != "amount_minor" \
            else pa.array([int(c.value or 0)] * len(col), pa.int64())
    elif c.kind == "set_null":
        new = pa.nulls(len(col), table.schema.field(c.field).type)
    elif c.kind == "truncate":
        new = pc.utf8_slice_codeunits(col, 0, c.length or 0)
    else:  # swap
        other = c.other or c.field
        swapped = _set(table, other, pc.if_else(hit, col, table[other]))
        return _set(swapped, c.field, pc.if_else(hit, table[other], col))
    return _set(table, c.field, pc.if_else(hit, new, col))
