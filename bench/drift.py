"""Benchmark of feed-change detection: does canary-1 catch each kind, and stay quiet on clean data?

For each seed, the demo's recipe: a simulated store (150,000 rows over 30 days by default), the
reference stack trained on the first 20 days, the last 10 days replayed and gated with
``canary-1`` of the shipped demo plan. The clean store is replayed once (any failing check is a
false alarm); then each feed change of ``cutover/fixtures/feed_changes`` is applied to the
replay window (one segment, from a time on) and replayed. A kind is detected when the gate
fails with a feed check naming the changed field and the changed segment. Off-target counts
the failing feed checks that name neither. Prints one row per kind (detection rate, off-target
checks, median first-seen delay after the change) and the clean false-alarm rate, with the
machine's core count; ``--json`` prints the same as JSON. Timings here are noisy on a shared
machine and are not the point.

Run: .venv/bin/python bench/drift.py --seeds 1 2 3 4 5 [--rows 150000] [--json] [--kinds a b]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ROWS_DEFAULT = 150_000
SEEDS_DEFAULT = (1, 2, 3, 4, 5)
HISTORY_SHARE = 2 / 3
PHASE = "canary-1"


def _world(work: Path, rows: int, seed: int) -> tuple[Any, Path, datetime]:
    """The seed's traffic table, a model trained on its history, and the replay start."""
    from cutover.sim.traffic import START_DEFAULT, default_days, generate_table
    from cutover.stack.model import train
    from cutover.store.traffic import write_day_partitions
    table = generate_table(rows, seed)
    days = default_days(rows)
    since = datetime.combine(START_DEFAULT, datetime.min.time(), UTC) + timedelta(
        days=round(days * HISTORY_SHARE))
    store = work / f"seed{seed}" / "clean_store"
    if store.exists():
        shutil.rmtree(store)
    write_day_partitions(table, store, "part-00000")
    models = work / f"seed{seed}" / "models"
    if not models.exists():
        train(store, models, until=since, seed=seed)
    return table, models, since


def _replay_and_gate(store: Path, run: Path, models: Path, since: datetime) -> dict[str, Any]:
    from cutover.migrate.gate import evaluate
    from cutover.migrate.plan import load_policy
    from cutover.paths import fixtures_dir
    from cutover.replay.engine import run_replay
    if run.exists():
        shutil.rmtree(run)
    run_replay(store, run, candidate_options={"models": str(models)}, since=since)
    report = json.loads((run / "report.json").read_text("utf-8"))
    policy = load_policy(fixtures_dir() / "plans" / "demo.toml", PHASE)
    return evaluate(report, policy, phase=PHASE).to_dict()


def _scenario(work: Path, seed: int, path: Path, table: Any, models: Path,
              since: datetime) -> dict[str, Any]:
    from cutover.sim.feed_change import apply_change, load_change
    from cutover.store.traffic import write_day_partitions
    change = load_change(path)
    broken, info = apply_change(table, change, int(since.timestamp() * 1_000_000))
    store = work / f"seed{seed}" / f"{change.name}_store"
    if store.exists():
        shutil.rmtree(store)
    write_day_partitions(broken, store, "part-00000")
    result = _replay_and_gate(store, work / f"seed{seed}" / f"{change.name}_run", models, since)
    shutil.rmtree(store)
    fields = {change.field, change.other} - {None}
    value = str(info["segment"]).split("=", 1)[1]
    failed = [c for c in result["checks"] if not c["passed"]]
    feed = [c for c in failed if c["name"].startswith("feed ")]
    hits = [c for c in feed if any(f" {f} @" in c["name"] for f in fields) and value in c["name"]]
    off = [c for c in feed if not any(f" {f} @" in c["name"] for f in fields)
           and value not in c["name"]]
    return {"kind": change.name, "seed": seed, "segment": info["segment"], "rows": info["rows"],
            "detected": bool(hits) and not result["passed"], "off_target": len(off),
            "delay_h": _delay_h(hits, info), "first_failed": [c["name"] for c in failed[:3]]}


def _delay_h(hits: list[dict[str, Any]], info: dict[str, Any]) -> float | None:
    """Hours from the first changed row to the first-seen time the check names."""
    for check in hits:
        text = check["observed"].rsplit("first seen ", 1)[-1]
        if text != "unknown" and info.get("first_us"):
            seen = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return round((seen.timestamp() * 1e6 - int(info["first_us"])) / 3.6e9, 2)
    return None


def _summary(rows: list[dict[str, Any]], clean: list[dict[str, Any]]) -> dict[str, Any]:
    kinds: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        kinds.setdefault(r["kind"], []).append(r)
    per_kind = []
    for kind, runs in sorted(kinds.items()):
        delays = [r["delay_h"] for r in runs if r["delay_h"] is not None]
        per_kind.append({"kind": kind, "runs": len(runs),
                         "detection_rate": sum(r["detected"] for r in runs) / len(runs),
                         "off_target_checks_per_run": sum(r["off_target"] for r in runs) / len(runs),
                         "first_seen_delay_h_median": statistics.median(delays) if delays else None})
    alarms = [c for c in clean if not c["passed"]]
    return {"cores": os.cpu_count(), "kinds": per_kind,
            "clean_runs": len(clean), "clean_false_alarm_rate": len(alarms) / max(len(clean), 1),
            "clean_failed_checks": [c["failed"] for c in clean if c["failed"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS_DEFAULT))
    parser.add_argument("--rows", type=int, default=ROWS_DEFAULT)
    parser.add_argument("--kinds", nargs="*", default=None, help="scenario names (file stems)")
    parser.add_argument("--work", type=Path, default=REPO / "data" / "bench" / "drift")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from cutover.sim.feed_change import shipped_changes
    paths = [p for p in shipped_changes() if args.kinds is None or p.stem in args.kinds]
    rows, clean = [], []
    began = time.perf_counter()
    for seed in args.seeds:
        table, models, since = _world(args.work, args.rows, seed)
        result = _replay_and_gate(args.work / f"seed{seed}" / "clean_store",
                                  args.work / f"seed{seed}" / "clean_run", models, since)
        clean.append({"seed": seed, "passed": result["passed"],
                      "failed": [c["message"] for c in result["checks"] if not c["passed"]]})
        for path in paths:
            rows.append(_scenario(args.work, seed, path, table, models, since))
            if not args.json:
                r = rows[-1]
                print(f"seed {seed} {r['kind']:<22} {r['segment']:<28} rows {r['rows']:>5} "
                      f"detected {r['detected']!s:<5} off-target {r['off_target']} "
                      f"first failed {r['first_failed'][:2]}", file=sys.stderr)
    out = _summary(rows, clean) | {"seconds": round(time.perf_counter() - began, 1),
                                   "rows": args.rows, "seeds": args.seeds}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"feed-change detection at canary-1 ({args.rows:,} rows, seeds {args.seeds}, "
          f"{out['cores']} cores, {out['seconds']} s)")
    print(f"{'kind':<22} {'runs':>4} {'detected':>9} {'off-target/run':>15} {'delay h':>8}")
    for k in out["kinds"]:
        delay = "-" if k["first_seen_delay_h_median"] is None else \
            f"{k['first_seen_delay_h_median']:.2f}"
        print(f"{k['kind']:<22} {k['runs']:>4} {k['detection_rate']:>9.0%} "
              f"{k['off_target_checks_per_run']:>15.1f} {delay:>8}")
    print(f"clean runs: {out['clean_runs']}, false-alarm rate {out['clean_false_alarm_rate']:.0%}")
    for failed in out["clean_failed_checks"]:
        print(f"  clean failure: {failed}")


if __name__ == "__main__":
    main()
