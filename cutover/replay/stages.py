"""The per-batch stages of a replay as pure functions over Arrow tables.

``prepare`` splits a batch into its replayable rows and the quarantined ones; ``combine``
puts the legacy outcomes and candidate decisions of the replayable rows back in the batch's
row order and classifies every row. No I/O and no state, so the local engine, a test or a
distributed engine can run them on any worker and get the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.adapters.legacy import OUTCOME
from cutover.domain import DECISION
from cutover.errors import InvariantBroken
from cutover.shadow.diff import classify
from cutover.shadow.diff_rules import DiffRules
from cutover.store.quarantine import quarantine_reasons


@dataclass(frozen=True)
class Prepared:
    """A batch, why each row is quarantined (null: replayable) and the replayable rows."""

    traffic: pa.Table
    quarantine_reason: pa.Array
    valid_index: np.ndarray
    valid: pa.Table


def prepare(traffic: pa.Table) -> Prepared:
    """Validate a TRAFFIC batch; the replayable rows keep their order."""
    reasons = quarantine_reasons(traffic)
    valid_mask = np.asarray(pc.is_null(reasons).to_numpy(zero_copy_only=False), dtype=bool)
    valid_index = np.flatnonzero(valid_mask)
    valid = traffic if len(valid_index) == traffic.num_rows else traffic.take(pa.array(valid_index))
    return Prepared(traffic, reasons, valid_index, valid)


def _scatter(part: pa.Table, valid_index: np.ndarray, rows: int) -> pa.Table:
    """``part`` (one row per replayable row) spread over all ``rows``; nulls elsewhere."""
    if part.num_rows != len(valid_index):
        raise InvariantBroken(f"stage returned {part.num_rows} rows for {len(valid_index)} inputs")
    if len(valid_index) == rows:
        return part
    positions = np.full(rows, -1, dtype=np.int64)
    positions[valid_index] = np.arange(len(valid_index))
    indices = pa.array(positions, mask=positions < 0)
    return part.take(indices)


def candidate_failure(txn_id: pa.Array | pa.ChunkedArray, error: str) -> pa.Table:
    """Decision columns (all null) plus ``error`` for rows the candidate failed on."""
    n = len(txn_id)
    columns = {f.name: pa.nulls(n, f.type) for f in DECISION}
    columns["txn_id"] = txn_id
    columns["error"] = pa.array([error] * n, pa.string())
    return pa.table(columns)


def combine(prepared: Prepared, outcomes: pa.Table, decisions: pa.Table | None,
            candidate_error: str | None, rules: DiffRules) -> pa.Table:
    """The DIFF rows of a whole batch, in the batch's order.

    ``outcomes`` and ``decisions`` answer the replayable rows only; ``decisions`` is None when
    the candidate failed on the batch, with ``candidate_error`` saying why.
    """
    rows = prepared.traffic.num_rows
    if decisions is None:
        decisions = candidate_failure(prepared.valid["txn_id"], candidate_error or "no decision")
    legacy = _scatter(outcomes.select(OUTCOME.names), prepared.valid_index, rows)
    candidate = _scatter(decisions, prepared.valid_index, rows)
    diffs = classify(legacy, candidate, prepared.traffic, rules,
                     quarantine_reason=prepared.quarantine_reason)
    if diffs.num_rows != rows:
        raise InvariantBroken(f"conservation: {rows} rows in, {diffs.num_rows} diff rows out")
    return diffs
