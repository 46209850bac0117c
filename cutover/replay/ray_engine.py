"""The Ray replay engine: the local engine's stages, run on a Ray cluster segment by segment.

The driver plans (one pass of the local reader: batch spans and labels, see ``partitions``),
cuts the batches still to do into about one segment per worker, and hands segments to a pool
of actors. Each actor loads the candidate once and the legacy port once; a segment warms the
candidate like a resumed run and then decides, diffs and commits its batches with the same
``prepare`` / ``write_batch_parts`` as the local engine, writing the same part files. A batch
is committed by its marker in RUN_DIR/commits, so a killed run resumes per batch whatever order
the workers finished in. At the end the driver folds the markers into checkpoint.json and
builds report.json from the parts on disk, as ``cutover report`` does.

Ray is imported only inside this module's functions: without the extra, the rest of cutover
works and ``--engine ray`` says how to install it. Workers read the store and write the run
directory themselves, so on a real cluster both must be at the same path on every node.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from cutover.adapters.candidate import CandidateSide, load_candidate
from cutover.domain import CATEGORIES
from cutover.errors import ConfigError, CutoverError, InputError, InvariantBroken, StoreError
from cutover.replay.engine import (
    LATENCY_SAMPLE_MAX,
    LATENCY_SAMPLE_PER_BATCH,
    ReplaySummary,
    _create,
    _finish,
    _plan,
    _progress_caller,
    _Run,
    _summary,
    options_from,
)
from cutover.replay.legacy_side import LegacySide
from cutover.replay.options import ReplayOptions
from cutover.replay.partitions import (
    COMMITS,
    Job,
    RunPlan,
    Segment,
    SegmentResult,
    commit_path,
    plan_run,
    replay_segment,
    segments_for,
)
from cutover.replay.stages import prepare
from cutover.shadow.diff_rules import parse_diff_rules
from cutover.shadow.latency import write_sample
from cutover.shadow.report import write_reports
from cutover.store import runinfo
from cutover.store.checkpoint import Checkpoint, write_checkpoint
from cutover.store.filters import Narrowing
from cutover.store.stream import iter_input

INSTALL_HINT: Final = "pip install 'cutover[ray]'"
#: How often the driver wakes to report progress while segments run.
POLL_S: Final = 1.0
#: Object store of a Ray instance this engine starts itself: segments carry a few labels and
#: results, never the traffic (workers read it), so a small store is plenty.
LOCAL_OBJECT_STORE_BYTES: Final = 256 * 1024 * 1024


def import_ray() -> Any:
    """The ray module, or ConfigError (exit 2) saying how to install the extra."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"--engine ray needs Ray, which is not installed here: {INSTALL_HINT}"
                          f" (or pip install 'ray>=2.40')") from exc
    return ray


class SegmentWorker:
    """One worker's candidate and legacy port, loaded once; decides the segments it is given.

    The candidate keeps rolling state and the port has no reset, so a second segment on the
    same worker gets a freshly loaded candidate: otherwise the state of the first segment
    would leak into the second. With one segment per worker (the usual plan) that never
    happens.
    """

    def __init__(self, job: Job, import_dirs: list[str]) -> None:
        # Like load_candidate, the driver's working directory is importable, so a team's
        # candidate module in its checkout loads on workers of a local or shared-disk cluster.
        for folder in import_dirs:
            if os.path.isdir(folder) and folder not in sys.path:
                sys.path.insert(0, folder)
        self.job = job
        self.rules = parse_diff_rules(job.rules_toml, job.rules_source)
        self.legacy = LegacySide(job.legacy, job.legacy_options)
        self._fresh: Any = load_candidate(job.candidate, job.candidate_options)

    def run(self, segment: Segment) -> SegmentResult:
        """Decide and commit every batch of ``segment``."""
        stack = self._fresh if self._fresh is not None else load_candidate(
            self.job.candidate, self.job.candidate_options)
        self._fresh = None
        return replay_segment(self.job, self.rules, segment, CandidateSide(stack), self.legacy)

    def close(self) -> None:
        """Release the legacy port's connections."""
        self.legacy.close()


def read_commits(out: Path) -> dict[int, dict[str, Any]]:
    """The committed batches' markers, by batch number."""
    folder = Path(out) / COMMITS
    markers: dict[int, dict[str, Any]] = {}
    if not folder.is_dir():
        return markers
    for path in folder.glob("part-*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            markers[int(data["batch"])] = data
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{path}: unreadable commit marker ({exc}); start over with"
                             " --force") from exc
    return markers


def remove_uncommitted(out: Path, committed: set[int]) -> int:
    """Delete parts and temporaries of batches without a marker (a killed run's leftovers)."""
    removed = 0
    for sub in ("decisions", "diffs", COMMITS):
        folder = Path(out) / sub
        for path in folder.iterdir() if folder.is_dir() else []:
            stem = path.name.removeprefix("part-").split(".")[0]
            if path.name.startswith(".") or (sub != COMMITS and stem.isdigit()
                                             and int(stem) not in committed):
                path.unlink()
                removed += 1
    return removed


def _open(plan: Any, store: Path, out: Path, settings: dict[str, Any], narrowing: Narrowing,
          batch_rows: int) -> tuple[_Run, dict[int, dict[str, Any]]]:
    """The run context and the batches already committed (none for a fresh run)."""
    if plan.checkpoint is None:
        ctx = _create(plan, store, out, settings, narrowing, batch_rows)
        ctx.run["engine"] = "ray"
        (out / COMMITS).mkdir(exist_ok=True)
        return ctx, {}
    run = runinfo.read_run(out)
    for sub in ("decisions", "diffs", COMMITS):
        (out / sub).mkdir(exist_ok=True)
    committed = read_commits(out)
    remove_uncommitted(out, set(committed))
    return _Run(store, out, narrowing, batch_rows, plan.rules, plan.checkpoint, run), committed


def run_replay_ray(store: Path, out: Path, options: ReplayOptions | None = None, *,
                   address: str | None = None, workers: int | None = None,
                   on_progress: Callable[..., Any] | None = None,
                   **option_values: Any) -> ReplaySummary:
    """``run_replay`` on Ray: the same options and outputs, plus where the cluster is.

    ``address`` None joins the Ray instance this process already runs, else $RAY_ADDRESS,
    else starts a local one with ``workers`` CPUs. ``workers`` None uses every CPU of the
    cluster. Raises what ``run_replay`` raises, ConfigError when Ray is missing, and
    CutoverError when a worker fails (committed batches stay: rerun with --resume).
    """
    started = time.perf_counter()
    ray = import_ray()
    opts = options_from(options, option_values)
    if workers is not None and workers <= 0:
        raise InputError(f"--workers {workers}: must be positive")
    narrowing = opts.narrowing()
    # "engine" is part of the fingerprint: a local run's checkpoint and a Ray run's markers
    # are different records of progress, so neither engine resumes the other's directory.
    settings = opts.settings(store) | {"engine": "ray"}
    store, out = Path(store), Path(out)
    plan = _plan(store, out, settings, opts.rules, opts.resume, opts.force)
    if plan.checkpoint is not None and plan.checkpoint.finished:
        ctx = _create(plan, store, out, settings, narrowing, opts.batch_rows)
        return _summary(ctx, ctx.checkpoint.rows_in, ctx.checkpoint.batches_committed,
                        time.perf_counter() - started, already_finished=True)
    # Loaded here once to refuse a bad spec before anything is written, and for run.json.
    driver_side = CandidateSide(load_candidate(opts.candidate, opts.candidate_options))
    LegacySide(opts.legacy, opts.legacy_options).close()
    ctx, committed = _open(plan, store, out, settings, narrowing, opts.batch_rows)
    job = Job(store, out, narrowing, opts.candidate, dict(opts.candidate_options), opts.legacy,
              dict(opts.legacy_options), plan.rules_text, "diff_rules.toml")
    return _execute(ray, ctx, job, committed, driver_side, address, workers,
                    _progress_caller(on_progress), started)


def _execute(ray: Any, ctx: _Run, job: Job, committed: dict[int, dict[str, Any]],
             driver_side: CandidateSide, address: str | None, workers: int | None,
             on_progress: Any, started: float) -> ReplaySummary:
    run_plan = plan_run(ctx.store, ctx.narrowing, ctx.batch_rows)
    ctx.timings["plan"] = round(run_plan.seconds, 4)
    _check_committed(run_plan, committed)
    if committed:
        ctx.run["resumed_at"].append({"at": runinfo.utc_now(), "batches_committed": len(committed)})
    ctx.run["training_window"] = ctx.run.get("training_window") or driver_side.training_window
    owns_ray = _connect(ray, address, workers)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n_workers = max(1, min(workers or cpus, cpus))
        todo = [s.batch_no for s in run_plan.spans if s.batch_no not in committed]
        segments = segments_for(run_plan, todo, n_workers)
        ctx.run["ray"] = {"workers": n_workers, "segments": len(segments),
                          "cluster_cpus": cpus}
        runinfo.write_run(ctx.out, ctx.run)
        results = _dispatch(ray, job, segments, n_workers, run_plan, ctx.out, on_progress)
    finally:
        if owns_ray:
            ray.shutdown()
    for result in results:
        for key, seconds in result.timings_s.items():
            ctx.timings[key] = ctx.timings.get(key, 0.0) + seconds
    return _complete(ctx, run_plan, driver_side, len(committed), started)


def _check_committed(run_plan: RunPlan, committed: dict[int, dict[str, Any]]) -> None:
    """Markers of a resumed run must name batches of this plan with their planned sizes."""
    for batch_no, marker in committed.items():
        if batch_no >= len(run_plan.spans) or run_plan.spans[batch_no].rows != marker["rows"]:
            raise StoreError(f"batch {batch_no} was committed with {marker['rows']} rows but the"
                             " store now plans it differently; start over with --force")


def _connect(ray: Any, address: str | None, workers: int | None) -> bool:
    """Join or start Ray; True when this call started it (and must shut it down)."""
    if ray.is_initialized():
        return False
    if address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                 object_store_memory=LOCAL_OBJECT_STORE_BYTES)
    return True


def _dispatch(ray: Any, job: Job, segments: list[Segment], n_workers: int, run_plan: RunPlan,
              out: Path, on_progress: Any) -> list[SegmentResult]:
    """Run the segments on a pool of actors, one segment per idle actor, until all are done."""
    if not segments:
        return []
    actor_class = ray.remote(num_cpus=1, max_restarts=0)(SegmentWorker)
    actors = [actor_class.remote(job, [os.getcwd()]) for _ in range(min(n_workers, len(segments)))]
    queue, idle, results = list(segments), list(actors), []
    running: dict[Any, Any] = {}  # a segment's object ref -> the actor running it
    total = run_plan.rows_in
    try:
        while queue or running:
            while queue and idle:
                actor = idle.pop()
                running[actor.run.remote(queue.pop(0))] = actor
            done, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
            for ref in done:
                idle.append(running.pop(ref))
                results.append(_result(ray, ref))
            if on_progress is not None:
                on_progress(_rows_committed(out, run_plan), total)
    finally:
        for actor in actors:
            ray.kill(actor)
    return results


def _result(ray: Any, ref: Any) -> SegmentResult:
    """A segment's result; a worker's failure as one of our errors (committed batches stay)."""
    try:
        return ray.get(ref)
    except Exception as exc:  # Ray wraps the worker's exception; translate it at the boundary
        cause = getattr(exc, "cause", None)
        if isinstance(cause, CutoverError):
            raise cause from exc
        raise CutoverError(f"a Ray worker failed: {type(exc).__name__}: {exc}; the batches"
                           " committed so far stay, rerun with --resume") from exc


def _rows_committed(out: Path, run_plan: RunPlan) -> int:
    names = (p.name for p in (out / COMMITS).glob("part-*.json"))
    return sum(run_plan.spans[int(n.removeprefix("part-").split(".")[0])].rows for n in names)


def _time_on_driver(ctx: _Run, driver_side: CandidateSide) -> None:
    """The candidate's latency on single decisions, timed on the driver (the workers decide in
    batches): requests from the run's first batches, one ``decide`` each, as the local engine
    does after its batches (cutover.shadow.latency)."""
    started = time.perf_counter()
    side = CandidateSide(driver_side.stack, timer=driver_side.stack)
    for table in iter_input(ctx.store, ctx.narrowing, ctx.batch_rows):
        side.keep_sample(prepare(table).valid, LATENCY_SAMPLE_PER_BATCH)
        if len(side.sample_rows) >= LATENCY_SAMPLE_MAX:
            break
    write_sample(ctx.out, side.time_sample())
    ctx.timings["latency_sample"] = time.perf_counter() - started


def _complete(ctx: _Run, run_plan: RunPlan, driver_side: CandidateSide, resumed_from: int,
              started: float) -> ReplaySummary:
    """Fold the markers into checkpoint.json, finish run.json, build the report from disk."""
    markers = read_commits(ctx.out)
    missing = [s.batch_no for s in run_plan.spans if not commit_path(ctx.out, s.batch_no).is_file()]
    if missing or len(markers) != len(run_plan.spans):
        raise InvariantBroken(f"{len(missing)} planned batches have no commit marker"
                              f" (first: {missing[:3]}); {len(markers)} markers for"
                              f" {len(run_plan.spans)} batches")
    cp: Checkpoint = ctx.checkpoint
    cp.by_category, cp.expected_by_category = dict.fromkeys(CATEGORIES, 0), {}
    for batch_no in sorted(markers):
        for key, target in (("by_category", cp.by_category),
                            ("expected_by_category", cp.expected_by_category)):
            for category, count in markers[batch_no][key].items():
                target[category] = target.get(category, 0) + int(count)
    cp.batches_committed, cp.rows_in = len(markers), sum(int(m["rows"]) for m in markers.values())
    write_checkpoint(ctx.out, cp)
    versions = [markers[b]["model_version"] for b in sorted(markers) if markers[b]["model_version"]]
    summary = _finish(ctx, run_plan.rows_in, len(run_plan.spans),
                      versions[0] if versions else driver_side.model_version, resumed_from, started)
    _time_on_driver(ctx, driver_side)
    clock = time.perf_counter()
    write_reports(ctx.out)
    ctx.timings["report"] = time.perf_counter() - clock
    summary.timings_s = {k: round(v, 4) for k, v in ctx.timings.items()}
    summary.seconds = time.perf_counter() - started
    return summary
