"""Benchmark `cutover serve`: /decide p99, /decide-batch rows/s, and HTTP replay txn/s.

Trains a small model, starts `cutover serve` as its own process on 127.0.0.1, then measures
single decisions one after another (``--calls``), Arrow batches of ``--batch-rows``, and a
whole replay of the store's last four days with ``--candidate http://...`` beside the same
replay in process. Client and server share this machine's cores.

    .venv/bin/python bench/serve.py [--rows 60000] [--calls 1000] [--runs 3] [--json]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import requests  # noqa: E402

from bench.live_support import SINCE, free_port, start, stop, train  # noqa: E402


def decide_latency(url: str, store: Path, calls: int) -> dict[str, float]:
    """p50/p99 ms of ``calls`` sequential POST /decide over one keep-alive connection."""
    from cutover.adapters.wire import REQUEST, json_ready
    from tests.serve_support import store_rows
    rows = [json_ready({k: r[k] for k in REQUEST.names}) for r in store_rows(store, SINCE, calls)]
    http = requests.Session()
    ms = []
    for row in rows:
        started_s = time.perf_counter()
        reply = http.post(url + "/decide", json=row, timeout=10)
        ms.append((time.perf_counter() - started_s) * 1000)
        reply.raise_for_status()
    return {"calls": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def batch_rows_per_s(url: str, store: Path, batch_rows: int, runs: int) -> dict[str, float]:
    """Median rows/s of POST /decide-batch (Arrow IPC) over ``runs`` batches."""
    from cutover.adapters.wire import ARROW_TYPE, REQUEST, to_ipc
    from cutover.store.filters import Narrowing, parse_when
    from cutover.store.stream import iter_input
    table = next(iter_input(store, Narrowing(parse_when(SINCE), None, None, None, batch_rows),
                            batch_rows)).select(REQUEST.names).cast(REQUEST)
    body = to_ipc(table)
    rates = []
    for _ in range(runs):
        # A fresh session each run: the stack's look-back refuses rows older than it has seen.
        sid = requests.post(url + "/sessions", timeout=60).json()["session"]
        started_s = time.perf_counter()
        reply = requests.post(url + "/decide-batch", data=body, timeout=60,
                              headers={"Content-Type": ARROW_TYPE, "X-Cutover-Session": sid})
        reply.raise_for_status()
        rates.append(table.num_rows / (time.perf_counter() - started_s))
    return {"batch_rows": table.num_rows, "rows_per_s_median": round(statistics.median(rates)),
            "rows_per_s_runs": [round(r) for r in rates]}


def replay_txn_per_s(url: str, store: Path, models: Path, root: Path, runs: int
                     ) -> dict[str, object]:
    """Median txn/s of a full replay over HTTP and in process (same store, same window)."""
    from cutover.replay.engine import run_replay
    http, local = [], []
    for run in range(runs):
        s = run_replay(store, root / f"http{run}", candidate=url, since=SINCE, report=False)
        http.append(s.rows_per_s)
        assert s.by_category["candidate_error"] == 0, s.by_category
        s = run_replay(store, root / f"local{run}", candidate_options={"models": str(models)},
                       since=SINCE, report=False)
        local.append(s.rows_per_s)
    return {"rows": s.rows_in, "http_txn_per_s_median": round(statistics.median(http)),
            "http_runs": [round(r) for r in http],
            "in_process_txn_per_s_median": round(statistics.median(local))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000, help="rows generated over 8 days")
    parser.add_argument("--calls", type=int, default=1_000, help="single /decide calls")
    parser.add_argument("--batch-rows", type=int, default=16_384, help="rows per /decide-batch")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store, models = train(root, args.rows)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start(["serve", "--port", str(port), "--candidate-opt", f"models={models}"],
                     url + "/healthz")
        try:
            result = {"cores": os.cpu_count(),
                      "decide": decide_latency(url, store, args.calls),
                      "decide_batch": batch_rows_per_s(url, store, args.batch_rows, args.runs),
                      "replay": replay_txn_per_s(url, store, models, root, args.runs)}
        finally:
            stop(proc)
    if args.json:
        print(json.dumps(result))
        return
    d, b, r = result["decide"], result["decide_batch"], result["replay"]
    print(f"cutover serve on 127.0.0.1, {result['cores']} cores shared by client and server")
    print(f"  POST /decide        p50 {d['p50_ms']} ms  p99 {d['p99_ms']} ms ({d['calls']} calls)")
    print(f"  POST /decide-batch  {b['rows_per_s_median']:,} rows/s (median of"
          f" {len(b['rows_per_s_runs'])} batches of {b['batch_rows']:,}: {b['rows_per_s_runs']})")
    print(f"  replay over HTTP    {r['http_txn_per_s_median']:,} txn/s (runs {r['http_runs']};"
          f" {r['rows']:,} rows); in process {r['in_process_txn_per_s_median']:,} txn/s")


if __name__ == "__main__":
    main()
