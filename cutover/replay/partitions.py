"""A replay cut into segments that can be decided apart and still equal one unbroken stream.

The local engine decides batch k after batches 0..k-1 went through the candidate's rolling
state. A segment (batches a..b-1) decided on another machine gets that state the way a resumed
local run does (``WarmFeed``): the labels of every earlier batch, and the earlier rows inside
the look-back window. So a segment is exactly "resume at batch a, stop before b", and the
resume-equals-unbroken property the local engine is tested for carries over to any split.

Why segments of consecutive batches and not a hash of an entity key: the reference stack's
look-back features span four entities at once (card, customer, device, merchant), so no one
key keeps a row's whole history in its partition; time ranges do, at the cost of re-reading
one look-back window per segment. That is why segments are few and long.

The driver plans with one pass of the local engine's reader (``iter_input``), so batch k holds
the same rows as the local batch k; it keeps per batch its key range, row count and labels. A
worker reads its batches back from the store by key range. Nothing here imports Ray: the engine
that schedules segments is ``ray_engine``; a test can run a segment in process.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.adapters.candidate import OBSERVED_LABELS, CandidateSide, label_rows
from cutover.domain import TRAFFIC
from cutover.errors import InputError, InvariantBroken, StoreError
from cutover.replay.engine import write_batch_parts
from cutover.replay.legacy_side import LegacySide
from cutover.replay.stages import prepare
from cutover.replay.warmup import WarmFeed
from cutover.shadow.diff_rules import DiffRules
from cutover.store.checkpoint import part_name, write_json_atomic
from cutover.store.filters import Narrowing
from cutover.store.stream import WARM_LOOKBACK, iter_input

COMMITS: Final = "commits"
#: Rows per piece when a worker reads its key range (memory: a few pieces plus one batch).
READ_ROWS: Final = 65_536
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def ts_of(us: int) -> datetime:
    """A UTC datetime from microseconds since the epoch (exact, no float)."""
    return _EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True)
class BatchSpan:
    """Where batch ``batch_no`` lies in the store: its first and last (ts, txn_id) and size.

    ``skip`` counts rows at its start that carry the same key as the previous batch's last
    rows and belong to it (only a duplicated txn_id at the same microsecond does that)."""

    batch_no: int
    rows: int
    first_us: int
    first_txn: str
    last_us: int
    last_txn: str
    skip: int = 0


@dataclass
class RunPlan:
    """Every batch of a run, the labels of its replayable rows, and the run's first key."""

    spans: list[BatchSpan] = field(default_factory=list)
    labels: list[pa.Table] = field(default_factory=list)
    first_valid: tuple[datetime, str] | None = None
    seconds: float = 0.0

    @property
    def rows_in(self) -> int:
        """Rows the run reads."""
        return sum(s.rows for s in self.spans)


def _keys(table: pa.Table) -> tuple[np.ndarray, pa.Array]:
    if table["ts"].null_count or table["txn_id"].null_count:
        raise InputError("the store holds rows without ts or txn_id: the ray engine places rows"
                         " by (ts, txn_id); replay it with --engine local")
    ts = pc.cast(table["ts"], pa.int64()).to_numpy()
    return ts, table["txn_id"].combine_chunks()


def _check_order(ts: np.ndarray, txn: pa.Array, previous: tuple[int, str] | None) -> None:
    """Rows must be in (ts, txn_id) order, within the batch and after the previous one."""
    unordered = bool(np.any(ts[1:] < ts[:-1]))
    tied = np.flatnonzero(ts[1:] == ts[:-1])
    if not unordered and len(tied):
        ahead, behind = txn.take(pa.array(tied)), txn.take(pa.array(tied + 1))
        unordered = bool(pc.any(pc.greater(ahead, behind)).as_py())
    if previous is not None and (int(ts[0]), txn[0].as_py()) < previous:
        unordered = True
    if unordered:
        raise InputError("the store's rows are not in (ts, txn_id) order: the ray engine reads"
                         " batches back by that key; replay it with --engine local")


def _tail_run(ts: np.ndarray, txn: pa.Array) -> int:
    """How many rows at the end of a batch share its last key."""
    n, last_us, last_txn = len(ts), int(ts[-1]), txn[-1].as_py()
    same = (ts == last_us) & np.asarray(pc.equal(txn, last_txn).to_numpy(zero_copy_only=False))
    return n - int(np.flatnonzero(~same)[-1]) - 1 if not same.all() else n


def plan_run(store: Path, narrowing: Narrowing, batch_rows: int) -> RunPlan:
    """One pass of the local reader: every batch's span and the labels of its valid rows."""
    started = time.perf_counter()
    plan = RunPlan()
    tail: tuple[tuple[int, str], int] | None = None
    for batch_no, table in enumerate(iter_input(store, narrowing, batch_rows)):
        ts, txn = _keys(table)
        first = (int(ts[0]), txn[0].as_py())
        _check_order(ts, txn, tail[0] if tail else None)
        skip = tail[1] if tail and tail[0] == first else 0
        plan.spans.append(BatchSpan(batch_no, table.num_rows, first[0], first[1], int(ts[-1]),
                                    txn[-1].as_py(), skip))
        run = _tail_run(ts, txn)
        last = (int(ts[-1]), txn[-1].as_py())
        tail = (last, run + (tail[1] if tail and tail[0] == last and run == table.num_rows else 0))
        valid = prepare(table).valid
        plan.labels.append(label_rows(valid))
        if plan.first_valid is None and valid.num_rows:
            plan.first_valid = (valid["ts"][0].as_py(), valid["txn_id"][0].as_py())
    plan.seconds = time.perf_counter() - started
    return plan


@dataclass(frozen=True)
class Segment:
    """Batches to decide, the earlier batches whose rows warm the look-back, the labels of the
    batches before those, and the run's first key."""

    spans: tuple[BatchSpan, ...]
    history: tuple[BatchSpan, ...]
    labels: pa.Table
    first_valid: tuple[datetime, str] | None


def runs_of(todo: Sequence[int]) -> list[list[int]]:
    """Consecutive batch numbers grouped: [0, 1, 2, 5, 6] -> [[0, 1, 2], [5, 6]]."""
    runs: list[list[int]] = []
    for batch_no in todo:
        if runs and runs[-1][-1] == batch_no - 1:
            runs[-1].append(batch_no)
        else:
            runs.append([batch_no])
    return runs


def segments_for(plan: RunPlan, todo: Sequence[int], workers: int,
                 lookback: timedelta = WARM_LOOKBACK) -> list[Segment]:
    """Cut the batches still to do into about ``workers`` segments of consecutive batches.

    Fewer, longer segments re-read fewer look-back windows; one per worker keeps each busy.
    A gap (batches committed by an earlier process) always ends a segment.
    """
    if not todo:
        return []
    length = max(1, math.ceil(len(todo) / max(1, workers)))
    lookback_us = int(lookback / timedelta(microseconds=1))
    empty = label_rows(TRAFFIC.empty_table()).select(list(OBSERVED_LABELS))
    segments = []
    for run in runs_of(sorted(todo)):
        for i in range(0, len(run), length):
            start = run[i]
            horizon = plan.spans[start].first_us - lookback_us
            first_history = start
            while first_history > 0 and plan.spans[first_history - 1].last_us >= horizon:
                first_history -= 1
            labels = [t.select(list(OBSERVED_LABELS)) for t in plan.labels[:first_history]]
            segments.append(Segment(
                spans=tuple(plan.spans[b] for b in run[i:i + length]),
                history=tuple(plan.spans[first_history:start]),
                labels=pa.concat_tables([empty, *labels]), first_valid=plan.first_valid))
    return segments


def _drop_before(piece: pa.Table, first_us: int, first_txn: str) -> tuple[pa.Table, bool]:
    """Drop the leading rows at ``first_us`` whose txn_id sorts before ``first_txn`` (they end
    the previous batch); True when the piece ran out before the key was reached."""
    ts = pc.cast(piece["ts"], pa.int64())
    before = pc.and_(pc.equal(ts, first_us), pc.less(piece["txn_id"], first_txn))
    n = int(pc.sum(before).as_py() or 0)
    return piece.slice(n), n == piece.num_rows


def read_spans(store: Path, narrowing: Narrowing, spans: Sequence[BatchSpan]
               ) -> Iterator[tuple[int, pa.Table]]:
    """The batches ``spans`` (consecutive) read back from the store: the same rows, in the same
    order, as the local reader's batches of those numbers."""
    if not spans:
        return
    first, last = spans[0], spans[-1]
    window = Narrowing(ts_of(first.first_us), ts_of(last.last_us + 1), narrowing.merchant,
                       narrowing.sample)
    pending: list[pa.Table] = []
    pending_rows, index, skip, seeking = 0, 0, first.skip, True
    for piece in iter_input(store, window, READ_ROWS):
        if seeking:
            piece, seeking = _drop_before(piece, first.first_us, first.first_txn)
        taken = min(skip, piece.num_rows)
        piece, skip = piece.slice(taken), skip - taken
        pending.append(piece)
        pending_rows += piece.num_rows
        while index < len(spans) and pending_rows >= spans[index].rows:
            joined = pa.concat_tables(pending)
            span = spans[index]
            batch = joined.slice(0, span.rows).combine_chunks()
            _check_span(batch, span)
            yield span.batch_no, batch
            rest = joined.slice(span.rows)
            pending, pending_rows, index = [rest], rest.num_rows, index + 1
        if index == len(spans):
            return
    raise StoreError(f"{store} changed since the run was planned: batch {spans[index].batch_no}"
                     " is not there any more; start over with --force")


def _check_span(batch: pa.Table, span: BatchSpan) -> None:
    """The batch read back by key range is the one the plan saw (its ends and its size)."""
    ts = pc.cast(batch["ts"], pa.int64())
    ends = ((ts[0].as_py(), batch["txn_id"][0].as_py()), (ts[-1].as_py(),
                                                          batch["txn_id"][-1].as_py()))
    if ends != ((span.first_us, span.first_txn), (span.last_us, span.last_txn)):
        raise InvariantBroken(f"batch {span.batch_no} read back as {ends}, planned as"
                              f" {(span.first_us, span.first_txn), (span.last_us, span.last_txn)}")


@dataclass(frozen=True)
class Job:
    """What every segment of one run shares (sent to each worker once)."""

    store: Path
    out: Path
    narrowing: Narrowing
    candidate: str
    candidate_options: dict[str, str]
    legacy: str
    legacy_options: dict[str, Any]
    rules_toml: str
    rules_source: str


@dataclass
class SegmentResult:
    """What a segment committed: batch numbers, rows, the model version, stage seconds."""

    batches: list[int]
    rows: int
    model_version: str | None
    timings_s: dict[str, float]


def commit_path(out: Path, batch_no: int) -> Path:
    """The marker that says batch ``batch_no`` is committed (its parts are complete)."""
    return Path(out) / COMMITS / part_name(batch_no).replace(".parquet", ".json")


def replay_segment(job: Job, rules: DiffRules, segment: Segment, candidate: CandidateSide,
                   legacy: LegacySide) -> SegmentResult:
    """Warm ``candidate`` as a run resumed at the segment's first batch, then decide, diff and
    commit each batch: parts first, then its marker, so a kill never half-commits a batch."""
    timings = dict.fromkeys(("read", "warm", "legacy", "candidate", "commit"), 0.0)
    clock = time.perf_counter()
    warm = WarmFeed(job.store)
    warm.remember_labels(segment.labels, segment.first_valid)
    for _, table in read_spans(job.store, job.narrowing, segment.history):
        warm.remember(prepare(table).valid)
    timings["warm"] += time.perf_counter() - clock
    result = SegmentResult([], 0, None, timings)
    batches = read_spans(job.store, job.narrowing, segment.spans)
    while True:
        clock = time.perf_counter()
        item = next(batches, None)
        timings["read"] += time.perf_counter() - clock
        if item is None:
            return result
        _decide_one(job, rules, item, warm, candidate, legacy, result)


def _decide_one(job: Job, rules: DiffRules, item: tuple[int, pa.Table], warm: WarmFeed,
                candidate: CandidateSide, legacy: LegacySide, result: SegmentResult) -> None:
    batch_no, table = item
    timings = result.timings_s
    prepared = prepare(table)
    clock = time.perf_counter()
    warm.feed(candidate, prepared.valid)
    candidate.observe_labels(prepared.valid)
    timings["warm"] += time.perf_counter() - clock
    clock = time.perf_counter()
    outcomes = legacy.authorize(prepared.valid)
    timings["legacy"] += time.perf_counter() - clock
    decided = candidate.decide(prepared.valid)
    timings["candidate"] += decided.seconds
    clock = time.perf_counter()
    parts = write_batch_parts(job.out, batch_no, prepared, outcomes, decided, rules)
    write_json_atomic(commit_path(job.out, batch_no), {
        "batch": batch_no, "rows": table.num_rows, "by_category": parts.by_category,
        "expected_by_category": parts.expected_by_category,
        "model_version": parts.model_version})
    timings["commit"] += time.perf_counter() - clock
    result.batches.append(batch_no)
    result.rows += table.num_rows
    result.model_version = result.model_version or parts.model_version
