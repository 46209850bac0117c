"""The local replay engine: stream the store, ask both sides, diff, commit batch by batch.

Three things overlap so two cores stay busy: a reader thread prefetches the next input batch,
the legacy side answers a batch on a worker thread while the candidate decides it on the main
thread, and a writer thread classifies, writes the parts and commits the checkpoint of batch
k while the candidate works on batch k + 1. Queues are bounded (``PREFETCH_BATCHES``,
``PENDING_COMMITS_MAX``), so memory is a few batches whatever the store's size. The per-batch
work itself lives in ``stages`` as pure functions. The writer also folds each batch into the
report's running state, and a background thread scans the drift reference window, so the
report at the end costs a finalisation and the charts, not a second pass over the data.

Latency columns (``latency_us`` in decisions, ``*_latency_ms`` in diffs) are measured, so they
differ between two runs of the same input; every other byte of the parts is deterministic,
and a resumed run equals an unbroken one on everything but those columns.
"""

from __future__ import annotations

import importlib
import inspect
import shutil
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from cutover.adapters.candidate import CandidateSide, load_candidate
from cutover.domain import CATEGORIES, DECISION, MISMATCH_CATEGORIES
from cutover.errors import InputError, InvariantBroken, StoreError
from cutover.replay.legacy_side import LegacySide
from cutover.replay.options import ReplayOptions
from cutover.replay.prefetch import prefetch
from cutover.replay.stages import Prepared, combine, prepare
from cutover.replay.warmup import WarmFeed
from cutover.shadow.diff import count_categories
from cutover.shadow.diff_rules import DiffRules, default_rules_path, parse_diff_rules
from cutover.shadow.drift import scan_reference
from cutover.shadow.latency import HTTP_PREFIXES, LATENCY_FILE, read_sample, write_sample
from cutover.shadow.report import ReportState, drift_plan_for, finish_report, write_reports
from cutover.store import runinfo
from cutover.store.checkpoint import (
    Checkpoint,
    part_name,
    read_checkpoint,
    remove_uncommitted_parts,
    write_checkpoint,
    write_parquet_atomic,
)
from cutover.store.filters import Narrowing
from cutover.store.stream import iter_input

PREFETCH_BATCHES: Final = 2
PENDING_COMMITS_MAX: Final = 2
#: Single decisions timed per batch and per run (the candidate's latency in report.json):
#: about 0.3 s of a replay for the reference stack at the maximum.
LATENCY_SAMPLE_PER_BATCH: Final = 256
LATENCY_SAMPLE_MAX: Final = 1024
RULES_COPY: Final = "diff_rules.toml"
#: What ``cutover.shadow.charts`` imports to draw the report's charts (preloaded, see below).
CHART_MODULES: Final = ("matplotlib.figure", "matplotlib.backends.backend_agg")
#: What a replay writes into RUN_DIR; --force removes exactly these, nothing else.
RUN_ENTRIES: Final = ("run.json", "checkpoint.json", "decisions", "diffs", RULES_COPY,
                      "report.json", "report.md", "charts", "ledger.db", "commits",
                      LATENCY_FILE)
Progress = Callable[[int, int | None], None]


@dataclass
class ReplaySummary:
    """What a replay did; ``conservation_ok`` is False when a row went missing or doubled."""

    run_dir: Path
    rows_in: int
    by_category: dict[str, int]
    conservation_ok: bool
    batches: int
    resumed_from_batch: int
    seconds: float
    already_finished: bool = False
    timings_s: dict[str, float] = field(default_factory=dict)
    expected_by_category: dict[str, int] = field(default_factory=dict)

    @property
    def mismatches(self) -> int:
        """Rows in a mismatch category that no expected rule explains (what gates judge)."""
        return sum(self.by_category.get(c, 0) - self.expected_by_category.get(c, 0)
                   for c in MISMATCH_CATEGORIES)

    @property
    def rows_per_s(self) -> float:
        """End-to-end throughput of this invocation."""
        return self.rows_in / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Run:
    """Everything one invocation needs, resolved from the arguments and the run directory."""

    store: Path
    out: Path
    narrowing: Narrowing
    batch_rows: int
    rules: DiffRules
    checkpoint: Checkpoint
    run: dict[str, Any]
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("read", "legacy", "candidate", "commit", "report"), 0.0))
    latency_sample_left: int = LATENCY_SAMPLE_MAX


def _rules_text(rules: Path | None, previous: Checkpoint | None) -> tuple[str, str]:
    """(TOML text, source) of the rules: the given file, the resumed run's, or the default."""
    if rules is None and previous is not None and previous.rules_toml:
        return previous.rules_toml, "checkpoint.json"
    path = Path(rules) if rules is not None else default_rules_path()
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except OSError as exc:
        raise InputError(f"--rules {path}: cannot read: {exc.strerror or exc}") from exc


def _clear(out: Path) -> None:
    for later in [*out.glob("report-*.json"), *out.glob("report-*.md")]:
        later.unlink()
    for charts in out.glob("charts-*"):
        if charts.is_dir():
            shutil.rmtree(charts)
    for name in RUN_ENTRIES:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def _open_run(out: Path, fingerprint: str, resume: bool, force: bool) -> Checkpoint | None:
    """The checkpoint to continue from (None: start fresh); refuse what would mix runs.

    Read-only: nothing in ``out`` changes here, so a refusal or a candidate that fails to load
    afterwards leaves the directory as it was.
    """
    previous = read_checkpoint(out) if out.is_dir() and resume and not force else None
    if previous is not None:
        if previous.fingerprint != fingerprint:
            raise InputError(f"{out}: --resume with different inputs or options than the run"
                             " there (store, candidate, legacy, narrowing, batch size, rules);"
                             " use the same ones, or --force to start over")
        return previous
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(f"{out} is not empty: use --resume to continue the run there or --force"
                         " to replace it")
    return None


@dataclass
class _Plan:
    """What ``_resolve`` decided before anything is written."""

    inputs: list[dict[str, Any]]
    rules_text: str
    rules: DiffRules
    fingerprint: str
    checkpoint: Checkpoint | None


def _plan(store: Path, out: Path, settings: dict[str, Any], rules: Path | None, resume: bool,
          force: bool) -> _Plan:
    inputs = runinfo.store_inputs(store)
    previous = read_checkpoint(out) if resume and not force and out.is_dir() else None
    text, source = _rules_text(rules, previous)
    parsed = parse_diff_rules(text, source)
    fingerprint = runinfo.fingerprint(settings | {"rules_sha256": parsed.sha256}, inputs)
    return _Plan(inputs, text, parsed, fingerprint, _open_run(out, fingerprint, resume, force))


def _create(plan: _Plan, store: Path, out: Path, settings: dict[str, Any], narrowing: Narrowing,
            batch_rows: int) -> _Run:
    checkpoint = plan.checkpoint
    if checkpoint is None:
        if out.is_dir():
            _clear(out)
        out.mkdir(parents=True, exist_ok=True)
        checkpoint = Checkpoint(fingerprint=plan.fingerprint,
                                by_category=dict.fromkeys(CATEGORIES, 0), rules_toml=plan.rules_text)
        (out / RULES_COPY).write_text(plan.rules_text, encoding="utf-8")
        run = runinfo.new_run(out, settings, plan.inputs, plan.rules.sha256)
        runinfo.write_run(out, run)
        write_checkpoint(out, checkpoint)
    else:
        run = runinfo.read_run(out)
        remove_uncommitted_parts(out, checkpoint.batches_committed)
    for sub in ("decisions", "diffs"):
        (out / sub).mkdir(exist_ok=True)
    return _Run(store, out, narrowing, batch_rows, plan.rules, checkpoint, run)


@dataclass
class BatchParts:
    """What one committed batch wrote: its diffs and their counts (checkpoint material)."""

    diffs: pa.Table
    by_category: dict[str, int]
    expected_by_category: dict[str, int]
    model_version: str | None


def write_batch_parts(out: Path, batch_no: int, prepared: Prepared, outcomes: pa.Table,
                      decided: Any, rules: DiffRules) -> BatchParts:
    """Classify one batch and write its decisions and diffs parts; shared by both engines, so
    a part is the same bytes (latency aside) whichever engine wrote it."""
    diffs = combine(prepared, outcomes, decided.decisions, decided.error, rules)
    decisions = decided.decisions
    model_version = None
    if decisions is not None and decisions.num_rows:
        model_version = decisions["model_version"][0].as_py()
    # A failed batch still gets its (empty) decisions part, so the two folders always hold
    # the same batch numbers.
    decisions = decisions if decisions is not None else DECISION.empty_table()
    write_parquet_atomic(decisions, out / "decisions" / part_name(batch_no))
    write_parquet_atomic(diffs, out / "diffs" / part_name(batch_no))
    expected = {c: n for c, n in count_categories(diffs.filter(diffs["expected"])).items() if n}
    return BatchParts(diffs, dict(count_categories(diffs)), expected, model_version)


class _Committer:
    """Runs on the writer thread: classify a batch, write its parts, move the checkpoint, and
    fold the batch into the report's running state."""

    def __init__(self, ctx: _Run, report: Any) -> None:
        self.ctx = ctx
        self.report = report
        self.model_version: str | None = None

    def refold(self, batch_no: int, prepared: Prepared) -> None:
        """A batch committed by an earlier process: fold its diffs part back in (resume)."""
        if self.report is not None:
            diffs = pq.read_table(self.ctx.out / "diffs" / part_name(batch_no))
            decisions = self.ctx.out / "decisions" / part_name(batch_no)
            self.report.add(diffs, prepared.traffic,
                            pq.read_table(decisions, columns=["reason_codes"])
                            if decisions.is_file() else None)

    def commit(self, batch_no: int, prepared: Prepared, outcomes: pa.Table,
               decided: Any, rows_in_total: int) -> None:
        started = time.perf_counter()
        ctx = self.ctx
        parts = write_batch_parts(ctx.out, batch_no, prepared, outcomes, decided, ctx.rules)
        if self.model_version is None:
            self.model_version = parts.model_version
        cp = ctx.checkpoint
        for category, count in parts.by_category.items():
            cp.by_category[category] = cp.by_category.get(category, 0) + count
        for category, count in parts.expected_by_category.items():
            cp.expected_by_category[category] = cp.expected_by_category.get(category, 0) + count
        cp.batches_committed, cp.rows_in = batch_no + 1, rows_in_total
        write_checkpoint(ctx.out, cp)
        if self.report is not None:
            self.report.add(parts.diffs, prepared.traffic, decided.decisions)
        ctx.timings["commit"] += time.perf_counter() - started


def _timed(fn: Callable[[Any], Any], arg: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    return fn(arg), time.perf_counter() - started


def _drain(pending: deque[Future[None]], keep: int) -> None:
    while len(pending) > keep:
        pending.popleft().result()


def _progress_caller(on_progress: Callable[..., Any] | None) -> Progress | None:
    """Accept ``on_progress(rows_done)`` as well as ``on_progress(rows_done, rows_total)``."""
    if on_progress is None:
        return None
    try:
        params = [p for p in inspect.signature(on_progress).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        return on_progress
    if len(params) == 1 and params[0].kind != params[0].VAR_POSITIONAL:
        return lambda done, _total: on_progress(done)
    return on_progress


def _expected_rows(ctx: _Run) -> int | None:
    """Rows the run will read, when known without reading (for the progress bar's ETA)."""
    n = ctx.narrowing
    if n.since or n.until or n.merchant or n.sample:
        return n.limit
    rows = sum(int(i["rows"]) for i in ctx.run.get("inputs", []))
    return rows if n.limit is None else min(rows, n.limit)


def _decide_all(ctx: _Run, candidate: CandidateSide, legacy: LegacySide,
                on_progress: Progress | None, report: Any) -> tuple[int, int, str | None]:
    """Run every batch not yet committed; return (rows in, batches, model version)."""
    start_batch, rows_in, batch_no = ctx.checkpoint.batches_committed, 0, -1
    warm = WarmFeed(ctx.store)
    committer = _Committer(ctx, report)
    pending: deque[Future[None]] = deque()
    total = _expected_rows(ctx)
    with ThreadPoolExecutor(1, "legacy") as legacy_pool, ThreadPoolExecutor(1, "commit") as writer:
        # The reader thread also validates each batch (``prepare``: the quarantine checks are
        # Arrow kernels that release the GIL), so the main thread only feeds the candidate.
        for batch_no, prepared in enumerate(prefetch(
                map(prepare, iter_input(ctx.store, ctx.narrowing, ctx.batch_rows)),
                PREFETCH_BATCHES, ctx.timings)):
            table = prepared.traffic
            rows_in += table.num_rows
            if batch_no < start_batch:
                warm.remember(prepared.valid)
                committer.refold(batch_no, prepared)
                continue
            if batch_no == start_batch and start_batch and rows_in - table.num_rows != \
                    ctx.checkpoint.rows_in:
                raise StoreError(f"{ctx.store} changed since the run started: {rows_in - table.num_rows}"
                                 f" rows before batch {start_batch}, checkpoint says"
                                 f" {ctx.checkpoint.rows_in}; start over with --force")
            warm.feed(candidate, prepared.valid)
            candidate.observe_labels(prepared.valid)
            outcomes_future = legacy_pool.submit(_timed, legacy.authorize, prepared.valid)
            kept = min(LATENCY_SAMPLE_PER_BATCH, ctx.latency_sample_left)
            decided = candidate.decide(prepared.valid, kept)
            ctx.latency_sample_left -= kept
            ctx.timings["candidate"] += decided.seconds
            outcomes, legacy_s = outcomes_future.result()
            ctx.timings["legacy"] += legacy_s
            pending.append(writer.submit(committer.commit, batch_no, prepared, outcomes, decided,
                                         rows_in))
            _drain(pending, PENDING_COMMITS_MAX - 1)
            if on_progress is not None:
                on_progress(rows_in, total)
        _drain(pending, 0)
    return rows_in, batch_no + 1, committer.model_version


def options_from(options: ReplayOptions | None, values: dict[str, Any]) -> ReplayOptions:
    """The options object, or one built from keyword values (tests and scripts use those)."""
    if options is not None and values:
        raise TypeError(f"pass ReplayOptions or keyword options, not both: {sorted(values)}")
    return options if options is not None else ReplayOptions.of(**values)


def run_replay(store: Path, out: Path, options: ReplayOptions | None = None, *,
               on_progress: Callable[..., Any] | None = None, report: bool = True,
               latency_sample_max: int = LATENCY_SAMPLE_MAX,
               **option_values: Any) -> ReplaySummary:
    """Replay ``store`` through the legacy side and the candidate into the run directory ``out``.

    ``options`` (or the same names as keywords) say what to replay and how; ``on_progress(rows_done)``
    or ``on_progress(rows_done, rows_total_or_None)`` is called after each batch is handed to
    the writer.

    Raises InputError (exit 2) for unusable arguments or a run directory that would be mixed;
    returns a summary whose ``conservation_ok`` the caller must check (the CLI exits 4).
    """
    started = time.perf_counter()
    opts = options_from(options, option_values)
    narrowing, settings = opts.narrowing(), opts.settings(store)
    plan = _plan(Path(store), Path(out), settings, opts.rules, opts.resume, opts.force)
    if plan.checkpoint is not None and plan.checkpoint.finished:
        ctx = _create(plan, Path(store), Path(out), settings, narrowing, opts.batch_rows)
        return _summary(ctx, ctx.checkpoint.rows_in, ctx.checkpoint.batches_committed,
                        time.perf_counter() - started, already_finished=True)
    # A second instance times single decisions (cutover.shadow.latency); none asked, none loaded.
    # An HTTP candidate's every call is timed by the replay already (cutover.shadow.latency);
    # extra calls would also count as decisions on the service.
    if str(opts.candidate).startswith(HTTP_PREFIXES):
        latency_sample_max = 0
    timer = load_candidate(opts.candidate, opts.candidate_options) \
        if latency_sample_max > 0 else None
    stack = CandidateSide(load_candidate(opts.candidate, opts.candidate_options), timer)
    legacy_side = LegacySide(opts.legacy, opts.legacy_options)
    ctx = _create(plan, Path(store), Path(out), settings, narrowing, opts.batch_rows)
    ctx.latency_sample_left = max(latency_sample_max, 0)
    resumed_from = ctx.checkpoint.batches_committed
    if resumed_from:
        ctx.run["resumed_at"].append({"at": runinfo.utc_now(), "batch": resumed_from})
    ctx.run["training_window"] = ctx.run.get("training_window") or stack.training_window
    runinfo.write_run(ctx.out, ctx.run)
    with ThreadPoolExecutor(1, "report") as background:
        state, reference = _report_state(ctx, background) if report else (None, None)
        try:
            rows_in, batches, model_version = _decide_all(
                ctx, stack, legacy_side, _progress_caller(on_progress), state)
        finally:
            legacy_side.close()
        # The drift scan runs on a background thread: wait for it, so the timed single
        # decisions compete with nothing of the harness.
        scanned = reference.result() if reference is not None else None
        _time_sample(ctx, stack, state)
        summary = _finish(ctx, rows_in, batches, model_version or stack.model_version,
                          resumed_from, started)
        if state is not None and reference is not None:
            _write_report(ctx, state, scanned)
    summary.timings_s = {k: round(v, 4) for k, v in ctx.timings.items()}
    summary.seconds = time.perf_counter() - started
    return summary


def _time_sample(ctx: _Run, candidate: CandidateSide, state: Any) -> None:
    """Time the kept single decisions now that the batches are done; keep them in the run."""
    started = time.perf_counter()
    sample_ms = candidate.time_sample()
    # A resumed run whose batches were all committed before has nothing new to time: the
    # sample of the earlier invocation stands.
    if sample_ms or not (ctx.out / LATENCY_FILE).exists():
        write_sample(ctx.out, sample_ms)
    if state is not None:
        state.totals.add_latency_sample(read_sample(ctx.out))
    ctx.timings["latency_sample"] = time.perf_counter() - started


def _report_state(ctx: _Run, background: ThreadPoolExecutor) -> tuple[Any, Future[Any]]:
    """The report's running state, and the reference window scanned on a background thread
    (it does not depend on the replay) while the batches run."""
    state = ReportState(drift_plan_for(ctx.run))
    reference = background.submit(scan_reference, state.drift.plan)
    background.submit(_preload_charts)
    return state, reference


def _preload_charts() -> None:
    """Import the chart libraries while the batches run: at the end their import (about a
    third of a second here) would otherwise stand between the last batch and the report."""
    for module in CHART_MODULES:
        importlib.import_module(module)


def _write_report(ctx: _Run, state: Any, reference: Any) -> None:
    started = time.perf_counter()
    report = finish_report(ctx.out, ctx.run, ctx.checkpoint.as_dict(), state, reference)
    write_reports(ctx.out, report)
    ctx.timings["report"] = time.perf_counter() - started


def _finish(ctx: _Run, rows_in: int, batches: int, model_version: str | None,
            resumed_from: int, started: float) -> ReplaySummary:
    cp = ctx.checkpoint
    if cp.rows_in != rows_in or cp.batches_committed != batches:
        raise InvariantBroken(f"read {rows_in} rows in {batches} batches but committed"
                              f" {cp.rows_in} rows in {cp.batches_committed} batches")
    cp.finished = True
    write_checkpoint(ctx.out, cp)
    run = ctx.run
    run["model_version"] = run.get("model_version") or model_version
    run["finished_at"] = runinfo.utc_now()
    run["timings_s"] = {k: round(v, 4) for k, v in ctx.timings.items()}
    run["timings_s"]["total"] = round(time.perf_counter() - started, 4)
    runinfo.write_run(ctx.out, run)
    return _summary(ctx, rows_in, batches, time.perf_counter() - started, resumed_from=resumed_from)


def _summary(ctx: _Run, rows_in: int, batches: int, seconds: float, *,
             already_finished: bool = False, resumed_from: int = 0) -> ReplaySummary:
    by_category = {c: ctx.checkpoint.by_category.get(c, 0) for c in CATEGORIES}
    extra = {c: n for c, n in ctx.checkpoint.by_category.items() if c not in CATEGORIES}
    ok = not extra and sum(by_category.values()) == rows_in
    return ReplaySummary(ctx.out, rows_in, by_category | extra, ok, batches,
                         ctx.checkpoint.batches_committed if already_finished else resumed_from,
                         seconds, already_finished, {k: round(v, 4) for k, v in ctx.timings.items()},
                         dict(ctx.checkpoint.expected_by_category))
