"""The per-transaction shadow harness, written the obvious way, as the benchmark's baseline.

For each recorded transaction: build the request dict, call the candidate's ``decide``, and
deepdiff the legacy outcome against the candidate's. This is how a shadow comparison is often
first written; bench/replay.py runs it beside the columnar replay on the same data to show
the difference. It is not used by ``cutover replay``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cutover.adapters.candidate import REQUEST_COLUMNS, load_candidate
from cutover.store.filters import Narrowing
from cutover.store.stream import iter_input

READ_BATCH_ROWS: Final = 4_096
COMPARED: Final = ("decision", "route", "fee_minor")


@dataclass(frozen=True)
class HarnessResult:
    """Rows compared, how many differed, and the wall time."""

    rows: int
    differing: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        """Throughput of the harness."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def run_harness(store: Path, candidate: str, options: dict[str, str] | None = None,
                rows_max: int = 10_000) -> HarnessResult:
    """Compare up to ``rows_max`` transactions one at a time; return counts and time."""
    from deepdiff import DeepDiff
    stack = load_candidate(candidate, options)
    started = time.perf_counter()
    rows = differing = 0
    for table in iter_input(Path(store), Narrowing(limit=rows_max), READ_BATCH_ROWS):
        for record in table.to_pylist():
            request = {k: record[k] for k in REQUEST_COLUMNS}
            decided: dict[str, Any] = stack.decide(request)
            legacy = {f: record[f"legacy_{f}"] for f in COMPARED}
            candidate_view = {f: decided.get(f) for f in COMPARED}
            if DeepDiff(legacy, candidate_view):
                differing += 1
            rows += 1
    return HarnessResult(rows, differing, time.perf_counter() - started)
