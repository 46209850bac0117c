"""The candidate's per-decision latency: timed single decisions, kept in RUN_DIR/latency.json.

A batch's time divided by its rows says how fast the stack is in bulk (0.002 ms a row), not
how long one payment waits for an answer. So the replay keeps a sample of requests spread over
its batches and, once the batches are done, times one single ``decide`` call for each on a
second instance of the candidate (``cutover.adapters.candidate.CandidateSide.time_sample``).
The report's candidate latency, and so the gate's latency check, read this file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from cutover.errors import StoreError
from cutover.store.checkpoint import write_json_atomic

LATENCY_FILE: Final = "latency.json"
#: How report.json labels the figure.
HOW: Final = ("timed single decide() calls on requests sampled evenly from every batch, by a "
              "second instance of the candidate after the batch replay (in process; one "
              "untimed warm-up call first); each request's figure is the fastest of 3 calls, "
              "so preemption on a shared machine is not counted as the candidate's")
NOT_MEASURED: Final = ("not measured: no timed single decisions (the candidate has no decide(), "
                       "every call raised, or the replay was asked for none)")
#: Candidates served over HTTP: every call is timed by the replay, so no sample is taken.
HTTP_PREFIXES: Final = ("http://", "https://")
HOW_HTTP: Final = ("every call to the HTTP candidate, as the replay timed it (each row's "
                   "candidate_latency_ms)")
#: A sample holds at most this many figures (the replay keeps far fewer).
SAMPLE_MAX: Final = 100_000


def write_sample(run_dir: Path, sample_ms: list[float]) -> None:
    """Write RUN_DIR/latency.json atomically."""
    write_json_atomic(Path(run_dir) / LATENCY_FILE,
                      {"how": HOW, "sample_ms": [round(v, 4) for v in sample_ms[:SAMPLE_MAX]]})


def read_sample(run_dir: Path) -> list[float]:
    """The timed single decisions of a run (empty when none were taken)."""
    path = Path(run_dir) / LATENCY_FILE
    if not path.is_file():
        return []
    try:
        values = json.loads(path.read_text(encoding="utf-8"))["sample_ms"]
        return [float(v) for v in values[:SAMPLE_MAX]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{path}: not a latency sample written by cutover: {exc}") from exc
