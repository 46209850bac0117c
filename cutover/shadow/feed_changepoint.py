"""When a feed change started, and whether it lasted: a change point over the segment's rows.

Only the findings of a report are searched, so this one extra pass over the replayed rows runs
when something was found, never on a clean run. For each finding, the rows of its segment are
taken in time order with a flag "shows the change" (the new value, the over-filled amount or
hour bins, a refused row); the change point is the split that best explains the flags as two
rates (Bernoulli likelihood), and ``first_seen`` is the first flagged row from there on.
A feed change lasts: a burst (a card-testing run of a few minutes, a cross-border spike of
three hours) flags rows in few distinct hours, so ``hours_flagged`` lets the judge tell the two
apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import pyarrow as pa

from cutover.shadow.feed_health import Finding
from cutover.shadow.feed_profile import ALL, HOUR_US, Coder, gap_bins

#: Findings searched for a change point (the strongest first); the rest keep first_seen None.
SEARCHED_MAX: Final = 200
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _flags(f: Finding, codes: dict[str, np.ndarray], quarantined: np.ndarray,
           gaps: np.ndarray | None) -> np.ndarray:
    """Which rows of the batch show the finding's change."""
    kind = f.extra.get("kind")
    wanted = np.array(f.codes, np.int64)
    if kind == "value":
        source = codes["bin_range" if f.field == "bin_range" else f.field]
    elif kind == "format":
        source = codes[f"fmt:{f.field}"]
    elif kind == "amount_shift":
        source = codes["amount"]
    elif kind == "hour_profile":
        source = codes["hour"]
    elif kind == "inter_arrival" and gaps is not None:
        source = gaps
    else:
        return quarantined
    return np.isin(source, wanted)


def _batch_gaps(codes: dict[str, np.ndarray]) -> np.ndarray:
    """Gap bin of each row to the previous row of its merchant within the batch (bin 0 for the
    first: the batch is long enough that the boundary does not matter to a change point)."""
    merchant, us = codes["seg:merchant_id"], codes["ts_us"]
    order = np.lexsort((us, merchant))
    m, t = merchant[order], us[order]
    gaps = np.zeros(len(t), np.int64)
    same = np.zeros(len(t), bool)
    same[1:] = m[1:] == m[:-1]
    gaps[1:] = gap_bins(t[1:] - t[:-1])
    gaps[~same] = -1
    out = np.empty_like(gaps)
    out[order] = gaps
    return out


def change_point(ts_us: np.ndarray, flags: np.ndarray) -> tuple[int | None, int]:
    """(first flagged ts at or after the change point, distinct hours flagged from there)."""
    if not flags.any():
        return None, 0
    order = np.argsort(ts_us, kind="stable")
    t, x = ts_us[order], flags[order].astype(np.float64)
    n = len(x)
    k = np.arange(1, n)  # split before row k
    left = np.cumsum(x)[:-1]
    right = x.sum() - left

    def ll(ones: np.ndarray, size: np.ndarray) -> np.ndarray:
        p = np.clip(ones / size, 1e-12, 1 - 1e-12)
        return ones * np.log(p) + (size - ones) * np.log(1 - p)

    split = 0
    if n > 1:
        gain = ll(left, k) + ll(right, n - k)
        # A change "from a time on" raises the rate after the split.
        gain[right / (n - k) <= left / k] = -np.inf
        if np.isfinite(gain).any():
            split = int(k[int(np.argmax(gain))])
    after = np.flatnonzero(x[split:] > 0) + split
    if not len(after):
        after = np.flatnonzero(x > 0)
    hours = len(np.unique(t[after] // HOUR_US))
    return int(t[after[0]]), hours


def locate(findings: list[Finding], tables: Iterable[tuple[pa.Table, np.ndarray]],
           coder: Coder) -> None:
    """Set ``first_seen`` and ``extra['hours_flagged']`` on the strongest findings, from one
    pass over the replayed rows (tables with each row's quarantined flag)."""
    searched = findings[:SEARCHED_MAX]
    if not searched:
        return
    ts_parts: list[list[np.ndarray]] = [[] for _ in searched]
    flag_parts: list[list[np.ndarray]] = [[] for _ in searched]
    need_gaps = any(f.extra.get("kind") == "inter_arrival" for f in searched)
    for table, quarantined in tables:
        if table.num_rows == 0:
            continue
        codes = coder.encode(table)
        gaps = _batch_gaps(codes) if need_gaps else None
        for i, f in enumerate(searched):
            rows = np.ones(table.num_rows, bool) if f.dimension == ALL else \
                codes[f"seg:{f.dimension}"] == f.seg_code
            if not rows.any():
                continue
            ts_parts[i].append(codes["ts_us"][rows])
            flag_parts[i].append(_flags(f, codes, quarantined, gaps)[rows])
    for i, f in enumerate(searched):
        if not ts_parts[i]:
            continue
        first, hours = change_point(np.concatenate(ts_parts[i]), np.concatenate(flag_parts[i]))
        f.first_seen = None if first is None else iso(first)
        f.extra["hours_flagged"] = hours


def iso(us: int) -> str:
    """UTC ISO text of microseconds since the epoch."""
    return (EPOCH + timedelta(microseconds=us)).isoformat().replace("+00:00", "Z")


def searched(findings: list[Finding]) -> list[dict[str, Any]]:
    """Plain data for report.json of the searched findings (for tests and the bench)."""
    return [f.as_dict() | {"hours_flagged": f.extra.get("hours_flagged")}
            for f in findings[:SEARCHED_MAX]]
