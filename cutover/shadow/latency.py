"""The candidate's per-decision latency: timed single decisions, kept with each batch's decisions.

A batch's time divided by its rows says how fast the stack is in bulk (0.002 ms a row), not
how long one payment waits for an answer. So the replay times a sample of single ``decide``
calls per batch (``cutover.adapters.candidate.CandidateSide.time_single``) and keeps them in
the batch's decisions part (Parquet schema metadata, written atomically with the part, so a
resumed run keeps exactly the samples of the batches it committed). The report's candidate
latency and the gate's latency check read these.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

#: Where a decisions part keeps its batch's timed single decisions (Parquet schema metadata).
SAMPLE_KEY: Final = b"cutover.decide_latency_ms"
#: How report.json labels the figure.
HOW: Final = ("timed single decide() calls on rows spread over each batch, during the batch "
              "replay, by a second instance of the candidate (in process, sharing the cores "
              "with the replay; one untimed warm-up call first)")
NOT_MEASURED: Final = ("not measured: no timed single decisions (the candidate has no decide(), "
                       "every call raised, or the replay was asked for none)")


def with_sample(decisions: pa.Table, sample_ms: list[float]) -> pa.Table:
    """``decisions`` carrying ``sample_ms`` in its schema metadata (unchanged when empty)."""
    if not sample_ms:
        return decisions
    meta = dict(decisions.schema.metadata or {})
    meta[SAMPLE_KEY] = json.dumps([round(v, 4) for v in sample_ms]).encode()
    return decisions.replace_schema_metadata(meta)


def read_sample(part: Path) -> list[float]:
    """The timed single decisions a decisions part carries (empty when none were taken)."""
    if not part.is_file():
        return []
    raw = (pq.read_schema(part).metadata or {}).get(SAMPLE_KEY)
    return [float(v) for v in json.loads(raw)] if raw else []
