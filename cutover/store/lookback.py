"""What a replay's candidate had been told before one transaction, read back from the store.

A drill-down recomputes one decision's features long after the replay, so it must hand the
stack the same earlier rows and labels the replay did, and no others. The replay fed the
candidate (``engine._decide_all`` with ``warmup.WarmFeed``):

- before its first decided row F: the store's rows in ``[F.ts - WARM_LOOKBACK, F)``, not
  narrowed, as warm-up traffic, and their labels;
- from F on: the narrowed rows (``run.json`` narrowing), batch by batch, with their labels;
- in both, only replayable rows (quarantined rows never reach the candidate): warm-up rows
  are checked with the quarantine rules, later rows are the ones the run's diffs did not
  class as quarantined.

This module reads only the part of that which can matter to one transaction T: the rows of
T's own entities (``keys``: card, customer, device, merchant, …) within ``history_us`` before
it, and the labels of T's merchant known by T's time (``label_ts <= T.ts``). The store is
partitioned by day, so whole days outside the window are never opened, and the remaining
filters are pushed down to the Parquet reader.

One difference is accepted: a label whose ``label_ts`` is earlier than its own transaction
(not possible in the simulator: ``label_ts > ts``) counted in the replay when that row was in
T's batch; here only labels of rows before T count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from cutover.domain import LABELS_FOR_STACK, TRAFFIC, TS
from cutover.errors import StoreError
from cutover.store.filters import Narrowing, parse_when
from cutover.store.quarantine import quarantine_reasons
from cutover.store.runinfo import read_run
from cutover.store.stream import WARM_LOOKBACK
from cutover.store.traffic import sort_by_time, store_files

DAY_PREFIX: Final = "day="
#: Diff parts scanned for the run's first decided row; a run whose first parts are all
#: quarantined rows is absurd, and the answer then falls back to the transaction itself.
FIRST_PARTS_MAX: Final = 16


@dataclass(frozen=True)
class LookBack:
    """One transaction's store row and what the candidate knew before deciding it."""

    target: pa.Table  # the transaction's row (TRAFFIC), one row
    history: pa.Table  # earlier fed rows sharing a key with it (TRAFFIC), in store order
    labels: pa.Table  # LABELS_FOR_STACK of its merchant's fed rows with label_ts <= its ts
    first: tuple[datetime, str]  # the run's first decided row, where warm-up ended
    files_read: int


def first_decided(run_dir: Path) -> tuple[datetime, str] | None:
    """(ts, txn_id) of the run's first row that reached the candidate (not quarantined)."""
    for part in sorted((Path(run_dir) / "diffs").glob("part-*.parquet"))[:FIRST_PARTS_MAX]:
        table = pq.read_table(part, columns=["txn_id", "ts", "category"])
        asked = table.filter(pc.not_equal(table["category"], "quarantined"))
        if asked.num_rows:
            return asked["ts"][0].as_py(), asked["txn_id"][0].as_py()
    return None


def narrowing_of(run: dict[str, Any]) -> Narrowing:
    """The run's narrowing, from run.json (the limit is irrelevant to rows before a decided one)."""
    saved = run.get("narrowing") or {}
    return Narrowing(since=parse_when(saved.get("since")), until=parse_when(saved.get("until")),
                     merchant=saved.get("merchant"), sample=saved.get("sample"))


def input_files(run: dict[str, Any]) -> list[Path]:
    """The store files the run read (run.json inputs), else the store's files now."""
    files = [Path(i["path"]) for i in run.get("inputs", []) if Path(i["path"]).is_file()]
    if files:
        return files
    if not run.get("store"):
        raise StoreError("run.json names neither inputs nor a store")
    return store_files(Path(run["store"]))


def _days(files: list[Path], since: datetime, until: datetime) -> list[Path]:
    """Files of day folders that can hold rows in [since, until]; files outside day folders stay."""
    low, high = since.strftime("%Y-%m-%d"), until.strftime("%Y-%m-%d")
    out = []
    for path in files:
        day = path.parent.name.removeprefix(DAY_PREFIX)
        if not path.parent.name.startswith(DAY_PREFIX) or low <= day <= high:
            out.append(path)
    return out


def _dataset(files: list[Path]) -> ds.Dataset:
    return ds.dataset([str(f) for f in files], schema=TRAFFIC, format="parquet")


def read_target(files: list[Path], txn_id: str, ts: datetime) -> pa.Table:
    """The store row of ``txn_id`` (looked up in the day folder of ``ts``)."""
    day = _days(files, ts, ts) or files
    at = pa.scalar(ts, TS)
    return _dataset(day).to_table(filter=(ds.field("ts") == at) & (ds.field("txn_id") == txn_id))


def _key_filter(target: dict[str, Any], keys: tuple[str, ...]) -> ds.Expression | None:
    expr = None
    for key in keys:
        if target.get(key) is None:
            continue
        part = ds.field(key) == target[key]
        expr = part if expr is None else expr | part
    return expr


def _before(table: pa.Table, ts: datetime, txn_id: str) -> pa.Array:
    """Rows earlier than (ts, txn_id) in store order."""
    at = pa.scalar(ts, TS)
    return pc.or_(pc.less(table["ts"], at),
                  pc.and_(pc.equal(table["ts"], at), pc.less(table["txn_id"], txn_id)))


def quarantined_ids(run_dir: Path) -> pa.Array:
    """txn_ids the run quarantined (never shown to the candidate), from its diff parts."""
    parts = sorted(str(p) for p in (Path(run_dir) / "diffs").glob("part-*.parquet"))
    if not parts:
        return pa.array([], pa.string())
    table = ds.dataset(parts, format="parquet").to_table(
        columns=["txn_id"], filter=ds.field("category") == "quarantined")
    return table["txn_id"].combine_chunks()


def _as_fed(table: pa.Table, first: tuple[datetime, str], narrowing: Narrowing,
            quarantined: pa.Array) -> pa.Table:
    """The rows the candidate was fed: warm-up rows as they are (if replayable), later rows
    narrowed and not quarantined by the run. ``table`` holds warm-up rows with every TRAFFIC
    column (the quarantine checks read them) and later rows with at least ``txn_id``, ``ts``
    and the narrowing's columns."""
    warm_mask = _before(table, *first)
    warm = table.filter(warm_mask)
    if warm.num_rows:
        warm = warm.filter(pc.is_null(quarantine_reasons(warm)))
    later = narrowing.keep(table.filter(pc.invert(warm_mask)))
    if later.num_rows and len(quarantined):
        later = later.filter(pc.invert(pc.is_in(later["txn_id"], value_set=quarantined)))
    return sort_by_time(pa.concat_tables([warm.select(later.column_names), later]))


def _scan(files: list[Path], since: datetime, until: datetime, expr: ds.Expression,
          columns: list[str] | None = None) -> pa.Table:
    """Rows with ``since <= ts <= until`` matching ``expr``, from the day files in between."""
    days = _days(files, since, until)
    if not days:
        return TRAFFIC.empty_table() if columns is None else TRAFFIC.empty_table().select(columns)
    window = (ds.field("ts") >= pa.scalar(since, TS)) & (ds.field("ts") <= pa.scalar(until, TS))
    return _dataset(days).to_table(columns=columns, filter=window & expr)


def read_lookback(run_dir: Path, txn_id: str, ts: datetime, history: timedelta,
                  keys: tuple[str, ...], label_key: str = "merchant_id") -> LookBack | None:
    """What the run's candidate knew before ``txn_id``: rows sharing one of ``keys`` with it
    within ``history``, and the labels of rows sharing ``label_key``; None if it is not in
    the store the run read."""
    run = read_run(run_dir)
    files = input_files(run)
    target = read_target(files, txn_id, ts)
    if target.num_rows == 0:
        return None
    row = target.slice(0, 1).to_pylist()[0]
    first = first_decided(run_dir) or (ts, txn_id)
    fed_since = first[0] - WARM_LOOKBACK
    history_since = max(ts - history, fed_since)
    narrowing, quarantined = narrowing_of(run), quarantined_ids(run_dir)
    near = _key_filter(row, keys)
    rows = _scan(files, history_since, ts, near) if near is not None else TRAFFIC.empty_table()
    fed = _as_fed(rows.filter(_before(rows, ts, txn_id)), first, narrowing, quarantined)
    labels = _labels(files, row, label_key, first, narrowing, quarantined)
    return LookBack(target.slice(0, 1), fed, labels, first, len(_days(files, fed_since, ts)))


def _labels(files: list[Path], row: dict[str, Any], label_key: str,
            first: tuple[datetime, str], narrowing: Narrowing, quarantined: pa.Array) -> pa.Table:
    """Labels of ``row``'s ``label_key`` known by its time, of rows the candidate was fed.

    Warm-up rows are read whole (the quarantine checks need every column; the window is a
    week); the rest, months perhaps, only in the few columns labels and narrowing need.
    """
    if row.get(label_key) is None:
        return TRAFFIC.empty_table().select(list(LABELS_FOR_STACK))
    ts, txn_id = row["ts"], row["txn_id"]
    at = pa.scalar(ts, TS)
    known = (ds.field(label_key) == row[label_key]) & (ds.field("label_ts") <= at) \
        & ds.field("is_fraud").is_valid()
    warm = _scan(files, first[0] - WARM_LOOKBACK, first[0], known)
    warm = _as_fed(warm.filter(_before(warm, *first)), first, narrowing, quarantined)
    columns = list(dict.fromkeys([*LABELS_FOR_STACK, "ts", "merchant_id"]))
    later = _scan(files, first[0], ts, known, columns)
    later = later.filter(pc.and_(pc.invert(_before(later, *first)), _before(later, ts, txn_id)))
    later = _as_fed(later, first, narrowing, quarantined)
    return pa.concat_tables([warm.select(list(LABELS_FOR_STACK)),
                             later.select(list(LABELS_FOR_STACK))])
