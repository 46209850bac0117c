"""The traffic store on disk: TRAFFIC rows as Parquet, partitioned by UTC day.

One module owns the layout (``STORE/day=YYYY-MM-DD/<part>.parquet``, rows sorted by ``ts``
then ``txn_id``) so the generator, import and replay cannot disagree about it. Reading yields
batches in time order one day at a time, so memory is bounded by a day, not the store.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from cutover.domain import TRAFFIC, conform
from cutover.errors import StoreError

BATCH_ROWS_DEFAULT: Final = 65_536
_DAY_PREFIX: Final = "day="


def sort_by_time(table: pa.Table) -> pa.Table:
    """Sort rows by ``ts`` then ``txn_id``: the one order every reader relies on."""
    return table.sort_by([("ts", "ascending"), ("txn_id", "ascending")])


def write_day_partitions(table: pa.Table, root: Path, part_name: str) -> dict[str, int]:
    """Write ``table`` (TRAFFIC) under ``root`` as one file per UTC day; return rows per day.

    Each file is written to a temporary name and renamed, so a reader never sees half a file.
    An existing file of the same part name is replaced, which makes a rerun idempotent.
    """
    table = sort_by_time(conform(table, TRAFFIC))
    if table.num_rows == 0:
        return {}
    days = pc.strftime(table["ts"], format="%Y-%m-%d")
    written: dict[str, int] = {}
    for day in pc.unique(days).to_pylist():
        part = table.filter(pc.equal(days, day))
        folder = Path(root) / f"{_DAY_PREFIX}{day}"
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{part_name}.parquet"
        temp = folder / f".{part_name}.parquet.tmp"
        pq.write_table(part, temp, compression="zstd")
        os.replace(temp, final)
        written[day] = part.num_rows
    return written


def move_parts(staging: Path, root: Path) -> int:
    """Move every part file of a store laid out under ``staging`` into the store ``root``.

    One rename per file (``staging`` must be on the same file system, e.g. inside ``root``),
    so each part appears whole or not at all; a crash part-way leaves the parts moved so far
    in the store and the others in ``staging``. A part never replaces one of the same name:
    that would drop the rows the existing one holds. Returns the number of files moved.
    """
    moved = 0
    for folder in sorted(p for p in Path(staging).iterdir()
                         if p.is_dir() and p.name.startswith(_DAY_PREFIX)):
        target = Path(root) / folder.name
        target.mkdir(parents=True, exist_ok=True)
        for part in sorted(folder.glob("*.parquet")):
            final = target / part.name
            if final.exists():
                raise StoreError(f"{final} already exists; not replacing it with {part}")
            os.replace(part, final)
            moved += 1
    return moved


def day_folders(root: Path) -> list[Path]:
    """Return the store's day folders in date order; raise ``StoreError`` if there are none."""
    root = Path(root)
    if not root.is_dir():
        raise StoreError(f"traffic store {root} does not exist or is not a directory")
    days = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(_DAY_PREFIX))
    if not days:
        raise StoreError(f"traffic store {root} has no day=YYYY-MM-DD partitions")
    return days


def store_files(root: Path) -> list[Path]:
    """Return every Parquet file of the store, in day then name order."""
    return [f for day in day_folders(root) for f in sorted(day.glob("*.parquet"))]


def open_store(root: Path) -> ds.Dataset:
    """Open the store as one pyarrow dataset with the TRAFFIC schema."""
    files = store_files(root)
    if not files:
        raise StoreError(f"traffic store {root} has no Parquet files")
    return ds.dataset([str(f) for f in files], schema=TRAFFIC, format="parquet")


def count_rows(root: Path) -> int:
    """Return the number of rows in the store without reading the data pages."""
    return sum(pq.ParquetFile(f).metadata.num_rows for f in store_files(root))


def read_day(folder: Path, columns: list[str] | None = None,
             filter_expr: ds.Expression | None = None) -> pa.Table:
    """Read one day folder, sorted by time (a day may hold several imported parts)."""
    files = sorted(str(f) for f in folder.glob("*.parquet"))
    if not files:
        return TRAFFIC.empty_table() if columns is None else TRAFFIC.empty_table().select(columns)
    dataset = ds.dataset(files, schema=TRAFFIC, format="parquet")
    table = dataset.to_table(columns=columns, filter=filter_expr)
    if len(files) > 1 and "ts" in table.column_names and "txn_id" in table.column_names:
        table = sort_by_time(table)
    return table


def iter_batches(root: Path, batch_rows: int = BATCH_ROWS_DEFAULT,
                 columns: list[str] | None = None,
                 filter_expr: ds.Expression | None = None) -> Iterator[pa.RecordBatch]:
    """Yield the store's rows in time order as batches of at most ``batch_rows`` rows."""
    if batch_rows <= 0:
        raise ValueError("batch_rows must be positive")
    for folder in day_folders(root):
        table = read_day(folder, columns, filter_expr)
        for batch in table.to_batches(max_chunksize=batch_rows):
            if batch.num_rows:
                yield batch
