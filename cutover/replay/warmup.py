"""Warming the candidate's rolling state so a resumed replay decides exactly like an unbroken one.

An unbroken run warms the stack with the store rows of the look-back before its first row,
then feeds it every batch in order. A run resumed at batch k must leave the stack in the same
state before batch k: it re-observes every label the unbroken run would have observed by then
and warms with the same rows that fall inside the look-back of batch k's first row, taken from
the original warm rows and the committed batches it skips over. Skipped batches are held only
while they are inside the look-back, so memory stays bounded by that window.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from cutover.adapters.candidate import OBSERVED_LABELS, CandidateSide, label_rows
from cutover.domain import TRAFFIC, TS
from cutover.store.quarantine import quarantine_reasons
from cutover.store.stream import WARM_LOOKBACK, first_key, rows_before


def _valid_rows(table: pa.Table) -> pa.Table:
    """The rows a candidate would have been asked about (the replayable ones)."""
    if table.num_rows == 0:
        return table
    return table.filter(pc.is_null(quarantine_reasons(table)))


class WarmFeed:
    """Collects what the candidate saw before the first batch this process decides."""

    def __init__(self, store: Path, lookback: timedelta = WARM_LOOKBACK) -> None:
        self.store = Path(store)
        self.lookback = lookback
        self.first: tuple[datetime, str] | None = None
        self._history: list[pa.Table] = []
        self._labels: list[pa.Table] = []
        self.fed = False

    def remember(self, valid: pa.Table) -> None:
        """A committed batch being skipped on resume: keep its labels and recent rows."""
        if valid.num_rows == 0:
            return
        if self.first is None:
            self.first = first_key(valid)
        self._labels.append(label_rows(valid))
        self._history.append(valid)
        newest = valid["ts"][valid.num_rows - 1].as_py()
        while self._history and self._history[0]["ts"][-1].as_py() < newest - self.lookback:
            self._history.pop(0)

    def remember_labels(self, labels: pa.Table, first: tuple[datetime, str] | None) -> None:
        """A committed batch far outside the look-back: only its labels still matter.

        ``labels`` is ``label_rows`` of its replayable rows; ``first`` is the key of the run's
        first replayable row (where the original warm-up window ends). A distributed engine
        passes these instead of the rows, so a worker starting mid-run reads its look-back only.
        """
        if self.first is None:
            self.first = first
        if labels.num_rows:
            self._labels.append(labels)

    def feed(self, candidate: CandidateSide, valid: pa.Table) -> None:
        """Before deciding ``valid`` (the first batch of this process): warm the candidate."""
        if self.fed or valid.num_rows == 0:
            return
        self.fed = True
        if self.first is None:
            self.first = first_key(valid)
        original = _valid_rows(rows_before(self.store, *self.first, self.lookback))
        labels = [label_rows(original), *self._labels]
        candidate.observe_labels(pa.concat_tables(labels).select(list(OBSERVED_LABELS)))
        start = pa.scalar(first_key(valid)[0] - self.lookback, TS)
        rows = pa.concat_tables([original.cast(TRAFFIC), *(h.cast(TRAFFIC) for h in self._history)])
        candidate.warm(rows.filter(pc.greater_equal(rows["ts"], start)))
        self._history.clear()
        self._labels.clear()
