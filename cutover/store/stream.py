"""The replay's input: the store's rows in time order, narrowed, cut into fixed-size batches.

Batch boundaries depend only on the store, the narrowing and ``batch_rows``, never on timing,
so batch k of a resumed run is exactly batch k of an uninterrupted one. Memory is bounded by
the scanner's read-ahead plus one output batch: days held in a single file are scanned as one
dataset (decoded in parallel, yielded in order); a day imported in several parts is read whole
so it can be put in time order.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from cutover.domain import TRAFFIC, TS
from cutover.store.filters import Narrowing
from cutover.store.traffic import day_folders, read_day

#: How far before the first decided row the candidate's rolling state is warmed: the stack's
#: longest look-back (7 days, cutover.stack.features.HISTORY_US) plus an hour of margin, so no
#: window starts short and a resumed replay decides exactly like an unbroken one.
WARM_LOOKBACK: Final = timedelta(days=7, hours=1)
READ_BATCH_ROWS_MAX: Final = 65_536


_EARLIEST: Final = datetime.min.replace(tzinfo=UTC)
_LATEST: Final = datetime.max.replace(tzinfo=UTC)


def shift(when: datetime, delta: timedelta) -> datetime:
    """``when + delta``, held at the ends of the calendar instead of overflowing: a store may
    hold a year-0001 or 9999 row written before imports refused them, and replay must reach
    it to quarantine it, not crash computing a window around it."""
    try:
        return when + delta
    except OverflowError:
        return _EARLIEST if delta < timedelta(0) else _LATEST


def _day_of(folder: Path) -> datetime:
    return datetime.strptime(folder.name.removeprefix("day="), "%Y-%m-%d").replace(tzinfo=UTC)


def _days_within(store: Path, since: datetime | None, until: datetime | None) -> list[Path]:
    """Day folders that can hold rows in [since, until)."""
    days = []
    for folder in day_folders(store):
        start = _day_of(folder)
        if since is not None and shift(start, timedelta(days=1)) <= since:
            continue
        if until is not None and start >= until:
            continue
        days.append(folder)
    return days


#: Pre-buffering coalesces reads for remote storage; on local disk it costs a fixed ~1 ms per
#: column chunk, which dominates small day files, so it is off.
_FORMAT: Final = ds.ParquetFileFormat(
    default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False))
#: Files decoded ahead of the consumer by the dataset scanner (parallel decode).
FRAGMENT_READAHEAD: Final = 8
#: The scanner reads ahead as fast as it can within one dataset, so single-file days are
#: scanned in groups of at most this many bytes on disk: memory stays bounded by a group.
GROUP_BYTES_MAX: Final = 16 * 1024 * 1024


def _run_pieces(files: list[Path], narrowing: Narrowing) -> Iterator[pa.Table]:
    """Single-file days in date order, scanned a group at a time; batches come in order."""
    for group in file_groups(files):
        dataset = ds.dataset([str(f) for f in group], schema=TRAFFIC, format=_FORMAT)
        batches = dataset.to_batches(filter=narrowing.expression(),
                                     batch_size=READ_BATCH_ROWS_MAX, use_threads=True,
                                     fragment_readahead=FRAGMENT_READAHEAD)
        for batch in batches:
            piece = narrowing.keep_sample(pa.Table.from_batches([batch], schema=TRAFFIC))
            if piece.num_rows:
                yield piece


def _pieces(days: list[Path], narrowing: Narrowing) -> Iterator[pa.Table]:
    """The narrowed rows of ``days`` in store order, in pieces of bounded size.

    A day held in one file is already in store order and joins a run of such days scanned
    together; a day imported in several parts is read whole and sorted.
    """
    run: list[Path] = []
    for folder in days:
        files = sorted(folder.glob("*.parquet"))
        if len(files) == 1:
            run.append(files[0])
            continue
        if run:
            yield from _run_pieces(run, narrowing)
            run = []
        if files:
            piece = narrowing.keep_sample(read_day(folder, filter_expr=narrowing.expression()))
            if piece.num_rows:
                yield piece
    if run:
        yield from _run_pieces(run, narrowing)


def file_groups(files: list[Path]) -> Iterator[list[Path]]:
    """Consecutive files in groups of at most GROUP_BYTES_MAX bytes (at least one file)."""
    group: list[Path] = []
    size = 0
    for path in files:
        length = path.stat().st_size
        if group and size + length > GROUP_BYTES_MAX:
            yield group
            group, size = [], 0
        group.append(path)
        size += length
    if group:
        yield group


def iter_input(store: Path, narrowing: Narrowing, batch_rows: int) -> Iterator[pa.Table]:
    """Yield the narrowed rows as tables of exactly ``batch_rows`` rows (the last may be short)."""
    if batch_rows <= 0:
        raise ValueError("batch_rows must be positive")
    pending: list[pa.Table] = []
    pending_rows = 0
    remaining = narrowing.limit
    for piece in _pieces(_days_within(store, narrowing.since, narrowing.until), narrowing):
        if remaining is not None:
            piece = piece.slice(0, remaining)
            remaining -= piece.num_rows
        pending.append(piece)
        pending_rows += piece.num_rows
        while pending_rows >= batch_rows:
            joined = pa.concat_tables(pending)
            yield joined.slice(0, batch_rows).combine_chunks()
            rest = joined.slice(batch_rows)
            pending, pending_rows = [rest], rest.num_rows
        if remaining == 0:
            break
    if pending_rows:
        yield pa.concat_tables(pending).combine_chunks()


def rows_before(store: Path, first_ts: datetime, first_txn: str,
                lookback: timedelta = WARM_LOOKBACK) -> pa.Table:
    """Every store row earlier than (first_ts, first_txn) in store order, within ``lookback``."""
    start = shift(first_ts, -lookback)
    window = Narrowing(since=start, until=shift(first_ts, timedelta(microseconds=1)))
    pieces = []
    for folder in _days_within(store, window.since, window.until):
        piece = read_day(folder, filter_expr=window.expression())
        if piece.num_rows:
            pieces.append(piece)
    if not pieces:
        return TRAFFIC.empty_table()
    table = pa.concat_tables(pieces)
    ts_first = pa.scalar(first_ts, TS)
    earlier = pc.or_(pc.less(table["ts"], ts_first),
                     pc.and_(pc.equal(table["ts"], ts_first),
                             pc.less(table["txn_id"], first_txn)))
    return table.filter(earlier).combine_chunks()


def first_key(table: pa.Table) -> tuple[datetime, str]:
    """(ts, txn_id) of a batch's first row: where its history ends."""
    return table["ts"][0].as_py(), table["txn_id"][0].as_py()
