"""Overview: is the candidate behaving? Phase and gate, counts per category, the mismatch rate
over replay time, money at stake, the worst segments, and what was run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Sparkline, Static

from cutover.domain import CATEGORIES
from cutover.tui import format as fmt
from cutover.tui.screens.base import RunScreen
from cutover.tui.views.counts import NOT_MISMATCH, RunCounts
from cutover.tui.views.diffs import MISMATCHES
from cutover.tui.views.plan import PlanView, read_plan
from cutover.tui.views.run import RunFiles, read_run_files, run_facts
from cutover.tui.widgets.tables import fill

SEGMENTS_SHOWN_MAX: Final = 8
NARROW_COLUMNS: Final = 120


@dataclass(frozen=True)
class OverviewData:
    """Everything the Overview shows, read in one worker."""

    files: RunFiles
    counts: RunCounts
    plan: PlanView | None


class OverviewScreen(RunScreen):
    """The first screen: a run's health at a glance."""

    TITLE = "Overview"

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with VerticalScroll(id="overview"):
            yield Static("plan: reading…", markup=False, id="phase-line")
            yield Static("rows: reading…", markup=False, id="totals-line")
            with Horizontal(classes="row"):
                yield DataTable(id="categories", cursor_type="row", zebra_stripes=True)
                with Vertical(id="side"):
                    yield Static("mismatch rate over replay time", classes="caption")
                    yield Sparkline([], id="timeline")
                    yield Static("", markup=False, id="timeline-caption")
                    yield DataTable(id="money", cursor_type="none")
            with Horizontal(classes="row"):
                yield DataTable(id="segments", cursor_type="row")
                yield DataTable(id="facts", cursor_type="none", show_header=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#categories", DataTable).add_columns("category", "rows", "share",
                                                             "expected")
        self.query_one("#money", DataTable).add_columns("currency", "at stake", "false decl",
                                                        "fraud through")
        self.query_one("#segments", DataTable).add_columns("worst segment", "n", "mism", "rate")
        self.query_one("#facts", DataTable).add_columns("run", "value")

    @on(DataTable.RowSelected, "#categories")
    def _drill_category(self, event: DataTable.RowSelected) -> None:
        """Enter on a category: its rows in Diffs."""
        self.tui.open_diffs(category=str(event.row_key.value))

    @on(DataTable.RowSelected, "#segments")
    def _drill_segment(self, event: DataTable.RowSelected) -> None:
        """Enter on a worst segment: its mismatches in Diffs."""
        dimension, _, value = str(event.row_key.value).partition("=")
        self.tui.open_diffs(category=MISMATCHES, segment=(dimension, value))

    def on_resize(self, event: events.Resize) -> None:
        """Below NARROW_COLUMNS the two columns stack, so nothing is cut off at 80x24."""
        self.set_class(event.size.width < NARROW_COLUMNS, "narrow")

    def fetch(self) -> OverviewData:
        config = self.tui.config
        files = read_run_files(config.run_dir)
        counts = self.tui.counts_cache.counts(config.run_dir)
        plan = None
        if config.plan_db:
            plan = read_plan(config.plan_db, files.report, config.clock)
        return OverviewData(files, counts, plan)

    def show(self, data: OverviewData) -> None:
        self.query_one("#phase-line", Static).update(phase_line(data.plan))
        self.query_one("#totals-line", Static).update(totals_line(data.counts, data.files))
        self._show_categories(data.counts)
        self._show_timeline(data)
        self._show_money(data.files.report)
        self._show_segments(data.files.report)
        fill(self.query_one("#facts", DataTable),
             run_facts(data.files) or [("run", "no run.json or report.json yet")])

    def _show_categories(self, counts: RunCounts) -> None:
        rows = []
        for category in CATEGORIES:
            n = counts.by_category.get(category, 0)
            rows.append((category, f"{n:,}", fmt.rate(n, counts.rows),
                         f"{counts.expected_by_category.get(category, 0):,}"))
        fill(self.query_one("#categories", DataTable), rows, keys=list(CATEGORIES))

    def _show_timeline(self, data: OverviewData) -> None:
        timeline = (data.files.report or {}).get("timeline") or []
        if timeline:
            rates = [b["mismatches"] / b["n"] if b.get("n") else 0.0 for b in timeline]
            caption = f"report timeline, {len(rates)} buckets"
        else:
            rates = data.counts.part_rates()
            caption = f"per committed batch, {len(rates)} batches"
        if rates:
            caption += f" · peak {max(rates) * 100:.1f}% · last {rates[-1] * 100:.1f}%"
        self.query_one("#timeline", Sparkline).data = rates
        self.query_one("#timeline-caption", Static).update(caption)

    def _show_money(self, report: dict[str, Any] | None) -> None:
        by_currency = ((report or {}).get("money") or {}).get("by_currency") or {}
        fill(self.query_one("#money", DataTable), [
            (currency, fmt.money(m.get("at_stake_minor"), currency),
             fmt.money(m.get("false_decline_minor"), currency),
             fmt.money(m.get("fraud_let_through_minor"), currency))
            for currency, m in sorted(by_currency.items())])

    def _show_segments(self, report: dict[str, Any] | None) -> None:
        segments = sorted((report or {}).get("segments") or [],
                          key=lambda s: (-int(s.get("mismatches", 0)), str(s.get("value"))))
        shown = segments[:SEGMENTS_SHOWN_MAX]
        names = [f"{s.get('dimension')}={s.get('value')}" for s in shown]
        fill(self.query_one("#segments", DataTable), [
            (name, f"{s.get('n', 0):,}", f"{s.get('mismatches', 0):,}",
             fmt.rate(int(s.get("mismatches", 0)), int(s.get("n", 0))))
            for name, s in zip(names, shown, strict=True)], keys=names)


def phase_line(plan: PlanView | None) -> str:
    """"phase canary-1 (1% on candidate) · gate for canary-5: FAIL (2 of 9 checks)"."""
    if plan is None:
        return "plan: none given (--plan-db URL shows the phase and its gate)"
    if plan.error:
        return f"plan: {plan.error}"
    text = f"phase {plan.phase} ({plan.percent:g}% on candidate)"
    gate = plan.gate
    if gate is None:
        return text + " · last phase"
    if gate.get("passed") is None:
        return text + f" · gate for {gate['phase']}: not judged ({gate.get('error', '')})"
    failed = sum(1 for c in gate["checks"] if not c["passed"])
    verdict = "PASS" if gate["passed"] else f"FAIL ({failed} of {len(gate['checks'])} checks)"
    return text + f" · gate for {gate['phase']}: {verdict}"


def totals_line(counts: RunCounts, files: RunFiles) -> str:
    """Rows so far, unexpected mismatches and their rate, the replay's progress from its
    checkpoint, and conservation from the report."""
    quarantined = counts.by_category.get("quarantined", 0)
    text = (f"rows {counts.rows:,} · mismatches {counts.mismatches:,}"
            f" ({fmt.rate(counts.mismatches, counts.rows)}) · quarantined {quarantined:,}")
    checkpoint = files.checkpoint or {}
    if isinstance(checkpoint.get("batches_committed"), int):
        state = "finished" if checkpoint.get("finished") else "running"
        text += f" · {checkpoint['batches_committed']:,} batches, replay {state}"
    report = files.report
    if report is not None:
        ok = (report.get("counts") or {}).get("conservation_ok")
        text += f" · conservation {'ok' if ok else 'BROKEN'}"
    else:
        text += " · report pending"
    return text + "".join(f"\n! {p}" for p in files.problems)


def mismatch_categories() -> list[str]:
    """Categories counted as mismatches, for the command palette."""
    return [c for c in CATEGORIES if c not in NOT_MISMATCH]
