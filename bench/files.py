"""Benchmark of the file readers: the authlog export and read, and NACHA, camt.053, ISO 8583.

Prints a table: lines, median seconds of several runs and lines per second for the export
(writer) and the read (reader with control totals), with the machine's CPU count; then, for
``--records`` (default 1,000,000) NACHA lines, camt.053 entries and ISO 8583 messages, the
median read rate and the peak memory of the reading process at that size and at a tenth of it
(flat memory: the reader streams). --json prints one JSON object.
Run: .venv/bin/python bench/files.py [--rows 1000000] [--records 1000000] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
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
RECORDS_DEFAULT = 1_000_000
FORMATS = ("nacha", "camt053", "iso8583")
#: One reader run may take this long on a loaded two-core machine.
READ_TIMEOUT_S = 1800


def _format_runs(tmp: Path, records: int, runs: int) -> dict:
    """Median read rate per format at ``records``, and peak RSS there and at a tenth of it."""
    import formats  # bench/formats.py, beside this file

    writers = {"nacha": formats.write_nacha, "camt053": formats.write_camt053,
               "iso8583": formats.write_iso8583}
    out = {}
    for kind in FORMATS:
        measured = {}
        for size in (max(1, records // 10), records):
            path = tmp / f"{kind}-{size}.dat"
            writers[kind](path, size)
            times = [_child(kind, path) for _ in range(runs if size == records else 1)]
            measured[size] = times
            path.unlink()
        full = measured[records]
        out[kind] = {"records": full[0]["records"],
                     "median_s": statistics.median(t["seconds"] for t in full),
                     "records_per_s": round(statistics.median(t["records_per_s"] for t in full)),
                     "peak_rss_mb": max(t["peak_rss_mb"] for t in full),
                     "peak_rss_mb_tenth": measured[max(1, records // 10)][0]["peak_rss_mb"],
                     "ok": all(t["ok"] for t in full)}
    return out


def _child(kind: str, path: Path) -> dict:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "formats.py"), kind, str(path)],
                          capture_output=True, text=True, check=True, timeout=READ_TIMEOUT_S)
    return json.loads(done.stdout.strip().splitlines()[-1])


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
    parser.add_argument("--records", type=int, default=RECORDS_DEFAULT,
                        help="NACHA lines, camt.053 entries, ISO 8583 messages per file")
    parser.add_argument("--only-formats", action="store_true",
                        help="skip the authlog export and read")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "bench"))
    with tempfile.TemporaryDirectory() as tmp:
        readers = _format_runs(Path(tmp), args.records, args.runs)
        if args.only_formats:
            return _print_formats(readers, args)
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
              "controls_ok": all(r[3] for r in runs), "authlog_mb": round(runs[0][5], 1),
              "formats": readers}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{'step':<8}{'lines':>10}{'median s':>10}{'lines/s':>12}   "
              f"({args.runs} runs, {os.cpu_count()} CPUs)")
        print(f"{'export':<8}{args.rows:>10,}{export_s:>10.2f}{result['export_lines_per_s']:>12,}")
        print(f"{'read':<8}{result['lines_read']:>10,}{read_s:>10.2f}{result['read_lines_per_s']:>12,}")
        print(f"authlog {result['authlog_mb']:.0f} MB, rejected {result['rejected']}, "
              f"controls ok {result['controls_ok']}")
        _print_formats(readers, args)
    return result


def _print_formats(readers: dict, args: argparse.Namespace) -> dict:
    if args.only_formats and args.json:
        print(json.dumps({"records": args.records, "runs": args.runs,
                          "cpu_count": os.cpu_count(), "formats": readers}))
        return readers
    print(f"{'reader':<9}{'records':>11}{'median s':>10}{'records/s':>11}{'peak MB':>9}"
          f"{'at 1/10':>9}  ok   ({args.runs} runs, {os.cpu_count()} CPUs)")
    for kind, r in readers.items():
        print(f"{kind:<9}{r['records']:>11,}{r['median_s']:>10.2f}{r['records_per_s']:>11,}"
              f"{r['peak_rss_mb']:>9.0f}{r['peak_rss_mb_tenth']:>9.0f}  {r['ok']}")
    return readers


if __name__ == "__main__":
    main()
