"""Benchmark of the batch file adapter: end-of-day export and read of a large authlog.

Prints a table: lines, median seconds of several runs and lines per second for the export
(writer) and the read (reader with control totals), with the machine's CPU count; --json prints
one JSON object. Run: .venv/bin/python bench/files.py [--rows 1000000] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cutover.adapters.files import FileReader, load_layout  # noqa: E402
from cutover.sim.eod import export_eod  # noqa: E402
from cutover.store.traffic import write_day_partitions  # noqa: E402
from tests.files_support import traffic_table  # noqa: E402

ROWS_DEFAULT = 1_000_000
BUILD_ROWS_MAX = 250_000


def _one_run(store: Path, out: Path) -> tuple[float, float, int, bool, int, float]:
    """Export the store's end-of-day files, read the authlog back; (export s, read s, ...)."""
    began = time.perf_counter()
    summary = export_eod(store, out)
    export_s = time.perf_counter() - began
    reader = FileReader(summary.authlog_path, load_layout("legacy_authlog"))
    began = time.perf_counter()
    for _ in reader.batches():
        pass
    read_s = time.perf_counter() - began
    controls_ok = all(c.ok for c in reader.report.checks)
    size_mb = summary.authlog_path.stat().st_size / 1e6
    return export_s, read_s, reader.report.read, controls_ok, reader.report.rejected, size_mb


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS_DEFAULT)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        for part, start in enumerate(range(0, args.rows, BUILD_ROWS_MAX)):
            size = min(BUILD_ROWS_MAX, args.rows - start)
            write_day_partitions(traffic_table(size, seed=part, days=1), store, f"p{part:03d}")
        runs = [_one_run(store, Path(tmp) / f"eod{i}") for i in range(args.runs)]
    export_s = statistics.median(r[0] for r in runs)
    read_s = statistics.median(r[1] for r in runs)
    result = {"rows": args.rows, "runs": args.runs, "cpu_count": os.cpu_count(),
              "export_median_s": round(export_s, 3), "export_lines_per_s": round(args.rows / export_s),
              "read_median_s": round(read_s, 3), "read_lines_per_s": round(runs[0][2] / read_s),
              "lines_read": runs[0][2], "rejected": runs[0][4],
              "controls_ok": all(r[3] for r in runs), "authlog_mb": round(runs[0][5], 1)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{'step':<8}{'lines':>10}{'median s':>10}{'lines/s':>12}   "
              f"({args.runs} runs, {os.cpu_count()} CPUs)")
        print(f"{'export':<8}{args.rows:>10,}{export_s:>10.2f}{result['export_lines_per_s']:>12,}")
        print(f"{'read':<8}{result['lines_read']:>10,}{read_s:>10.2f}{result['read_lines_per_s']:>12,}")
        print(f"authlog {result['authlog_mb']:.0f} MB, rejected {result['rejected']}, "
              f"controls ok {result['controls_ok']}")
    return result


if __name__ == "__main__":
    main()
