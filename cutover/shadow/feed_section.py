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

from cutover.domain import TS
from cutover.shadow.feed_changepoint import SEARCHED_MAX, locate
from cutover.shadow.feed_health import REPORT_FDR, Finding, find

SPREAD_HOURS_MIN: Final = 8
READ_BATCH_ROWS: Final = 262_144
SECTION_VERSION: Final = 1


def _replayed(run: dict[str, Any], split: Any) -> Iterator[tuple[pa.Table, np.ndarray]]:
    """The replayed rows again (the run's store and narrowing), with each row's quarantine."""
    from cutover.store.filters import Narrowing, parse_when
    from cutover.store.quarantine import quarantine_reasons
    from cutover.store.stream import iter_input
    n = run.get("narrowing") or {}
    narrowing = Narrowing(parse_when(n.get("since")), parse_when(n.get("until"), "--until"),
                          n.get("merchant"), n.get("sample"), n.get("limit"))
    for table in iter_input(Path(run["store"]), narrowing, READ_BATCH_ROWS):
        if split is not None:
            table = table.filter(pc.fill_null(pc.greater_equal(
                table["ts"], pa.scalar(split, TS)), False))
        refused = np.asarray(pc.is_valid(quarantine_reasons(table)).to_numpy(
            zero_copy_only=False), bool)
        yield table, refused


def _gated(f: Finding) -> bool:
    hours = f.extra.get("hours_flagged")
    return hours is None or hours >= SPREAD_HOURS_MIN


def feed_section(drift: Any, reference: Any, run: dict[str, Any] | None) -> dict[str, Any]:
    """The section from the folded ``DriftState`` and the scanned reference ``Window``."""
    plan = drift.plan
    ref = drift.head if plan.split is not None else reference
    if plan.kind == "none" or ref is None or ref.feed is None or drift.replay.feed is None:
        return {"version": SECTION_VERSION, "findings": [],
                "note": "no reference window: feed health not computed"}
    findings = find(ref.feed, drift.replay.feed)
    if findings and run and run.get("store"):
        locate(findings, _replayed(run, plan.split), plan.coder)
    rows = []
    for f in findings:
        row = f.as_dict()
        row["hours_flagged"] = f.extra.get("hours_flagged")
        row["gated"] = _gated(f)
        rows.append(row)
    return {"version": SECTION_VERSION,
            "reference": {"kind": plan.kind, "from": plan.ref_from.isoformat(),
                          "until": plan.ref_until.isoformat()},
            "rows": {"reference": ref.feed.rows, "replay": drift.replay.feed.rows},
            "fdr": REPORT_FDR, "spread_hours_min": SPREAD_HOURS_MIN,
            "located_max": SEARCHED_MAX, "findings": rows}
