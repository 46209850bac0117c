"""Benchmark of the batch file adapter: end-of-day export and read of a large authlog.

Prints a results table: rows, seconds and lines per second for the export (writer) and the
read (reader with controls). Run: .venv/bin/python bench/files.py [ROWS] (default 1,000,000).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cutover.adapters.files import FileReader, load_layout  # noqa: E402
from cutover.replay.store import write_day_partitions  # noqa: E402
from cutover.sim.eod import export_eod  # noqa: E402
from tests.files_support import traffic_table  # noqa: E402

ROWS_DEFAULT = 1_000_000
BUILD_ROWS_MAX = 250_000


def main(rows: int) -> None:
    """Build a store of ``rows`` transactions, export it, read the authlog back; print timings."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        for part, start in enumerate(range(0, rows, BUILD_ROWS_MAX)):
            size = min(BUILD_ROWS_MAX, rows - start)
            write_day_partitions(traffic_table(size, seed=part, days=1), store, f"p{part:03d}")
        began = time.perf_counter()
        summary = export_eod(store, Path(tmp) / "eod")
        export_s = time.perf_counter() - began
        reader = FileReader(summary.authlog_path, load_layout("legacy_authlog"))
        began = time.perf_counter()
        for _ in reader.batches():
            pass
        read_s = time.perf_counter() - began
        size_mb = summary.authlog_path.stat().st_size / 1e6
        print(f"{'step':<8}{'lines':>10}{'seconds':>10}{'lines/s':>12}")
        print(f"{'export':<8}{rows:>10}{export_s:>10.2f}{rows / export_s:>12,.0f}")
        print(f"{'read':<8}{reader.report.read:>10}{read_s:>10.2f}"
              f"{reader.report.read / read_s:>12,.0f}")
        print(f"authlog {size_mb:.0f} MB, rejected {reader.report.rejected},"
              f" controls ok {all(c.ok for c in reader.report.checks)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else ROWS_DEFAULT)
