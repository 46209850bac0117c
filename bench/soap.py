"""Benchmark the SOAP adapter against the simulated legacy core: calls per second and throttle.

Replay against a live core is bounded by how fast zeep can build, send and parse a call, and
the throttle must hold the rate a bank agreed to. This starts the simulated core on 127.0.0.1
(server and client share this machine's cores, so the figure is a floor for a remote core),
runs ``--calls`` unthrottled calls at each worker count, then one throttled run of
``--throttle-s`` seconds at ``--rate`` calls/s and reports how far the measured rate is off.

    .venv/bin/python bench/soap.py [--calls 600] [--workers 1,4,8] [--rate 50]
                                   [--throttle-s 10] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Final

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cutover.adapters.soap import SoapAdapter, SoapOptions  # noqa: E402
from cutover.sim.legacy_server import start_server  # noqa: E402

MAPPING: Final = REPO / "cutover" / "fixtures" / "mappings" / "legacy_auth.toml"
#: High enough that the throttle never waits: the unthrottled runs measure zeep and HTTP only.
UNTHROTTLED_CALLS_PER_S: Final = 1_000_000.0
THROTTLE_TOLERANCE: Final = 0.05


def _txns(prefix: str, n: int) -> list[dict[str, Any]]:
    """``n`` canonical transactions with ids, customers and merchants of their own."""
    from datetime import UTC, datetime
    when = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    return [{"txn_id": f"{prefix}{i:07d}", "card_token": f"tok_{prefix}_{i % 500:05d}",
             "card_bin": "411111", "amount_minor": 1000 + i % 900, "currency": "USD",
             "merchant_id": f"M_{prefix}", "merchant_country": "US", "mcc": "5411",
             "channel": "ecom", "customer_id": f"C_{prefix}{i}", "ts": when}
            for i in range(n)]


def _adapter(core: Any, calls_per_s: float, in_flight_max: int) -> SoapAdapter:
    options = SoapOptions(address=core.url, calls_per_s=calls_per_s, in_flight_max=in_flight_max)
    adapter = SoapAdapter(MAPPING, wsdl=core.wsdl_url, options=options)
    adapter.authorize(_txns(f"W{time.monotonic_ns()}", 1)[0])  # connect and warm zeep
    return adapter


def calls_per_s(core: Any, calls: int, workers: int, runs: int) -> dict[str, Any]:
    """Median unthrottled calls/s over ``runs`` batches of ``calls`` on ``workers`` threads."""
    rates, errors = [], 0
    for run in range(runs):
        adapter = _adapter(core, UNTHROTTLED_CALLS_PER_S, workers)
        txns = _txns(f"B{workers}R{run}N", calls)
        started_s = time.monotonic()
        outcomes = adapter.authorize_many(txns, workers=workers)
        rates.append(calls / (time.monotonic() - started_s))
        errors += sum(o["legacy_decision"] == "error" for o in outcomes)
        adapter.close()
    return {"workers": workers, "calls": calls, "calls_per_s_median": round(statistics.median(rates)),
            "calls_per_s_runs": [round(r) for r in rates], "errors": errors}


def throttle_accuracy(core: Any, rate: float, seconds: float, workers: int) -> dict[str, Any]:
    """Run ``rate * seconds`` calls through a throttle set to ``rate``; measured rate and error."""
    adapter = _adapter(core, rate, workers)
    txns = _txns("THR", int(rate * seconds))
    started_s = time.monotonic()
    adapter.authorize_many(txns, workers=workers * 2)
    elapsed_s = time.monotonic() - started_s
    adapter.close()
    measured = len(txns) / elapsed_s
    off = (measured - rate) / rate
    return {"set_calls_per_s": rate, "calls": len(txns), "seconds": round(elapsed_s, 3),
            "measured_calls_per_s": round(measured, 2), "off_ratio": round(off, 4),
            "within_5_percent": abs(off) <= THROTTLE_TOLERANCE}


def main() -> None:
    """Parse options, run both measurements against a fresh core, print a table or JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=600, help="calls per unthrottled run")
    parser.add_argument("--workers", default="1,4,8", help="worker counts, comma separated")
    parser.add_argument("--runs", type=int, default=3, help="runs per worker count (median)")
    parser.add_argument("--rate", type=float, default=50.0, help="throttle rate, calls/s")
    parser.add_argument("--throttle-s", type=float, default=10.0, help="throttled run length")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    core = start_server(host="127.0.0.1", port=0)
    try:
        result = {"cores": os.cpu_count(),
                  "unthrottled": [calls_per_s(core, args.calls, int(w), args.runs)
                                  for w in args.workers.split(",")],
                  "throttle": throttle_accuracy(core, args.rate, args.throttle_s, 4)}
    finally:
        core.stop()
    if args.json:
        print(json.dumps(result))
        return
    print(f"SOAP adapter vs simulated core on 127.0.0.1, {result['cores']} cores shared")
    for r in result["unthrottled"]:
        print(f"  {r['workers']:>2} workers  {r['calls_per_s_median']:>6,} calls/s (median of"
              f" {len(r['calls_per_s_runs'])}: {r['calls_per_s_runs']}), errors {r['errors']}")
    t = result["throttle"]
    print(f"  throttle set {t['set_calls_per_s']:g}/s: {t['calls']} calls in {t['seconds']} s ="
          f" {t['measured_calls_per_s']}/s ({t['off_ratio']:+.2%}),"
          f" within 5%: {t['within_5_percent']}")


if __name__ == "__main__":
    main()
