"""The ``feed_health`` section of report.json: findings per field and segment, each with the
time it was first seen.

The profiles are folded while the replay runs (``DriftState``); this module judges them
(``feed_health.find``) and, only when something was found, reads the replayed rows once more to
place each finding in time (``feed_changepoint.locate``). A finding whose flagged rows sit in
fewer than ``SPREAD_HOURS_MIN`` distinct hours is a burst (a card-testing run, a three-hour
cross-border spike), not a feed that changed from a time on: it stays in the report, marked,
and the gate does not judge it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from cutover.domain import TRAFFIC, TS
from cutover.shadow.drift import _between
from cutover.shadow.feed_changepoint import SEARCHED_MAX, locate
from cutover.shadow.feed_health import REPORT_FDR, Finding, find
from cutover.shadow.feed_profile import COLUMNS, PAIRS
from cutover.store.filters import Narrowing, parse_when
from cutover.store.quarantine import quarantine_reasons
from cutover.store.stream import iter_input
from cutover.store.traffic import store_files

SPREAD_HOURS_MIN: Final = 8
#: Flagged rows per flagged hour, over the segment's rows per hour, above which it is a burst.
BURST_DENSITY_MAX: Final = 5.0
READ_BATCH_ROWS: Final = 262_144
SECTION_VERSION: Final = 1


def _replayed(run: dict[str, Any], split: Any, refusals: bool, only: Any = None,
              columns: list[str] | None = None) -> Iterator[tuple[pa.Table, np.ndarray]]:
    """The replayed rows again, with each row's quarantine. Without a sample, limit or
    merchant narrowing (the usual run) only the profile's columns of the window are scanned;
    the refusals are recomputed from every column only when a quarantine finding needs them."""
    n = run.get("narrowing") or {}
    narrowing = Narrowing(parse_when(n.get("since")), parse_when(n.get("until"), "--until"),
                          n.get("merchant"), n.get("sample"), n.get("limit"))
    since = max([t for t in (narrowing.since, split) if t is not None], default=None)
    if refusals or narrowing.merchant or narrowing.sample or narrowing.limit:
        tables: Iterator[pa.Table] = iter_input(Path(run["store"]), narrowing, READ_BATCH_ROWS)
    else:
        tables = _window(Path(run["store"]), since, narrowing.until, only,
                         columns or list(COLUMNS))
    for table in tables:
        if split is not None:
            table = table.filter(pc.fill_null(pc.greater_equal(
                table["ts"], pa.scalar(split, TS)), False))
        yield table, _refused(table) if refusals else np.zeros(table.num_rows, bool)


def _refused(table: pa.Table) -> np.ndarray:
    return np.asarray(pc.is_valid(quarantine_reasons(table)).to_numpy(zero_copy_only=False),
                      bool)


def segments_filter(findings: list[Finding]) -> Any:
    """A dataset filter for the rows of the findings' segments, or None when one of them cannot
    be pushed down (all rows, a BIN range): then every row of the window is read."""
    expr = None
    for f in findings:
        if f.dimension in PAIRS:
            left, right = PAIRS[f.dimension]
            a, b = f.segment.split("×", 1)
            part = (ds.field(left) == a) & (ds.field(right) == b)
        elif f.dimension in ("all", "bin_range") or f.segment == "<null>":
            return None
        else:
            part = ds.field(f.dimension) == f.segment
        expr = part if expr is None else expr | part
    return expr


def needed_columns(findings: list[Finding]) -> list[str]:
    """The columns the change-point pass needs for ``findings`` (segments and fields)."""
    wanted = {"ts"}
    for f in findings:
        wanted.update(PAIRS.get(f.dimension, (f.dimension,)))
        kind = f.extra.get("kind")
        if kind in ("value", "format"):
            wanted.add(f.field)
        elif kind == "amount_shift":
            wanted.add("amount_minor")
        elif kind == "inter_arrival":
            wanted.add("merchant_id")
    wanted = {"card_bin" if c == "bin_range" else c for c in wanted} - {"all"}
    return [c for c in COLUMNS if c in wanted]


def _window(store: Path, since: Any, until: Any, only: Any,
            columns: list[str]) -> Iterator[pa.Table]:
    """The profile's columns of the rows in [since, until) (and of ``only``'s segments),
    scanned with the filter pushed down."""
    files = [str(f) for f in store_files(store)]
    if not files:
        return
    dataset = ds.dataset(files, schema=TRAFFIC, format="parquet")
    expr = _between(since, until)
    if only is not None:
        expr = only if expr is None else expr & only
    for batch in dataset.to_batches(columns=columns, filter=expr,
                                    batch_size=READ_BATCH_ROWS):
        yield pa.Table.from_batches([batch])


def _gated(f: Finding, span_h: float) -> bool:
    """Judged by a gate unless a burst: its flagged rows sit in few distinct hours, or come
    far denser per flagged hour than the segment's own traffic (three card-testing runs at a
    40-row merchant: 25 rows in 8 hours against 0.15 rows an hour)."""
    hours = f.extra.get("hours_flagged")
    if hours is None:
        return True
    per_hour = f.rows_replay / max(span_h, 1.0)
    density = f.rows_affected / max(hours, 1) / max(per_hour, 1e-9)
    return hours >= SPREAD_HOURS_MIN and density <= BURST_DENSITY_MAX


def feed_section(drift: Any, reference: Any, run: dict[str, Any] | None) -> dict[str, Any]:
    """The section from the folded ``DriftState`` and the scanned reference ``Window``."""
    plan = drift.plan
    ref = drift.head if plan.split is not None else reference
    if plan.kind == "none" or ref is None or ref.feed is None or drift.replay.feed is None:
        return {"version": SECTION_VERSION, "findings": [],
                "note": "no reference window: feed health not computed"}
    findings = find(ref.feed, drift.replay.feed)
    if findings and run and run.get("store"):
        refusals = any(f.metric == "quarantine_rate" for f in findings)
        searched = findings[:SEARCHED_MAX]
        locate(findings, _replayed(run, plan.split, refusals, segments_filter(searched),
                                   needed_columns(searched)), plan.coder)
    rows = []
    for f in findings:
        row = f.as_dict()
        row["hours_flagged"] = f.extra.get("hours_flagged")
        row["gated"] = _gated(f, drift.replay.feed.span_us / 3_600_000_000)
        rows.append(row)
    return {"version": SECTION_VERSION,
            "reference": {"kind": plan.kind, "from": plan.ref_from.isoformat(),
                          "until": plan.ref_until.isoformat()},
            "rows": {"reference": ref.feed.rows, "replay": drift.replay.feed.rows},
            "fdr": REPORT_FDR, "spread_hours_min": SPREAD_HOURS_MIN,
            "located_max": SEARCHED_MAX, "findings": rows}
