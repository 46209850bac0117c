"""Run directories for the TUI tests, written in the stores' formats (docs/contracts.md).

Everything is fixed data (no clock, no random draws), so snapshots are the same on every
machine: a small run of 120 transactions in two parts with decisions, a report, a ledger and
a plan, and a large run of 1,000,000 rows for the responsiveness test.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cutover.domain import CATEGORIES, DECISION, DIFF, REPORT_VERSION

REPO: Final = Path(__file__).resolve().parents[1]
DEMO_PLAN: Final = REPO / "cutover" / "fixtures" / "plans" / "demo.toml"
T0: Final = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
T0_US: Final = int(T0.timestamp() * 1_000_000)
MERCHANTS: Final = ("M0001", "M0002", "M0003", "M0004", "M0005", "M0006")
COUNTRIES: Final = ("US", "GB", "DE")
CHANNELS: Final = ("ecom", "pos", "moto", "recurring")
#: The category of row i is PATTERN[i % len(PATTERN)]: mostly match, every mismatch present.
PATTERN: Final = ("match", "match", "match", "approve_to_decline", "match", "route_change",
                  "match", "fee_change", "match", "match", "decline_to_approve", "match",
                  "review_change", "match", "reason_change", "match", "candidate_error",
                  "match", "legacy_error", "match", "match", "route_change", "match",
                  "quarantined")
FIELDS: Final = {"approve_to_decline": ["decision"], "decline_to_approve": ["decision"],
                 "review_change": ["decision"], "route_change": ["route"],
                 "fee_change": ["fee_minor"], "reason_change": ["reason"],
                 "candidate_error": ["decision"], "legacy_error": ["decision"]}
SEVERITY: Final = {"approve_to_decline": "high", "decline_to_approve": "critical",
                   "review_change": "medium", "route_change": "low", "fee_change": "low",
                   "reason_change": "low", "candidate_error": "high", "legacy_error": "medium",
                   "quarantined": "medium", "match": "none"}
SIDES: Final = {"approve_to_decline": ("approve", "decline"),
                "decline_to_approve": ("decline", "approve"),
                "review_change": ("approve", "review"), "candidate_error": ("approve", "error"),
                "legacy_error": ("error", "approve")}


def diff_rows(start: int, rows: int) -> list[dict[str, Any]]:
    """Rows ``start .. start+rows`` of the small run, as DIFF dicts."""
    out = []
    for i in range(start, start + rows):
        category = PATTERN[i % len(PATTERN)]
        legacy, candidate = SIDES.get(category, ("approve", "approve"))
        out.append({
            "txn_id": f"T{i:06d}", "ts": T0 + timedelta(seconds=30 * i),
            "category": category, "fields": FIELDS.get(category, []), "expected": False,
            "severity": SEVERITY[category], "amount_minor": 1000 + (i * 7919) % 90000,
            "currency": "USD" if i % 3 else "EUR", "merchant_id": MERCHANTS[i % 6],
            "merchant_country": COUNTRIES[i % 3], "channel": CHANNELS[i % 4],
            "mcc": "5411" if i % 2 else "5999", "customer_id": f"C{i % 17:04d}",
            "is_fraud": i % 29 == 0, "chargeback": False,
            "legacy_decision": legacy, "legacy_reason": "ok" if legacy == "approve" else "risk",
            "legacy_route": "GW_A", "legacy_fee_minor": 30, "legacy_latency_ms": 12.0,
            "candidate_decision": candidate,
            "candidate_reason": "velocity" if category == "reason_change" else
            ("ok" if candidate == "approve" else "risk"),
            "candidate_route": "GW_B" if category == "route_change" else "GW_A",
            "candidate_fee_minor": 45 if category == "fee_change" else 30,
            "candidate_latency_ms": 0.4,
            "quarantine_reason": "bad currency" if category == "quarantined" else None,
        })
    return out


def diff_table(rows: list[dict[str, Any]]) -> pa.Table:
    """DIFF-schema table from row dicts."""
    return pa.Table.from_pylist(rows, schema=DIFF)


def decision_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The candidate's DECISION rows matching ``rows``."""
    return pa.Table.from_pylist([{
        "txn_id": r["txn_id"], "decision": r["candidate_decision"],
        "reason_codes": ["R_VELOCITY", "R_AMOUNT"] if r["candidate_decision"] != "approve" else [],
        "score": round(0.05 + (int(r["txn_id"][1:]) % 90) / 100, 2), "route": r["candidate_route"],
        "fee_minor": r["candidate_fee_minor"], "p_success": 0.97, "retry_plan": None,
        "model_version": "xgb-2026-10-01", "latency_us": 400} for r in rows], schema=DECISION)


def write_part(run_dir: Path, number: int, rows: list[dict[str, Any]]) -> None:
    """Commit one batch the way replay does: decisions and diffs, temp file then rename."""
    for folder, table in (("decisions", decision_table(rows)), ("diffs", diff_table(rows))):
        target = run_dir / folder / f"part-{number:06d}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.tmp")
        pq.write_table(table, temp)
        temp.rename(target)


def report_for(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A report.json for ``rows`` (counts, timeline, segments, money) in the contract's shape."""
    n = len(rows)
    by_category = dict.fromkeys(CATEGORIES, 0)
    for r in rows:
        by_category[r["category"]] += 1
    mismatch = [r["category"] not in ("match", "quarantined") for r in rows]
    timeline = [{"bucket_start": (T0 + timedelta(minutes=10 * b)).isoformat(), "n": 20,
                 "mismatches": sum(mismatch[b * 20:(b + 1) * 20])} for b in range(n // 20)]
    segments = []
    for m in MERCHANTS:
        picked = [x for r, x in zip(rows, mismatch, strict=True) if r["merchant_id"] == m]
        segments.append({"dimension": "merchant_id", "value": m, "n": len(picked),
                         "mismatches": sum(picked), "rate": sum(picked) / len(picked),
                         "by_category": {}})
    return {
        "report_version": REPORT_VERSION,
        "run": {"run_id": "run-small", "started_at": T0.isoformat(),
                "finished_at": (T0 + timedelta(hours=1)).isoformat(),
                "inputs": [{"path": "traffic/day=2026-10-01", "sha256": "ab" * 32, "rows": n}],
                "candidate": "cutover.stack:default_stack", "legacy_mode": "recorded",
                "model_version": "xgb-2026-10-01", "rules_sha256": "cd" * 32,
                "code_version": "0.1.0", "timings_s": {"total": 1.5}},
        "counts": {"in": n, "by_category": by_category, "expected_by_category": {},
                   "conservation_ok": True},
        "rates": {c: {"k": by_category[c], "n": n, "rate": by_category[c] / n, "lo": 0.0,
                      "hi": 0.1} for c in CATEGORIES if c != "match"},
        "money": {"by_currency": {
            "EUR": {"false_decline_minor": 12_345, "false_decline_count": 2,
                    "fraud_let_through_minor": 0, "fraud_let_through_count": 0,
                    "at_stake_minor": 12_345},
            "USD": {"false_decline_minor": 81_200, "false_decline_count": 3,
                    "fraud_let_through_minor": 5_000, "fraud_let_through_count": 1,
                    "at_stake_minor": 86_200}}},
        "latency_ms": {"legacy": {"p50": 10, "p95": 14, "p99": 20},
                       "candidate": {"p50": 0.3, "p95": 0.5, "p99": 0.9}},
        "errors": {"candidate_error": by_category["candidate_error"],
                   "legacy_error": by_category["legacy_error"],
                   "quarantined": by_category["quarantined"]},
        "segments": segments, "timeline": timeline,
        "drift": {"features": [{"name": "amount_minor", "psi": 0.02, "status": "ok"}],
                  "new_values": {}, "null_spikes": []},
    }


#: The shipped rules; a replay copies them into the run directory.
DEFAULT_RULES: Final = REPO / "cutover" / "fixtures" / "diff_rules" / "default.toml"


def write_small_run(run_dir: Path, rows: int = 120, parts: int = 2,
                    with_report: bool = True) -> Path:
    """The fixed small run: ``parts`` parts, run.json, diff_rules.toml and report.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    every = diff_rows(0, rows)
    size = rows // parts
    for p in range(parts):
        write_part(run_dir, p, every[p * size:(p + 1) * size])
    report = report_for(every)
    (run_dir / "run.json").write_text(json.dumps(report["run"]), encoding="utf-8")
    (run_dir / "diff_rules.toml").write_text(DEFAULT_RULES.read_text(encoding="utf-8"),
                                             encoding="utf-8")
    if with_report:
        (run_dir / "report.json").write_text(json.dumps(report), encoding="utf-8")
    return run_dir


def write_ledger(run_dir: Path) -> str:
    """Apply the run's diffs into RUN_DIR/ledger.db with the real ledger; return its URL."""
    from cutover.shadow.ledger.apply import apply_run
    from cutover.shadow.ledger.uow import default_url, make_engine
    url = default_url(run_dir)
    engine = make_engine(url)
    apply_run(engine, run_dir)
    engine.dispose()
    return url


class FixedClock:
    """A clock that reads the same instant every time, for a stable bake clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def write_plan_db(path: Path) -> tuple[str, FixedClock]:
    """A plan state db in phase "shadow" with one approval for canary-1; (url, clock)."""
    import sqlalchemy as sa

    from cutover.migrate.state import PlanMachine
    url = f"sqlite:///{path}"
    clock = FixedClock(T0)
    machine = PlanMachine(sa.create_engine(url), clock=clock)
    machine.init(DEMO_PLAN.read_text(encoding="utf-8"), "cutover/fixtures/plans/demo.toml", "alice")
    clock.now = T0 + timedelta(minutes=20)
    machine.approve("bob")
    clock.now = T0 + timedelta(hours=2)
    return url, clock


def write_big_run(run_dir: Path, rows: int = 1_000_000, parts: int = 10) -> Path:
    """A run of ``rows`` diffs in ``parts`` parts, built column-wise (no Python row loop)."""
    (run_dir / "diffs").mkdir(parents=True, exist_ok=True)
    size = rows // parts
    categories = pa.array(PATTERN)
    for p in range(parts):
        index = np.arange(p * size, (p + 1) * size)
        cat = categories.take(pa.array(index % len(PATTERN)))
        columns = {
            "txn_id": pa.array(np.char.add("T", np.char.zfill(index.astype(str), 7))),
            "ts": pa.array(T0_US + index * 1_000_000, pa.timestamp("us", tz="UTC")),
            "category": cat,
            "fields": pa.array([[]] * size, pa.list_(pa.string())),
            "expected": pa.array(np.zeros(size, bool)),
            "severity": pa.array(np.where(index % 7 == 0, "high", "low")),
            "amount_minor": pa.array(1000 + (index * 7919) % 90000),
            "currency": pa.array(np.where(index % 3 == 0, "EUR", "USD")),
            "merchant_id": pa.array(np.char.add("M", np.char.zfill((index % 500).astype(str), 4))),
            "merchant_country": pa.array(np.array(COUNTRIES)[index % 3]),
            "channel": pa.array(np.array(CHANNELS)[index % 4]),
        }
        table = pa.table({f.name: columns[f.name] if f.name in columns else pa.nulls(size, f.type)
                          for f in DIFF}).cast(DIFF)
        pq.write_table(table, run_dir / "diffs" / f"part-{p:06d}.parquet")
    return run_dir


def screen_text(app: Any) -> str:
    """What the terminal shows right now, as plain text lines (for assertions and debugging)."""
    import io

    from rich.console import Console
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system=None, record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens))
    return console.export_text()


#: How long a pilot test waits for the screen to show what it expects before failing.
WAIT_S_MAX: Final = 10.0


async def settle(pilot: Any) -> None:
    """Let every worker finish and the UI apply what they handed back (a screen with a
    ``busy`` flag, such as Diffs with a debounced query, is waited for too)."""
    import time
    deadline = time.monotonic() + WAIT_S_MAX
    for _ in range(3):
        await pilot.pause()
        await _workers_done(pilot)
    while getattr(pilot.app.screen, "busy", False):
        if time.monotonic() > deadline:
            raise AssertionError(f"{pilot.app.screen} still busy after {WAIT_S_MAX} s")
        await pilot.pause(0.02)
        await _workers_done(pilot)
    await pilot.pause()


CANCELLED_RETRIES_MAX: Final = 10


async def _workers_done(pilot: Any) -> None:
    """Wait for the workers; one cancelled by its successor in an exclusive group (a slow
    follow-mode poll overtaken by the next) has finished as far as a test is concerned."""
    from textual.worker import WorkerCancelled
    for _ in range(CANCELLED_RETRIES_MAX):
        try:
            await pilot.app.workers.wait_for_complete()
            return
        except WorkerCancelled:
            continue
    raise AssertionError(f"workers kept being cancelled {CANCELLED_RETRIES_MAX} times")


async def wait_for(pilot: Any, predicate: Any, what: str, timeout_s: float = WAIT_S_MAX) -> None:
    """Pause until ``predicate()`` is true; fail naming ``what`` after ``timeout_s``."""
    import time
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await pilot.pause(0.02)


def cells(table: Any) -> list[list[str]]:
    """A DataTable's rows as lists of cell text."""
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def write_traffic_for(run_dir: Path) -> Path:
    """A traffic store file for the small run's rows, and run.json pointing at it, so the
    drill-down can show the request (the features the candidate saw)."""
    from cutover.domain import TRAFFIC
    rows = [r for part in sorted((run_dir / "diffs").glob("part-*.parquet"))
            for r in pq.read_table(part).to_pylist()]
    store = run_dir.parent / "traffic" / "day=2026-10-01" / "part-00000.parquet"
    store.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([{
        **{k: r[k] for k in ("txn_id", "ts", "merchant_id", "mcc", "customer_id", "amount_minor",
                             "currency", "merchant_country", "channel", "legacy_decision",
                             "legacy_reason", "legacy_route", "legacy_fee_minor", "is_fraud",
                             "chargeback")},
        "card_token": f"tok_{r['customer_id']}", "card_bin": "411111", "card_country": "US",
        "legacy_code": "00", "legacy_latency_ms": 12} for r in rows], schema=TRAFFIC), store)
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    run["inputs"] = [{"path": str(store), "sha256": "ab" * 32, "rows": len(rows)}]
    (run_dir / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return store
