"""Plan: the cutover's phases and cohorts, the next phase's gate on this run, approvals and
the history, read from the plan state database given with --plan-db."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static

from cutover.tui import format as fmt
from cutover.tui.screens.base import RunScreen
from cutover.tui.views.plan import PlanView, read_plan
from cutover.tui.views.run import read_run_files
from cutover.tui.widgets.tables import fill


class PlanScreen(RunScreen):
    """Where the cutover stands."""

    TITLE = "Plan"

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with VerticalScroll(id="plan"):
            yield Static("plan: reading…", markup=False, id="plan-line")
            yield DataTable(id="phases", cursor_type="row", zebra_stripes=True)
            yield Static("", markup=False, id="gate-line")
            yield DataTable(id="checks", cursor_type="none")
            yield Static("history", classes="caption")
            yield DataTable(id="history", cursor_type="none")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#phases", DataTable).add_columns(
            "phase", "%", "cohort", "approvals", "bake", "gate", "state")
        # The verdict first: at 80 columns a long threshold must not push it off screen.
        self.query_one("#checks", DataTable).add_columns(
            "result", "check", "observed", "bound", "threshold")
        self.query_one("#history", DataTable).add_columns(
            "#", "at (UTC)", "who", "action", "from", "to", "gate", "reason")

    def fetch(self) -> PlanView | None:
        config = self.tui.config
        if not config.plan_db:
            return None
        return read_plan(config.plan_db, read_run_files(config.run_dir).report, config.clock)

    def show(self, view: PlanView | None) -> None:
        line = self.query_one("#plan-line", Static)
        if view is None or view.error:
            line.update("plan: " + (view.error if view else "none given; start with"
                                    " `cutover tui RUN_DIR --plan-db URL`"))
            return
        line.update(plan_line(view))
        fill(self.query_one("#phases", DataTable), [
            (p["phase"], f"{p['percent']:g}", p["cohort"], p["approvals"], fmt.hours(p["bake_s"]),
             p["gate"], p["state"]) for p in view.phases])
        self._show_gate(view)
        fill(self.query_one("#history", DataTable), [
            (e["seq"], e["at"], e["actor"], e["action"], e["from"], e["to"], e["gate"], e["reason"])
            for e in reversed(view.history)])

    def _show_gate(self, view: PlanView) -> None:
        checks = self.query_one("#checks", DataTable)
        fill(checks, [])
        gate = view.gate
        line = self.query_one("#gate-line", Static)
        if gate is None:
            line.update("gate: none (last phase)")
            return
        if gate.get("passed") is None:
            line.update(f"gate for {gate['phase']} on this run: not judged: {gate.get('error')}")
            return
        line.update(f"gate for {gate['phase']} on this run:"
                    f" {'PASS' if gate['passed'] else 'FAIL'}")
        # Failures first: at 80x24 the reasons a gate is closed must be on the first screen.
        fill(checks, [("pass" if c["passed"] else "FAIL", c["name"], c["observed"], c["bound"],
                       c["threshold"]) for c in sorted(gate["checks"], key=lambda c: c["passed"])])


def plan_line(view: PlanView) -> str:
    """Phase, exposure, bake clock and the next phase's approvals, in one or two lines."""
    text = (f"plan {view.name}: phase {view.phase} ({view.percent:g}% on candidate),"
            f" baked {fmt.hours(view.baked_s)} of {fmt.hours(view.bake_s)}")
    nxt = view.next_phase
    if nxt:
        text += (f"\nnext {nxt['phase']} ({nxt['percent']:g}%): approvals"
                 f" {len(nxt['approved_by'])}/{nxt['approvals_needed']}"
                 f" ({', '.join(nxt['approved_by']) or 'none'})")
    return text
