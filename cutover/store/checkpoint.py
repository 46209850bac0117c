"""Checkpoints: which batches of a replay are committed, written so a kill never half-writes one.

A batch is committed in this order: its decisions and diffs parts are written (each to a
temporary name, fsynced, renamed), then ``checkpoint.json`` is replaced the same way. A kill
before the rename of the checkpoint leaves the previous checkpoint, so the batch is redone on
resume and its part files are simply overwritten. The checkpoint also holds a fingerprint of
what was asked (store, candidate, rules, narrowing, batch size): resuming with different
options would splice two different runs together, so it is refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from cutover.errors import StoreError

CHECKPOINT_FILE: Final = "checkpoint.json"
CHECKPOINT_VERSION: Final = 1
PART_DIGITS: Final = 6


def part_name(batch_no: int) -> str:
    """``part-NNNNNN.parquet`` for a batch number."""
    return f"part-{batch_no:0{PART_DIGITS}d}.parquet"


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON to a temporary file, fsync it, rename it over ``path``, fsync the folder."""
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    _fsync_dir(path.parent)


#: Columns with few distinct values, dictionary-encoded; ids and numbers are not, because
#: building a dictionary of 65,536 distinct txn_ids costs more than it saves.
DICTIONARY_COLUMNS: Final = ("category", "severity", "fields", "currency", "merchant_id",
                             "merchant_country", "channel", "mcc", "legacy_decision",
                             "legacy_reason", "legacy_route", "candidate_decision",
                             "candidate_reason", "candidate_route", "quarantine_reason",
                             "decision", "reason_codes", "route", "retry_plan", "model_version")
#: Min/max statistics only where readers filter (drill-down by txn_id, windows by ts).
STATISTICS_COLUMNS: Final = ("txn_id", "ts", "category")


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    """Write a Parquet file under a temporary name, fsync it and rename it into place."""
    temp = path.with_name(f".{path.name}.tmp")
    names = set(table.column_names)
    pq.write_table(table, temp, compression="zstd", compression_level=1,
                   use_dictionary=[c for c in DICTIONARY_COLUMNS if c in names],
                   write_statistics=[c for c in STATISTICS_COLUMNS if c in names])
    with open(temp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, path)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Checkpoint:
    """What is committed: batches ``0 .. batches_committed - 1`` and their totals."""

    fingerprint: str
    batches_committed: int = 0
    rows_in: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    expected_by_category: dict[str, int] = field(default_factory=dict)
    finished: bool = False
    rules_toml: str = ""
    version: int = CHECKPOINT_VERSION

    def as_dict(self) -> dict[str, Any]:
        """Plain data for checkpoint.json."""
        return asdict(self)


def read_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The run's checkpoint, or None when it has none yet."""
    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Checkpoint(fingerprint=str(data["fingerprint"]),
                          batches_committed=int(data["batches_committed"]),
                          rows_in=int(data["rows_in"]),
                          by_category={str(k): int(v) for k, v in data["by_category"].items()},
                          expected_by_category={str(k): int(v) for k, v in
                                                data["expected_by_category"].items()},
                          finished=bool(data["finished"]), rules_toml=str(data["rules_toml"]),
                          version=int(data["version"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{path}: unreadable checkpoint ({exc}); start over with --force") from exc


def write_checkpoint(run_dir: Path, checkpoint: Checkpoint) -> None:
    """Replace checkpoint.json atomically."""
    write_json_atomic(Path(run_dir) / CHECKPOINT_FILE, checkpoint.as_dict())


def remove_uncommitted_parts(run_dir: Path, batches_committed: int) -> int:
    """Delete part files (and temporaries) a killed run left beyond the committed batches."""
    removed = 0
    for sub in ("decisions", "diffs"):
        folder = Path(run_dir) / sub
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            stem = path.name.lstrip(".").removeprefix("part-").split(".")[0]
            if path.name.startswith(".") or (stem.isdigit() and int(stem) >= batches_committed):
                path.unlink()
                removed += 1
    return removed
