"""Benchmark of replay: end-to-end txn/s through the reference stack, beside a per-txn harness.

Generates (or reuses, under data/bench/) a traffic store and a model trained on its first
part, then replays the store K times through ``cutover.stack:default_stack``, each run in a
fresh subprocess so its peak RSS is its own; the time is end to end (read, legacy side,
candidate, diff, write, checkpoints, report.json and report.md with charts). In the same run it
times the per-transaction harness (``cutover.shadow.harness``: candidate.decide per request,
deepdiff per pair) on a sample of the same store and extrapolates its rate: the harness on the
whole store would take hours. When the reference stack cannot be loaded, the test candidate
of tests/replay_support.py is used instead, and the output says so.

With ``--engine ray`` it also replays the same store K times through the Ray engine on a local
Ray instance started in each child (``--workers`` CPUs), after the local runs, and reports
both: the Ray replay time with Ray already up, Ray's start-up time separately, the overhead
against the local engine, and whether the two engines' outputs are equal (sorted diffs and
decisions without the latency columns, report without run metadata). On one machine Ray is
expected to cost, not gain: the point is to measure how much. Peak RSS of a Ray run is the
driver's only; the workers are other processes.

Run: .venv/bin/python bench/replay.py --rows 1000000 --repeat 3 [--json] [--engine local|ray]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ROWS_DEFAULT = 1_000_000
REPEAT_DEFAULT = 3
HARNESS_ROWS_DEFAULT = 2_000
SEED = 42
STACK = "cutover.stack:default_stack"
FALLBACK = "tests.replay_support:mirror_candidate"
#: The model is trained on the first quarter of the store's days (labels known by then).
TRAIN_SHARE = 0.25
#: Targets of issue 20 / DESIGN.md: end-to-end rate, and the multiple of the per-txn harness.
TARGET_TXN_PER_S = 250_000
TARGET_SPEEDUP_X = 200

CHILD = """
import json, os, resource, sys, time
from pathlib import Path
store, out, candidate, options = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
engine, workers = sys.argv[5], int(sys.argv[6])
init_s = 0.0
if engine == "ray":
    import ray
    from cutover.replay.ray_engine import run_replay_ray as run
    began = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
             object_store_memory=256 * 1024 * 1024)
    init_s = time.perf_counter() - began
else:
    from cutover.replay.engine import run_replay as run
began, cpu = time.perf_counter(), time.process_time()
summary = run(Path(store), Path(out), candidate=candidate, candidate_options=options,
              force=True)
print(json.dumps({"seconds": time.perf_counter() - began, "cpu_s": time.process_time() - cpu,
                  "init_s": init_s, "rows": summary.rows_in,
                  "conservation_ok": summary.conservation_ok, "timings_s": summary.timings_s,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _store(data: Path, rows: int, seed: int) -> Path:
    from cutover.sim.traffic import generate
    store = data / f"store-{rows}-{seed}"
    if not (store / ".complete").is_file():
        generate(store, rows, seed)
        (store / ".complete").write_text("ok\n")
    return store


def _models(data: Path, store: Path, rows: int, seed: int) -> tuple[Path | None, str]:
    """A trained model for the store, or (None, why) when the stack cannot be used."""
    import shutil
    models = data / f"models-{rows}-{seed}"
    try:
        from cutover.adapters.candidate import load_candidate
        for attempt in range(2):
            if not (models / "LATEST").is_file():
                _train(store, models)
            try:
                load_candidate(STACK, {"models": str(models)})
                return models, ""
            except Exception:
                if attempt:
                    raise
                # A model from an older feature set: train again once.
                shutil.rmtree(models)
        raise AssertionError("unreachable")
    except Exception as exc:  # the bench must still run and say what it measured
        return None, f"{type(exc).__name__}: {exc}"


def _train(store: Path, models: Path) -> None:
    from cutover.stack.model import train
    from cutover.store.traffic import day_folders
    days = day_folders(store)
    first = datetime.strptime(days[0].name.removeprefix("day="), "%Y-%m-%d")
    until = first + timedelta(days=max(1, int(len(days) * TRAIN_SHARE)))
    train(store, models, until=until.replace(tzinfo=UTC), seed=0)


def _replay_once(store: Path, candidate: str, options: dict[str, str], out: Path,
                 engine: str = "local", workers: int = 2) -> dict:
    # The token auth Ray 2.60 turns on by default is for shared clusters; a bench instance
    # that lives for one run on this machine does without (docs/ray.md).
    env = os.environ | {"RAY_AUTH_MODE": "disabled"}
    result = subprocess.run([sys.executable, "-c", CHILD, str(store), str(out), candidate,
                             json.dumps(options), engine, str(workers)], cwd=REPO, env=env,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"replay ({engine}) failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _same_output(a: Path, b: Path) -> bool:
    """The two runs' sorted diffs and decisions (latency columns aside) and reports (run
    metadata and measured latency aside) are equal."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    latency = ("legacy_latency_ms", "candidate_latency_ms", "latency_us")
    for sub in ("diffs", "decisions"):
        tables = []
        for run in (a, b):
            parts = sorted((run / sub).glob("part-*.parquet"))
            table = pa.concat_tables([pq.read_table(p) for p in parts])
            tables.append(table.drop_columns([c for c in latency if c in table.column_names])
                          .sort_by("txn_id"))
        if not tables[0].equals(tables[1]):
            return False
    reports = [json.loads((run / "report.json").read_text()) for run in (a, b)]
    # Latency is measured per run (two local runs differ too), so it is not compared.
    kept = [{k: v for k, v in r.items() if k not in ("run", "latency_ms")} for r in reports]
    return kept[0] == kept[1]


def _engine_runs(store: Path, candidate: str, options: dict[str, str], args: argparse.Namespace,
                 tmp: Path, engine: str) -> list[dict]:
    return [_replay_once(store, candidate, options, tmp / engine, engine, args.workers)
            for _ in range(args.repeat)]


def _ray_section(local_runs: list[dict], ray_runs: list[dict], rows: int, same: bool) -> dict:
    local_s = statistics.median(r["seconds"] for r in local_runs)
    ray_s = statistics.median(r["seconds"] for r in ray_runs)
    init_s = statistics.median(r["init_s"] for r in ray_runs)
    return {"median_s": round(ray_s, 3), "rows_per_s": round(rows / ray_s),
            "init_median_s": round(init_s, 3),
            "rows_per_s_with_init": round(rows / (ray_s + init_s)),
            "overhead_x": round(ray_s / local_s, 2),
            "overhead_with_init_x": round((ray_s + init_s) / local_s, 2),
            "median_cpu_s_driver": round(statistics.median(r["cpu_s"] for r in ray_runs), 3),
            "peak_rss_mib_driver": round(max(r["peak_rss_mib"] for r in ray_runs), 1),
            "conservation_ok": all(r["conservation_ok"] for r in ray_runs),
            "stage_timings_s": ray_runs[len(ray_runs) // 2]["timings_s"],
            "outputs_equal_local": same}


def _harness(store: Path, candidate: str, options: dict[str, str], rows: int) -> dict:
    from cutover.shadow.harness import run_harness
    result = run_harness(store, candidate, options, rows_max=rows)
    return {"rows": result.rows, "seconds": round(result.seconds, 3),
            "rows_per_s": round(result.rows_per_s, 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS_DEFAULT)
    parser.add_argument("--repeat", type=int, default=REPEAT_DEFAULT)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--harness-rows", type=int, default=HARNESS_ROWS_DEFAULT)
    parser.add_argument("--engine", default="local", choices=["local", "ray"])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="CPUs of the local Ray instance (--engine ray)")
    parser.add_argument("--data", type=Path, default=REPO / "data" / "bench")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.rows <= 0 or args.repeat <= 0 or args.harness_rows <= 0:
        parser.error("--rows, --repeat and --harness-rows must be positive")
    store = _store(args.data, args.rows, args.seed)
    models, why = _models(args.data, store, args.rows, args.seed)
    candidate, options = (STACK, {"models": str(models)}) if models else (FALLBACK, {})
    with tempfile.TemporaryDirectory() as tmp:
        runs = _engine_runs(store, candidate, options, args, Path(tmp), "local")
        ray_runs = _engine_runs(store, candidate, options, args, Path(tmp), "ray") \
            if args.engine == "ray" else []
        same = _same_output(Path(tmp) / "local", Path(tmp) / "ray") if ray_runs else None
    harness = _harness(store, candidate, options, args.harness_rows)
    median_s = statistics.median(r["seconds"] for r in runs)
    rate = args.rows / median_s
    result = {
        "rows": args.rows, "repeat": args.repeat, "engine": args.engine, "candidate": candidate,
        "candidate_note": why or "reference stack", "median_s": round(median_s, 3),
        "median_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
        "rows_per_s": round(rate), "peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs), 1),
        "cpu_count": os.cpu_count(), "conservation_ok": all(r["conservation_ok"] for r in runs),
        "stage_timings_s": runs[len(runs) // 2]["timings_s"],
        "harness": harness | {"note": f"measured on the first {harness['rows']:,} rows and"
                                      " extrapolated (the harness is linear in rows)"},
        "speedup": round(rate / harness["rows_per_s"], 1) if harness["rows_per_s"] else None,
        # Rows per second of the replay process's CPU time: what the code costs, robust to
        # neighbours taking the cores (wall time is not, on a shared machine).
        "rows_per_cpu_s": round(args.rows / statistics.median(r["cpu_s"] for r in runs)),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    result["targets"] = _targets(result)
    if ray_runs:
        result["ray"] = _ray_section(runs, ray_runs, args.rows, bool(same)) | {
            "workers": args.workers}
    _print(result, args.json)
    return result


def _targets(result: dict) -> dict:
    """Each target of the issue with the measured value and the gap (0 when met)."""
    speedup = result["speedup"] or 0.0
    return {"txn_per_s": {"target": TARGET_TXN_PER_S, "measured": result["rows_per_s"],
                          "gap": max(TARGET_TXN_PER_S - result["rows_per_s"], 0)},
            "speedup_x": {"target": TARGET_SPEEDUP_X, "measured": speedup,
                          "gap": round(max(TARGET_SPEEDUP_X - speedup, 0.0), 1)}}


def _print(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    if result["candidate"] != STACK:
        print(f"NOTE: reference stack unavailable ({result['candidate_note']});"
              f" measured with {result['candidate']}")
    print(f"{'rows':>10}{'runs':>6}{'median s':>10}{'cpu s':>8}{'txn/s':>10}{'peak RSS MiB':>14}"
          f"{'cpus':>6}{'harness txn/s':>15}{'speedup':>9}")
    print(f"{result['rows']:>10,}{result['repeat']:>6}{result['median_s']:>10.2f}"
          f"{result['median_cpu_s']:>8.2f}{result['rows_per_s']:>10,}{result['peak_rss_mib']:>14.1f}"
          f"{result['cpu_count']:>6}{result['harness']['rows_per_s']:>15,.0f}"
          f"{result['speedup']:>8}x")
    print(f"harness: {result['harness']['note']}; stages (median run): {result['stage_timings_s']}")
    print(f"rows per CPU second {result['rows_per_cpu_s']:,}; load average {result['load_avg_1m']}"
          f" on {result['cpu_count']} cpus (wall figures are noisy when it exceeds them)")
    for name, t in result["targets"].items():
        verdict = "met" if not t["gap"] else f"MISSED by {t['gap']:,}"
        print(f"target {name}: {t['target']:,} measured {t['measured']:,} -> {verdict}")
    if "ray" in result:
        r = result["ray"]
        print(f"\nray engine, local instance, {r['workers']} workers on {result['cpu_count']} cpus"
              f" (same store, after the local runs):")
        print(f"{'median s':>10}{'txn/s':>10}{'vs local':>10}{'ray init s':>12}"
              f"{'txn/s incl init':>17}{'vs local incl init':>20}{'same output':>13}")
        print(f"{r['median_s']:>10.2f}{r['rows_per_s']:>10,}{r['overhead_x']:>9}x"
              f"{r['init_median_s']:>12.2f}{r['rows_per_s_with_init']:>17,}"
              f"{r['overhead_with_init_x']:>19}x{str(r['outputs_equal_local']):>13}")
        print(f"ray stages (median run, summed over workers): {r['stage_timings_s']}")


if __name__ == "__main__":
    main()
