"""Benchmark the shadow ledger's bulk apply: postings per second into SQLite and PostgreSQL.

Builds a fake run directory of DIFF parts (seeded, no card numbers) in a temp dir, applies it
to a fresh ledger RUNS times per database and prints the median. PostgreSQL runs when
--pg-url or CUTOVER_TEST_PG_URL is set, each run in a schema of its own that is dropped after.

    .venv/bin/python bench/ledger.py [--rows 200000] [--parts 8] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cutover.shadow.ledger.apply import apply_run  # noqa: E402
from cutover.shadow.ledger.uow import make_engine  # noqa: E402
from tests.ledger_support import make_diffs, write_run  # noqa: E402

ROWS_DEFAULT: Final = 200_000
PARTS_DEFAULT: Final = 8
RUNS_DEFAULT: Final = 3
TARGET_SQLITE_POSTINGS_PER_S: Final = 400_000
TARGET_POSTGRES_POSTINGS_PER_S: Final = 300_000
TARGETS: Final = {"sqlite": TARGET_SQLITE_POSTINGS_PER_S, "postgresql": TARGET_POSTGRES_POSTINGS_PER_S}


def _one_run(run_dir: Path, url: str) -> tuple[int, float]:
    engine = make_engine(url)
    summary = apply_run(engine, run_dir)
    engine.dispose()
    return summary.postings, summary.seconds


def bench_sqlite(run_dir: Path, runs: int) -> dict[str, object]:
    """Median postings/s over ``runs`` applies into fresh SQLite files."""
    rates, postings = [], 0
    for i in range(runs):
        db = run_dir.parent / f"bench-{i}.db"
        postings, seconds = _one_run(run_dir, f"sqlite:///{db}")
        rates.append(postings / seconds)
    return {"postings": postings, "postings_per_s_median": round(statistics.median(rates)),
            "postings_per_s_runs": [round(r) for r in rates]}


def bench_postgres(run_dir: Path, runs: int, base_url: str) -> dict[str, object]:
    """Median postings/s over ``runs`` applies, each into a fresh schema."""
    import sqlalchemy as sa
    admin = sa.create_engine(base_url)
    rates, postings = [], 0
    for _ in range(runs):
        schema = f"ledger_bench_{uuid.uuid4().hex[:10]}"
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        try:
            sep = "&" if "?" in base_url else "?"
            postings, seconds = _one_run(run_dir,
                                         f"{base_url}{sep}options=-csearch_path%3D{schema}")
            rates.append(postings / seconds)
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()
    return {"postings": postings, "postings_per_s_median": round(statistics.median(rates)),
            "postings_per_s_runs": [round(r) for r in rates]}


def main() -> None:
    """Parse options, run the benchmarks, print a table or one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS_DEFAULT, help="diff rows in the run")
    parser.add_argument("--parts", type=int, default=PARTS_DEFAULT, help="diffs part files")
    parser.add_argument("--runs", type=int, default=RUNS_DEFAULT, help="runs per database")
    parser.add_argument("--pg-url", default=os.environ.get("CUTOVER_TEST_PG_URL"),
                        help="PostgreSQL SQLAlchemy URL (default: $CUTOVER_TEST_PG_URL)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    per_part = args.rows // args.parts
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = write_run(Path(tmp) / "run", [make_diffs(per_part, seed=p, start=p * per_part)
                                                for p in range(args.parts)])
        result: dict[str, object] = {"rows": per_part * args.parts, "parts": args.parts,
                                     "runs": args.runs, "cores": os.cpu_count(),
                                     "load_avg_1m": round(os.getloadavg()[0], 2),
                                     "sqlite": bench_sqlite(run_dir, args.runs),
                                     "target_sqlite_postings_per_s": TARGET_SQLITE_POSTINGS_PER_S,
                                     "target_postgresql_postings_per_s":
                                         TARGET_POSTGRES_POSTINGS_PER_S}
        if args.pg_url:
            result["postgresql"] = bench_postgres(run_dir, args.runs, args.pg_url)
    if args.json:
        print(json.dumps(result))
        return
    print(f"shadow ledger apply: {result['rows']:,} diff rows in {args.parts} parts,"
          f" median of {args.runs} runs, {result['cores']} cores,"
          f" load average {result['load_avg_1m']} at the start")
    for name in ("sqlite", "postgresql"):
        if name in result:
            r = result[name]
            assert isinstance(r, dict)
            rate = int(r["postings_per_s_median"])
            gap = max(TARGETS[name] - rate, 0)
            verdict = "met" if not gap else f"MISSED by {gap:,}"
            print(f"  {name:<11} {r['postings']:>10,} postings  {rate:>9,}"
                  f" postings/s  runs {r['postings_per_s_runs']}"
                  f"  target {TARGETS[name]:,}: {verdict}")


if __name__ == "__main__":
    main()
