"""Benchmark the reference stack: decide_batch rows/s, single decide p50/p99, reason-code cost.

Generates a simulated traffic store (or reuses --store), trains a model on it (or reuses
--models), then RUNS times: a fresh stack decides the whole store batch by batch the way replay
feeds it (labels and gateway outcomes of each batch first, then decide_batch), timed around
decide_batch only.
Single decisions are timed one by one over a sample, after the online state has seen the rows
before it. Exact (TreeSHAP) and approximate contributions are timed per row on a sample.

    .venv/bin/python bench/decide.py [--rows 500000] [--days 10] [--runs 3] [--single 5000] [--json]
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
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from cutover.stack import default_stack  # noqa: E402
from cutover.store.traffic import iter_batches  # noqa: E402

ROWS_DEFAULT: Final = 500_000
DAYS_DEFAULT: Final = 10
RUNS_DEFAULT: Final = 3
SINGLE_DEFAULT: Final = 5_000
CONTRIB_ROWS: Final = 500
TARGET_BATCH_ROWS_PER_S: Final = 100_000
TARGET_SINGLE_P99_MS: Final = 2.0
HIDDEN: Final = ("is_fraud", "chargeback", "label_ts", "gateway_ok")


def _request(batch: pa.RecordBatch) -> pa.RecordBatch:
    return batch.select([n for n in batch.schema.names
                         if not n.startswith("legacy_") and n not in HIDDEN])


def _labels(batch: pa.RecordBatch) -> pa.RecordBatch:
    return batch.select(["txn_id", "merchant_id", "label_ts", "is_fraud"])


def _observe(stack, batch: pa.RecordBatch) -> None:
    """What replay passes before a batch: its labels and its recorded gateway outcomes."""
    stack.observe_labels(_labels(batch))
    stack.observe_outcomes(pa.RecordBatch.from_arrays(
        [batch.column("ts"), batch.column("legacy_route"), batch.column("gateway_ok")],
        names=["ts", "gateway", "gateway_ok"]))


def batch_run(store: Path, models: Path) -> dict[str, float]:
    """One pass over the store through a fresh stack; seconds inside decide_batch."""
    stack = default_stack(models)
    rows, decide_s, decide_cpu_s, labels_s = 0, 0.0, 0.0, 0.0
    for batch in iter_batches(store):
        start = time.perf_counter()
        _observe(stack, batch)
        labels_s += time.perf_counter() - start
        request = _request(batch)
        start, start_cpu = time.perf_counter(), time.process_time()
        stack.decide_batch(request)
        decide_s += time.perf_counter() - start
        decide_cpu_s += time.process_time() - start_cpu
        rows += batch.num_rows
    return {"rows": rows, "decide_s": decide_s, "decide_cpu_s": decide_cpu_s, "labels_s": labels_s}


def single_run(store: Path, models: Path, n: int) -> list[float]:
    """Latency (ms) of ``n`` single decisions on the first rows of the store, in order."""
    stack = default_stack(models)
    times: list[float] = []
    for batch in iter_batches(store, batch_rows=min(n, 65_536)):
        _observe(stack, batch)
        for txn in _request(batch).to_pylist():
            start = time.perf_counter()
            stack.decide(txn)
            times.append((time.perf_counter() - start) * 1e3)
            if len(times) >= n:
                return times
    return times


def contrib_costs(store: Path, models: Path) -> dict[str, float]:
    """µs per row of approximate and exact contributions on a sample of real features."""
    stack = default_stack(models)
    batch = next(iter_batches(store, batch_rows=20_000))
    X = stack.features(_request(batch))[:CONTRIB_ROWS]
    out = {}
    for method in ("approx_contribs", "pred_contribs"):
        stack.contributions(X[:10], method)
        start = time.perf_counter()
        stack.contributions(X, method)
        out[method] = (time.perf_counter() - start) * 1e6 / len(X)
    start = time.perf_counter()
    for _ in range(5):
        stack.booster.inplace_predict(X)
    out["predict"] = (time.perf_counter() - start) * 1e6 / (5 * len(X))
    return out


def prepare(args: argparse.Namespace, tmp: Path) -> tuple[Path, Path]:
    store = Path(args.store) if args.store else tmp / "store"
    if not args.store:
        from cutover.sim.traffic import generate

        generate(store, args.rows, seed=1, days=args.days)
    models = Path(args.models) if args.models else tmp / "models"
    if not args.models:
        from cutover.stack.model import train

        train(store, models, seed=0)
    return store, models


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS_DEFAULT)
    parser.add_argument("--days", type=int, default=DAYS_DEFAULT)
    parser.add_argument("--runs", type=int, default=RUNS_DEFAULT)
    parser.add_argument("--single", type=int, default=SINGLE_DEFAULT)
    parser.add_argument("--store", help="reuse this traffic store instead of generating one")
    parser.add_argument("--models", help="reuse this model registry instead of training")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-decide-") as tmp:
        store, models = prepare(args, Path(tmp))
        runs = [batch_run(store, models) for _ in range(args.runs)]
        single = single_run(store, models, args.single)
        costs = contrib_costs(store, models)
    rates = [r["rows"] / r["decide_s"] for r in runs]
    cpu_rates = [r["rows"] / r["decide_cpu_s"] for r in runs]
    result = {
        "cpu_count": os.cpu_count(), "rows": runs[0]["rows"], "runs": args.runs,
        "decide_batch_rows_per_s": round(statistics.median(rates)),
        "decide_batch_rows_per_s_all": [round(r) for r in rates],
        # Rows per second of process CPU time: what one free core gives, robust to neighbours.
        "decide_batch_rows_per_cpu_s": round(statistics.median(cpu_rates)),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "observe_labels_s": round(statistics.median(r["labels_s"] for r in runs), 3),
        "single_n": len(single),
        "single_p50_ms": round(float(np.percentile(single, 50)), 3),
        "single_p99_ms": round(float(np.percentile(single, 99)), 3),
        "contrib_us_per_row": {k: round(v, 2) for k, v in costs.items()},
    }
    result["ok"] = (result["decide_batch_rows_per_s"] >= TARGET_BATCH_ROWS_PER_S
                    and result["single_p99_ms"] <= TARGET_SINGLE_P99_MS)
    if args.json:
        print(json.dumps(result))
    else:
        _print(result)
    return 0


def _print(r: dict) -> None:
    lines = [
        f"cpus {r['cpu_count']}, {r['rows']:,} rows, median of {r['runs']} runs",
        f"decide_batch        {r['decide_batch_rows_per_s']:>12,} rows/s   "
        f"(target >= {TARGET_BATCH_ROWS_PER_S:,}; runs {r['decide_batch_rows_per_s_all']})",
        f"decide_batch (CPU)  {r['decide_batch_rows_per_cpu_s']:>12,} rows per CPU second"
        f"   (load average {r['load_avg_1m']})",
        f"observe_labels      {r['observe_labels_s']:>12} s per pass",
        f"decide p50          {r['single_p50_ms']:>12} ms",
        f"decide p99          {r['single_p99_ms']:>12} ms   (target <= {TARGET_SINGLE_P99_MS} ms,"
        f" n={r['single_n']:,})",
    ]
    lines += [f"{k:<19} {v:>12} µs/row" for k, v in r["contrib_us_per_row"].items()]
    lines.append("targets met" if r["ok"] else "TARGETS NOT MET")
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
