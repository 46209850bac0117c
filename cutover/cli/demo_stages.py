"""The stages of `cutover demo`, in order, each a small function over one `DemoPaths`.

Every stage calls the same library code the single commands call, so the demo proves the
pipeline a user will run by hand, and the summary's "next commands" work on what it leaves.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cutover.errors import InputError

#: Transactions sent to the live SOAP core: enough to exercise zeep, few enough to be quick.
SOAP_SAMPLE: Final = 200
#: The share of days kept as history (training); the rest is the replay window.
HISTORY_SHARE: Final = 2 / 3
GATE_PHASE: Final = "canary-1"
_MARKER: Final = ".cutover-demo"


def demo_plan() -> Path:
    """The demo's plan file, shown relative to the working folder when it is under it."""
    from cutover.paths import fixtures_dir

    plan = fixtures_dir() / "plans" / "demo.toml"
    try:
        return plan.relative_to(Path.cwd())
    except ValueError:
        return plan

out = Console(highlight=False)


@dataclass
class DemoPaths:
    """Where each stage reads and writes, all inside the demo folder."""

    root: Path
    store: Path = field(init=False)
    cassette: Path = field(init=False)
    eod: Path = field(init=False)
    imported: Path = field(init=False)
    models: Path = field(init=False)
    run: Path = field(init=False)
    evaluation: Path = field(init=False)
    plan_db: Path = field(init=False)

    def __post_init__(self) -> None:
        self.store = self.root / "store"
        self.cassette = self.root / "cassettes" / "legacy_sample.yaml"
        self.eod = self.root / "eod"
        self.imported = self.root / "imported"
        self.models = self.root / "models"
        self.run = self.root / "run"
        self.evaluation = self.root / "evaluation.json"
        self.plan_db = self.root / "plan.db"

    @property
    def plan_url(self) -> str:
        return f"sqlite:///{self.plan_db}"


@dataclass
class Stage:
    """One line of the summary table."""

    name: str
    result: str
    seconds: float
    ok: bool = True


@dataclass
class DemoState:
    """What earlier stages found out that later ones need."""

    paths: DemoPaths
    size: int
    seed: int
    progress: Progress
    days: list[str] = field(default_factory=list)
    replay_start: dt.datetime | None = None
    replay_end: dt.datetime | None = None
    balances_file: Path | None = None
    statement_file: Path | None = None
    gate_passed: bool | None = None
    gate_result: Any = None
    stages: list[Stage] = field(default_factory=list)


def prepare_folder(root: Path, force: bool) -> None:
    """Use ``root`` for a new demo; refuse to overwrite anything that is not an earlier demo."""
    if root.exists() and any(root.iterdir()):
        if not (root / _MARKER).is_file():
            raise InputError(f"{root} exists and is not a cutover demo folder; choose another "
                             "--dir or empty it")
        if not force:
            raise InputError(f"{root} already holds a demo; add --force to start over, or "
                             "choose another --dir")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / _MARKER).write_text("written by `cutover demo`; --force may delete this folder\n",
                                encoding="utf-8")


def _counter(state: DemoState, label: str, total: int | None) -> Callable[[int], None]:
    """A progress task and a callback that sets its completed count."""
    task = state.progress.add_task(label, total=total)

    def tell(done: int) -> None:
        state.progress.update(task, completed=done)

    return tell


def stage_generate(state: DemoState) -> str:
    from cutover.sim.traffic import generate

    summary = generate(state.paths.store, state.size, state.seed,
                       on_progress=_counter(state, "generate traffic", state.size))
    state.days = list(summary.days)
    cut = state.days[int(len(state.days) * HISTORY_SHARE)]
    state.replay_start = dt.datetime.combine(dt.date.fromisoformat(cut), dt.time(), dt.UTC)
    last = dt.date.fromisoformat(state.days[-1]) + dt.timedelta(days=1)
    state.replay_end = dt.datetime.combine(last, dt.time(), dt.UTC)
    return (f"{summary.rows:,} txns over {len(summary.days)} days, {summary.fraud_rows:,} fraud; "
            f"replay window from {cut}")


def stage_soap(state: DemoState) -> str:
    from cutover.adapters.cassette import record_calls
    from cutover.adapters.soap import SoapOptions
    from cutover.adapters.tokenize import token_key
    from cutover.paths import fixtures_dir
    from cutover.sim.legacy_server import start_server
    from cutover.sim.traffic import sample_requests
    from cutover.store.traffic import iter_batches

    first = next(iter_batches(state.paths.store, batch_rows=SOAP_SAMPLE * 5))
    txns = sample_requests(first, SOAP_SAMPLE, state.seed)
    tell = _counter(state, "SOAP calls through zeep", len(txns))
    done = 0

    def advance() -> None:
        nonlocal done
        done += 1
        tell(done)

    core = start_server()
    try:
        state.paths.cassette.parent.mkdir(parents=True, exist_ok=True)
        outcomes = record_calls(fixtures_dir() / "mappings" / "legacy_auth.toml", txns,
                                state.paths.cassette, token_key(), wsdl=core.wsdl_url,
                                options=SoapOptions(address=core.url), progress=advance)
    finally:
        core.stop()
    by: dict[str, int] = {}
    for outcome in outcomes:
        by[outcome["legacy_decision"]] = by.get(outcome["legacy_decision"], 0) + 1
    shown = ", ".join(f"{k} {v}" for k, v in sorted(by.items()))
    return f"{len(outcomes)} calls to the core on port {core.port} ({shown}); cassette recorded"


def stage_eod(state: DemoState) -> str:
    from cutover.sim.eod import export_eod

    assert state.replay_start is not None
    from cutover.sim.eod_statements import export_statements

    with state.progress.console.status("end-of-day export"):
        summary = export_eod(state.paths.store, state.paths.eod, since=state.replay_start.date())
        books = export_statements(state.paths.store, state.paths.eod, summary.as_of,
                                  since=state.replay_start.date())
    state.balances_file = summary.balances_path
    state.statement_file = books.camt053_path
    return (f"{summary.authlog_path.name} ({summary.transactions:,} records), "
            f"{summary.balances_path.name} ({summary.accounts:,} accounts), "
            f"{books.camt053_path.name} and .mt940 ({books.entries:,} entries)")


def stage_import(state: DemoState) -> str:
    from cutover.adapters.sources import import_source
    from cutover.adapters.tokenize import token_key
    from cutover.paths import fixtures_dir

    authlog = next(state.paths.eod.glob("authlog_*.txt"))
    tell = _counter(state, "import batch file + cassette", 2)
    log = import_source(authlog, state.paths.imported, fmt="layout", layout="legacy_authlog")
    tell(1)
    tape = import_source(state.paths.cassette, state.paths.imported, fmt="cassette",
                         soap_mapping=fixtures_dir() / "mappings" / "legacy_auth.toml",
                         key=token_key())
    tell(2)
    # The cassette's transactions are also in the authlog, so they arrive as duplicates: the
    # import is idempotent by txn_id and says so rather than importing them twice.
    return (f"authlog: {log.imported:,} imported, {log.quarantined} quarantined; "
            f"cassette: {tape.read} read, {tape.imported} new, {tape.duplicates} already "
            f"imported, {tape.quarantined} quarantined")


def stage_train(state: DemoState) -> str:
    from cutover.stack.model import train

    card = train(state.paths.store, state.paths.models, until=state.replay_start, seed=state.seed,
                 on_progress=_counter(state, "train fraud model", None))
    metrics = card.metrics
    return (f"model {card.version}: PR-AUC {metrics['pr_auc']:.3f}, recall at 1% FPR "
            f"{metrics['recall_at_1pct_fpr']:.3f}")


def stage_evaluate(state: DemoState) -> str:
    import json

    from cutover.stack.evaluate import evaluate

    assert state.replay_start is not None and state.replay_end is not None
    with state.progress.console.status("evaluate candidate against labels"):
        result = evaluate(state.paths.store, state.paths.models, state.replay_start,
                          state.replay_end)
    state.paths.evaluation.write_text(json.dumps(result, indent=2, sort_keys=True),
                                      encoding="utf-8")
    legacy, stack = result["sides"]["legacy"], result["sides"]["stack"]
    lg_usd, st_usd = legacy["usd_indicative"], stack["usd_indicative"]
    return (f"fraud caught {stack['fraud_caught_rate']:.0%} (legacy {legacy['fraud_caught_rate']:.0%}); "
            f"false declines ~{st_usd['false_decline']:,.0f} USD (legacy ~{lg_usd['false_decline']:,.0f}); "
            f"{state.paths.evaluation.name} written")


def stage_replay(state: DemoState) -> str:
    from cutover.replay.engine import run_replay
    from cutover.replay.options import ReplayOptions

    options = ReplayOptions(candidate_options={"models": str(state.paths.models)},
                            since=state.replay_start)
    summary = run_replay(state.paths.store, state.paths.run, options,
                         on_progress=_counter(state, "replay legacy vs candidate", None))
    return (f"{summary.rows_in:,} txns, {summary.mismatches:,} mismatches, conservation "
            f"{'ok' if summary.conservation_ok else 'BROKEN'}, {summary.rows_per_s:,.0f} txn/s")


def stage_ledger(state: DemoState) -> str:
    from cutover.shadow.ledger.apply import apply_run, diff_parts, part_rows
    from cutover.shadow.ledger.reconcile import (
        compare_balances,
        mirror_balances,
        read_balance_file,
        reconcile_result,
        save_reconcile,
    )
    from cutover.shadow.ledger.uow import default_url, make_engine
    from cutover.shadow.ledger.verify import verify_ledger

    engine = make_engine(default_url(state.paths.run))
    total = sum(part_rows(p) for p in diff_parts(state.paths.run))
    tell = _counter(state, "shadow ledger apply", total)
    done = 0

    def rows(n: int) -> None:
        nonlocal done
        done += n
        tell(done)

    summary = apply_run(engine, state.paths.run, on_rows=rows)
    verified = verify_ledger(engine)
    assert state.balances_file is not None
    legacy, mirror = read_balance_file(state.balances_file, "legacy_balances"), mirror_balances(engine)
    breaks = compare_balances(legacy, mirror)
    statement_breaks = _statement_breaks(state, engine, mirror)
    engine.dispose()
    # Saved into the run so the TUI's Ledger screen shows the reconciliation.
    save_reconcile(state.paths.run, reconcile_result(legacy, mirror, breaks, state.balances_file))
    chain = "chain intact" if verified.ok else "CHAIN BROKEN"
    return (f"{summary.postings:,} postings at {summary.postings_per_s:,.0f}/s; {chain}; "
            f"reconcile: {len(breaks)} breaks with the balance file, {statement_breaks} with"
            " the camt.053 statement")


def _statement_breaks(state: DemoState, engine: object, mirror: dict) -> int:
    """Breaks between the mirror and the camt.053 statement the core wrote (0 expected)."""
    from cutover.shadow.ledger.reconcile import compare_balances
    from cutover.shadow.ledger.statement_reconcile import statement_balances

    assert state.statement_file is not None
    booked, _, _ = statement_balances(state.statement_file)
    return len(compare_balances(booked, mirror))


def stage_gate(state: DemoState) -> str:
    """Judge the report against the demo plan and walk the plan's state machine one step."""
    import getpass
    import hashlib
    import json

    import sqlalchemy as sa

    from cutover.errors import PlanError
    from cutover.migrate import outputs
    from cutover.migrate.gate import evaluate
    from cutover.migrate.plan import load_policy
    from cutover.migrate.state import PlanMachine

    report_path = state.paths.run / "report.json"
    raw = report_path.read_bytes()
    report = json.loads(raw)
    result = evaluate(report, load_policy(demo_plan(), GATE_PHASE), phase=GATE_PHASE,
                      source=str(report_path))
    (state.paths.run / "gate.md").write_text(outputs.markdown(result), encoding="utf-8")
    state.gate_passed = result.passed
    state.gate_result = result
    failed = [c.name for c in result.checks if not c.passed]
    verdict = "PASS" if result.passed else f"FAIL ({', '.join(failed[:3])})"

    engine = sa.create_engine(state.paths.plan_url)
    try:
        machine = PlanMachine(engine)
        plan = machine.init(demo_plan().read_text(encoding="utf-8"), str(demo_plan()), "demo")
        actor = getpass.getuser()
        machine.approve(actor, GATE_PHASE)
        try:
            machine.advance(report, hashlib.sha256(raw).hexdigest(), actor,
                            source=str(report_path))
            where = f"plan {plan.name!r} advanced to {GATE_PHASE}"
        except PlanError as exc:
            where = f"plan {plan.name!r} stays in {plan.phases[0].name} ({exc})"
    finally:
        engine.dispose()
    return f"{GATE_PHASE}: {verdict}, {len(result.checks)} checks; {where}; gate.md written"


STAGES: Final = (
    ("generate", stage_generate),
    ("legacy core (SOAP)", stage_soap),
    ("end-of-day files", stage_eod),
    ("import", stage_import),
    ("train", stage_train),
    ("evaluate", stage_evaluate),
    ("replay + diff + report", stage_replay),
    ("shadow ledger", stage_ledger),
    ("gate", stage_gate),
)


def next_commands(paths: DemoPaths, since: dt.datetime | None) -> list[str]:
    """What to try after the demo; each works on what the demo left."""
    run, plan = paths.run, demo_plan()
    commands = [
        f"cutover tui {run} --plan-db {paths.plan_url}",
        f"cat {run}/report.md",
        f"cutover gate {run}/report.json --policy {plan} --phase {GATE_PHASE}",
        f"cutover plan history --db {paths.plan_url}",
        f"cutover explain {run} {example_mismatch(run) or 'TXN_ID'}",
        f"cutover shadow compare {run}",
        f"cutover shadow reconcile {run} --legacy-balances {paths.eod}/balances_*.txt --save",
        f"cutover models list --models {paths.models}",
    ]
    if since is not None:
        commands.append(f"cutover replay {paths.store} --out runs/again --candidate-opt "
                        f"models={paths.models} --since {since:%Y-%m-%d}")
    return commands


def example_mismatch(run: Path) -> str | None:
    """The first approve-to-decline in the run (else any mismatch), to show `cutover explain`."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    try:
        diffs = ds.dataset(run / "diffs").to_table(columns=["txn_id", "category", "expected"])
    except (FileNotFoundError, OSError):
        return None
    for wanted in ("approve_to_decline", "decline_to_approve", "review_change"):
        hits = diffs.filter(pc.equal(diffs["category"], wanted))
        if hits.num_rows:
            return str(hits["txn_id"][0])
    return None


def run_demo(root: Path, *, size: int, seed: int, force: bool) -> None:
    """Run every stage in order, print the summary and the next commands; stop at a failure."""
    from cutover.adapters.tokenize import DEMO_TOKEN_KEY, TOKEN_KEY_ENV

    prepare_folder(root, force)
    if not os.environ.get(TOKEN_KEY_ENV):
        # The simulated world's cards are fake, so the demo may use the published demo key;
        # real recordings refuse to run without one of their own.
        os.environ[TOKEN_KEY_ENV] = DEMO_TOKEN_KEY
    paths = DemoPaths(root)
    columns = (TextColumn("{task.description:<30}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    started = time.perf_counter()
    with Progress(*columns, console=out, transient=True) as progress:
        state = DemoState(paths, size, seed, progress)
        try:
            for name, stage in STAGES:
                t0 = time.perf_counter()
                try:
                    result = stage(state)
                except Exception as exc:
                    state.stages.append(Stage(name, f"failed: {exc}", time.perf_counter() - t0,
                                              ok=False))
                    raise
                state.stages.append(Stage(name, result, time.perf_counter() - t0))
        finally:
            progress.stop()
            _print_evidence(state)
            _print_summary(state, time.perf_counter() - started)
    out.print("\nNext, try:")
    for command in next_commands(paths, state.replay_start):
        out.print(f"  {command}", soft_wrap=True)


def _print_evidence(state: DemoState) -> None:
    """The replay report's summary and the gate's checks, when those stages ran."""
    import json

    from cutover.cli.migrate import checks_table
    from cutover.cli.replay import report_tables

    report_path = state.paths.run / "report.json"
    if report_path.is_file():
        for table in report_tables(json.loads(report_path.read_text(encoding="utf-8"))):
            out.print(table)
    if state.gate_result is not None:
        out.print(checks_table(state.gate_result))


def _print_summary(state: DemoState, seconds: float) -> None:
    table = Table(title=f"cutover demo in {state.paths.root} ({seconds:.0f} s)",
                  show_lines=False)
    table.add_column("stage")
    table.add_column("result", overflow="fold")
    table.add_column("s", justify="right")
    for stage in state.stages:
        style = None if stage.ok else "bold red"
        table.add_row(stage.name, stage.result, f"{stage.seconds:.1f}", style=style)
    out.print(table)
