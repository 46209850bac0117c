"""Benchmark `cutover mirror`: the p99 it adds to the legacy path at 300 requests/s, and
requests lost, with the candidate healthy, slow (200 ms a call) and down.

Starts the simulated legacy core, `cutover serve` (healthy, and slowed by 200 ms) and, per
scenario, `cutover mirror` as separate processes on 127.0.0.1; drives ``--rate`` requests/s
for ``--seconds`` with `cutover load`'s engine, first straight at the core (the baseline),
then through the mirror. "added p99" is the mirror's p99 minus the baseline's; "lost" counts
client requests that failed plus copies the mirror neither committed nor counted as dropped.
Everything shares this machine's two cores, so the figures are noisy upper bounds.

    .venv/bin/python bench/mirror.py [--rate 300] [--seconds 10] [--runs 1] [--json]
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
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402

from bench.live_support import SINCE, free_port, start, stop, train  # noqa: E402

MAPPING: Final = Path(__file__).resolve().parents[1] / "cutover/fixtures/mappings/legacy_auth.toml"
ADMIN_TOKEN: Final = "bench-admin-token"  # noqa: S105 - a throwaway token for a local bench
SETTLE_S_MAX: Final = 60.0


def _rows(store: Path, n: int, tag: str) -> list[dict[str, Any]]:
    from cutover.mirror.load import read_rows
    rows = read_rows(store, SINCE, None, n)
    return [r | {"txn_id": f"{tag}-{r['txn_id']}"} for r in rows]


def _load(url: str, rows: list[dict[str, Any]], rate: float) -> dict[str, Any]:
    from cutover.mirror.load import run_load
    return run_load(rows, url, MAPPING, rate_per_s=rate, senders=32).as_dict()


def _admin(url: str, path: str, method: str = "GET") -> dict[str, Any]:
    reply = requests.request(method, url + path, timeout=10,
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    return dict(reply.json())


def _settle(url: str) -> dict[str, Any]:
    """Flush the mirror and wait until every copy it received is committed or counted."""
    _admin(url, "/admin/flush", "POST")
    deadline_s = time.monotonic() + SETTLE_S_MAX
    while True:
        s = _admin(url, "/admin/status")
        counted = s["committed"] + s["duplicates"] + s["dropped_queue_full"] + s["unreadable"]
        if (counted >= s["received"] and s["queued"] == 0) or time.monotonic() > deadline_s:
            return s
        time.sleep(0.2)


def scenario(name: str, candidate: str, legacy_wsdl: str, store: Path, root: Path,
             rate: float, seconds: float, env: dict[str, str]) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(["mirror", "--wsdl", legacy_wsdl, "--mapping", str(MAPPING), "--out",
                  str(root / f"run-{name}"), "--candidate", candidate, "--port", str(port)],
                 url + "/admin/status", env)
    try:
        load = _load(url, _rows(store, int(rate * seconds), f"M{name}"), rate)
        status = _settle(url)
    finally:
        stop(proc)
    lost = (load["sent"] - load["ok"]) + (status["received"] - status["committed"]
                                          - status["duplicates"] - status["dropped_queue_full"]
                                          - status["unreadable"])
    checkpoint = json.loads((root / f"run-{name}" / "checkpoint.json").read_text())
    return {"candidate": name, "load": load, "lost": lost,
            "copies_dropped": status["dropped_queue_full"], "committed": status["committed"],
            "candidate_errors": checkpoint["by_category"].get("candidate_error", 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000, help="rows generated over 8 days")
    parser.add_argument("--rate", type=float, default=300.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--runs", type=int, default=1, help="baseline runs (median p99)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    env = dict(os.environ, CUTOVER_TOKEN_KEY="bench-key-not-secret",
               CUTOVER_ADMIN_TOKEN=ADMIN_TOKEN)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store, models = train(root, args.rows)
        core_port, healthy_port, slow_port = free_port(), free_port(), free_port()
        core_url = f"http://127.0.0.1:{core_port}"
        procs = [start(["sim", "legacy", "--port", str(core_port)], core_url + "/wsdl", env),
                 start(["serve", "--port", str(healthy_port), "--candidate-opt",
                        f"models={models}"], f"http://127.0.0.1:{healthy_port}/healthz", env),
                 start(["serve", "--port", str(slow_port), "--candidate",
                        "bench.live_support:slow_stack", "--candidate-opt", f"models={models}"],
                       f"http://127.0.0.1:{slow_port}/healthz", env)]
        try:
            n = int(args.rate * args.seconds)
            base = [_load(core_url, _rows(store, n, f"B{i}"), args.rate)
                    for i in range(args.runs)]
            base_p99 = statistics.median(b["latency_ms"]["p99"] for b in base)
            candidates = {"healthy": f"http://127.0.0.1:{healthy_port}",
                          "slow_200ms": f"http://127.0.0.1:{slow_port}",
                          "down": f"http://127.0.0.1:{free_port()}"}
            rows = [scenario(name, url, core_url + "/soap?wsdl", store, root, args.rate,
                             args.seconds, env) for name, url in candidates.items()]
        finally:
            for proc in procs:
                stop(proc)
    for r in rows:
        r["added_p99_ms"] = round(r["load"]["latency_ms"]["p99"] - base_p99, 3)
    result = {"cores": os.cpu_count(), "rate_per_s": args.rate, "seconds": args.seconds,
              "baseline": {"p50_ms": base[0]["latency_ms"]["p50"], "p99_ms": base_p99,
                           "errors": base[0]["errors"]}, "scenarios": rows}
    if args.json:
        print(json.dumps(result))
        return
    print(f"cutover mirror at {args.rate:g} requests/s for {args.seconds:g} s,"
          f" {result['cores']} cores shared by core, candidate, mirror and client")
    print(f"  straight to the core: p50 {result['baseline']['p50_ms']} ms, p99 {base_p99} ms")
    print(f"  {'candidate':<11} {'p50 ms':>7} {'p99 ms':>7} {'added p99':>9} {'lost':>5}"
          f" {'dropped':>7} {'committed':>9} {'cand. errors':>12}")
    for r in rows:
        lat = r["load"]["latency_ms"]
        print(f"  {r['candidate']:<11} {lat['p50']:>7} {lat['p99']:>7} {r['added_p99_ms']:>9}"
              f" {r['lost']:>5} {r['copies_dropped']:>7} {r['committed']:>9}"
              f" {r['candidate_errors']:>12}")


if __name__ == "__main__":
    main()
