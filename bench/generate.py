"""Benchmark of the traffic generator: rows per second writing a store, and peak memory.

Each run builds the world from scratch (caches cleared) and writes a fresh store in a
temporary directory. Prints a table (median of K runs, rows/s, peak RSS, CPUs); with --json
one JSON object of the same figures.

Run: .venv/bin/python bench/generate.py --rows 1000000 --repeat 3 [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cutover.sim import traffic, world  # noqa: E402

ROWS_DEFAULT = 1_000_000
REPEAT_DEFAULT = 3
SEED = 42


def _peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux (bytes on macOS).
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / scale / 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_once(rows: int, seed: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) to generate ``rows`` into a fresh store, world included.

    CPU seconds are reported too because wall time on a shared machine includes waiting.
    """
    world.build_world.cache_clear()
    traffic._lookups.cache_clear()
    with tempfile.TemporaryDirectory() as tmp:
        began, cpu_began = time.perf_counter(), _cpu_s()
        summary = traffic.generate(Path(tmp) / "store", rows, seed)
        seconds, cpu_s = time.perf_counter() - began, _cpu_s() - cpu_began
    if summary.rows != rows:
        raise SystemExit(f"generated {summary.rows} rows, expected {rows}")
    return seconds, cpu_s


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS_DEFAULT)
    parser.add_argument("--repeat", type=int, default=REPEAT_DEFAULT)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.rows <= 0 or args.repeat <= 0:
        parser.error("--rows and --repeat must be positive")
    runs = [run_once(args.rows, args.seed) for _ in range(args.repeat)]
    median_s = statistics.median(wall for wall, _ in runs)
    result = {"rows": args.rows, "days": traffic.default_days(args.rows), "repeat": args.repeat,
              "median_s": round(median_s, 3), "min_s": round(min(w for w, _ in runs), 3),
              "median_cpu_s": round(statistics.median(cpu for _, cpu in runs), 3),
              "rows_per_s": round(args.rows / median_s),
              "peak_rss_mib": round(_peak_rss_mib(), 1), "cpu_count": os.cpu_count()}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{'rows':>10}{'days':>6}{'runs':>6}{'median s':>10}{'cpu s':>8}{'rows/s':>12}"
              f"{'peak RSS MiB':>14}{'cpus':>6}")
        print(f"{result['rows']:>10,}{result['days']:>6}{result['repeat']:>6}"
              f"{result['median_s']:>10.2f}{result['median_cpu_s']:>8.2f}{result['rows_per_s']:>12,}"
              f"{result['peak_rss_mib']:>14.1f}{result['cpu_count']:>6}")
    return result


if __name__ == "__main__":
    main()
