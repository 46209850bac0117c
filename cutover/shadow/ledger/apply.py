"""Bulk apply: post every diffs part of a run directory into the ledger, resumably.

Each ``RUN_DIR/diffs/part-NNNNNN.parquet`` is written in one unit of work together with its
``ledger_progress`` row, so a kill loses nothing and a rerun skips the parts already done.
Plans are checked balanced before the write; after the write the part is read back (entry and
posting counts, postings summing to zero) or the transaction rolls back. A duplicate entry
(same book, txn_id, kind) is refused by a unique constraint; the part is then redone skipping
the entries that already exist, so re-applying is a no-op.

A background thread checkpoints SQLite's WAL (see ``checkpoint``) so commits do not stall.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow.parquet as pq
from sqlalchemy import Engine

from cutover.errors import InvariantBroken, StoreError
from cutover.shadow.ledger.checkpoint import WalCheckpointer
from cutover.shadow.ledger.posting_rules import Plan
from cutover.shadow.ledger.prepare import Head, PreparedPart, posting_rows, prepare_part
from cutover.shadow.ledger.uow import LedgerUnitOfWork, ensure_schema
from cutover.shadow.ledger.writers import LedgerWriter, writer_class, writer_for

#: Rows of a part read, planned and written at a time (the part stays one transaction).
BATCH_ROWS_DEFAULT: Final = 100_000
BATCH_ROWS_MAX: Final = 2_000_000
PART_GLOB: Final = "part-*.parquet"

OnRows = Callable[[int], None]


@dataclass
class PartResult:
    """What applying one part did."""

    part: str
    rows_in: int = 0
    entries: int = 0
    postings: int = 0
    skipped: bool = False
    duplicates_skipped: int = 0


@dataclass
class ApplySummary:
    """What ``apply_run`` did, for the CLI and the benchmark."""

    parts_total: int = 0
    parts_applied: int = 0
    parts_skipped: int = 0
    rows_in: int = 0
    entries: int = 0
    postings: int = 0
    duplicates_skipped: int = 0
    seconds: float = 0.0
    parts: list[PartResult] = field(default_factory=list)

    @property
    def postings_per_s(self) -> float:
        """Postings written per second of wall time."""
        return self.postings / self.seconds if self.seconds > 0 else 0.0

    def add(self, result: PartResult) -> None:
        """Count one part's result in."""
        self.parts.append(result)
        self.parts_skipped += result.skipped
        self.parts_applied += not result.skipped
        self.rows_in += result.rows_in
        self.entries += result.entries
        self.postings += result.postings
        self.duplicates_skipped += result.duplicates_skipped


def diff_parts(run_dir: Path) -> list[Path]:
    """The run's diffs part files in order; StoreError if there is no diffs directory."""
    folder = Path(run_dir) / "diffs"
    if not folder.is_dir():
        raise StoreError(f"run directory {run_dir} has no diffs/ folder; run `cutover replay`"
                         " first or point at the right directory")
    return sorted(folder.glob(PART_GLOB))


def part_rows(path: Path) -> int:
    """Rows in a part, from its footer."""
    return pq.ParquetFile(path).metadata.num_rows


def apply_run(engine: Engine, run_dir: Path, batch_rows: int = BATCH_ROWS_DEFAULT,
              on_rows: OnRows | None = None) -> ApplySummary:
    """Apply every diffs part of ``run_dir`` not yet applied; return what was done."""
    if not 0 < batch_rows <= BATCH_ROWS_MAX:
        raise StoreError(f"--batch-rows must be between 1 and {BATCH_ROWS_MAX}, got {batch_rows}")
    parts = diff_parts(run_dir)
    ensure_schema(engine)
    summary = ApplySummary(parts_total=len(parts))
    started = time.perf_counter()
    done, head = _snapshot(engine)
    for path in parts:
        if path.name in done:
            summary.add(PartResult(part=path.name, skipped=True))
            _tell(on_rows, part_rows(path))
    todo = [p for p in parts if p.name not in done]
    checkpointer = _checkpointer(engine)
    try:
        for prepared in _prepared(todo, batch_rows, head, engine.dialect.name):
            result = commit_part(engine, prepared, batch_rows, checkpointer is not None)
            summary.add(result)
            _tell(on_rows, prepared.rows_in)
            if checkpointer is not None:
                checkpointer.nudge()
    finally:
        if checkpointer is not None:
            checkpointer.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _checkpointer(engine: Engine) -> WalCheckpointer | None:
    """A background checkpointer for a SQLite file database, else None."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return WalCheckpointer(Path(database))


def _tell(on_rows: OnRows | None, rows: int) -> None:
    if on_rows is not None:
        on_rows(rows)


def _snapshot(engine: Engine) -> tuple[set[str], Head]:
    """The parts already applied and the chain head, read under the writer lock."""
    with LedgerUnitOfWork(engine) as uow:
        writer = writer_for(uow)
        writer.cur.execute("SELECT part FROM ledger_progress")
        done = {str(row[0]) for row in writer.cur.fetchall()}
        return done, writer.head()


def _prepared(paths: list[Path], batch_rows: int, head: Head,
              dialect: str) -> Iterator[PreparedPart]:
    """Prepare ``paths`` in order, each chained after the previous one's head.

    Serial on purpose: a preparing thread slowed the writer (its driver retakes the GIL on
    every row) and a worker process spent what it saved on pickling; both measured no faster.
    """
    encode = writer_class(dialect).encode_entries
    for path in paths:
        part = prepare_part(path, batch_rows, head, encode)
        head = part.head_after
        yield part


def commit_part(engine: Engine, prepared: PreparedPart, batch_rows: int,
                manual_checkpoints: bool = False) -> PartResult:
    """Write a prepared part in one transaction; redo it skipping duplicates if refused."""
    try:
        return _write_part(engine, prepared, batch_rows, False, manual_checkpoints)
    except _integrity_errors():
        pass
    try:
        return _write_part(engine, prepared, batch_rows, True, manual_checkpoints)
    except _integrity_errors() as exc:
        raise InvariantBroken(f"{prepared.path.name}: duplicate entry even after skipping"
                              f" the existing ones: {exc}") from exc


def _integrity_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.IntegrityError]
    try:
        import psycopg
        errors.append(psycopg.IntegrityError)
    except ImportError:  # pragma: no cover - the postgres extra is optional
        pass
    return tuple(errors)


def _write_part(engine: Engine, prepared: PreparedPart, batch_rows: int, dedupe: bool,
                manual_checkpoints: bool) -> PartResult:
    result = PartResult(part=prepared.path.name)
    with LedgerUnitOfWork(engine, manual_checkpoints) as uow:
        writer = writer_for(uow)
        writer.seed_books()
        if writer.part_done(prepared.path.name):
            result.skipped = True
            return result
        head = writer.head()
        if dedupe or head != prepared.head_before:
            # Another writer moved the head, or entries exist already: chain afresh here.
            keep = (lambda plan: _drop_existing(writer, plan, result)) if dedupe else None
            prepared = prepare_part(prepared.path, batch_rows, head, writer.encode_entries, keep)
        for chunk in prepared.chunks:
            if chunk.plan.entries:
                plan = chunk.plan
                currency = plan.currency.take(np.repeat(np.arange(plan.entries), 2))
                ids = writer.account_ids(plan.account, plan.account_class, currency)
                writer.write(chunk.encoded_entries, *posting_rows(plan, chunk.entries, ids))
        result.rows_in, result.entries = prepared.rows_in, prepared.entries
        result.postings = prepared.postings
        _check_written(writer, result.part, head[0], result)
        writer.record_progress(result.part, result.rows_in, result.entries, result.postings,
                               prepared.head_after, datetime.now(UTC).isoformat(timespec="seconds"))
        uow.commit()
    return result


def _drop_existing(writer: LedgerWriter, plan: Plan, result: PartResult) -> Plan:
    """Drop entries whose (book, txn_id, kind) exists already or repeats within the plan."""
    seen = writer.existing_entry_keys(plan.txn_id.to_pylist())
    keep: list[int] = []
    keys = zip(plan.book_id.tolist(), plan.txn_id.to_pylist(), plan.kind.to_pylist(),
               strict=True)
    for i, key in enumerate(keys):
        if key not in seen:
            seen.add(key)
            keep.append(i)
    result.duplicates_skipped += plan.entries - len(keep)
    return plan.take(np.array(keep, np.int64))


def _check_written(writer: LedgerWriter, part: str, after_seq: int, result: PartResult) -> None:
    """Read the part back: every entry and posting there, and the postings sum to zero.

    Each entry was checked balanced before the write; this second path proves nothing was
    lost or altered on the way in. ``verify`` checks whole books per currency.
    """
    entries, postings, total = writer.read_back(after_seq)
    if (entries, postings) != (result.entries, result.postings):
        raise InvariantBroken(f"{part}: wrote {result.entries} entries and {result.postings}"
                              f" postings but read back {entries} and {postings}; rolled back")
    if total != 0:
        raise InvariantBroken(f"{part}: its postings sum to {total} after the write, not 0;"
                              " rolled back")
