"""Counts per diff category, read part by part and cached, so follow mode stays cheap.

A committed part never changes (the replay writes a temp file and renames it), so each part's
counts are read once, keyed by its name, size and mtime; a poll reads only new parts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pyarrow.compute as pc
import pyarrow.parquet as pq

from cutover.domain import CATEGORIES
from cutover.tui.views.run import part_files

#: Categories that are not mismatches (see docs/contracts.md: "Mismatch means ...").
NOT_MISMATCH: Final = frozenset({"match", "quarantined"})
PARTS_MAX: Final = 1_000_000


@dataclass(frozen=True)
class PartCounts:
    """One part's rows per category, and how many of its mismatches are marked expected."""

    rows: int
    by_category: dict[str, int]
    expected_by_category: dict[str, int]

    @property
    def mismatches(self) -> int:
        """Rows in a mismatch category that no rule marked expected."""
        return sum(n - self.expected_by_category.get(c, 0)
                   for c, n in self.by_category.items() if c not in NOT_MISMATCH)


@dataclass(frozen=True)
class RunCounts:
    """The whole run so far: totals and each part's counts in batch order."""

    rows: int
    by_category: dict[str, int]
    expected_by_category: dict[str, int]
    parts: tuple[PartCounts, ...] = ()

    @property
    def mismatches(self) -> int:
        """Unexpected mismatches over the run."""
        return sum(p.mismatches for p in self.parts)

    def part_rates(self) -> list[float]:
        """Mismatch rate of each committed part: the chart when no report timeline exists."""
        return [p.mismatches / p.rows if p.rows else 0.0 for p in self.parts]


def read_part_counts(path: Path) -> PartCounts:
    """Counts of one part, reading only its category and expected columns."""
    table = pq.read_table(path, columns=["category", "expected"])
    by_category = {str(r["values"]): int(r["counts"])
                   for r in pc.value_counts(table["category"]).to_pylist()}
    marked = table.filter(pc.fill_null(table["expected"], False))
    expected = {str(r["values"]): int(r["counts"])
                for r in pc.value_counts(marked["category"]).to_pylist()} if marked.num_rows else {}
    return PartCounts(table.num_rows, by_category, expected)


@dataclass
class CountsCache:
    """Per-part counts remembered across polls; safe to use from several worker threads."""

    _seen: dict[tuple[str, int, int], PartCounts] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def counts(self, run_dir: Path) -> RunCounts:
        """Counts over every committed part of ``run_dir``."""
        parts = part_files(run_dir)[:PARTS_MAX]
        found = []
        for path in parts:
            stat = path.stat()
            key = (path.name, stat.st_size, stat.st_mtime_ns)
            with self._lock:
                cached = self._seen.get(key)
            if cached is None:
                cached = read_part_counts(path)
                with self._lock:
                    self._seen[key] = cached
            found.append(cached)
        return combine(found)


def combine(parts: list[PartCounts]) -> RunCounts:
    """Sum part counts into run totals, every category present (zero if unseen)."""
    by_category = dict.fromkeys(CATEGORIES, 0)
    expected: dict[str, int] = {}
    for part in parts:
        for category, n in part.by_category.items():
            by_category[category] = by_category.get(category, 0) + n
        for category, n in part.expected_by_category.items():
            expected[category] = expected.get(category, 0) + n
    return RunCounts(sum(p.rows for p in parts), by_category, expected, tuple(parts))
