"""Where the cutover stands, read-only: phases, cohorts, the next gate on this run, history.

Reads the plan state database through ``cutover.migrate.state.PlanMachine`` (as `cutover plan
status|history` do) and judges the next phase's gate on the run's report with the pure
``cutover.migrate.gate.evaluate``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cutover.errors import CutoverError
from cutover.migrate.gate import evaluate
from cutover.migrate.state import PlanMachine, approvers, current_phase, utcnow


@dataclass
class PlanView:
    """What the Plan screen and the Overview's phase line show."""

    name: str = ""
    phase: str = ""
    percent: float = 0.0
    baked_s: int = 0
    bake_s: int = 0
    next_phase: dict[str, Any] | None = None
    phases: list[dict[str, Any]] = field(default_factory=list)
    gate: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def read_plan(url: str, report: dict[str, Any] | None,
              clock: Callable[[], datetime] | None = None) -> PlanView:
    """The plan state at ``url``; ``error`` set instead of raising when it cannot be read."""
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
        # SQLite would create a missing file on connect and show an empty plan: refuse instead.
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
                and not Path(parsed.database).exists():
            return PlanView(error=f"no plan state at {parsed.database}")
        engine = sa.create_engine(parsed)
    except (sa.exc.SQLAlchemyError, ValueError, ImportError) as exc:
        return PlanView(error=f"cannot read the plan: {exc}")
    machine = PlanMachine(engine, clock=clock or utcnow)
    try:
        plan, events = machine.state()
    except (CutoverError, sa.exc.SQLAlchemyError) as exc:
        return PlanView(error=f"cannot read the plan: {exc}")
    finally:
        # Follow mode reads the plan every second: close the pool now rather than leave its
        # connection to the garbage collector, which may run on the UI thread.
        engine.dispose()
    here = current_phase(events)
    index = plan.index(here)
    entered = max(e.at for e in events if e.action in ("init", "advance", "rollback"))
    view = PlanView(name=plan.name, phase=here, percent=plan.phases[index].cohort.percent,
                    baked_s=int((machine.clock() - entered).total_seconds()),
                    bake_s=plan.phases[index].bake_s,
                    phases=[_phase_row(p, i, index) for i, p in enumerate(plan.phases)],
                    history=[_event_row(e) for e in events])
    if index + 1 < len(plan.phases):
        target = plan.phases[index + 1]
        view.next_phase = {"phase": target.name, "percent": target.cohort.percent,
                           "approvals_needed": target.approvals,
                           "approved_by": sorted(approvers(events, target.name))}
        view.gate = _gate(report, target)
    return view


def _gate(report: dict[str, Any] | None, target: Any) -> dict[str, Any] | None:
    """The next phase's gate judged on this run's report, or why it cannot be."""
    if report is None:
        return {"phase": target.name, "passed": None, "checks": [],
                "error": "no report.json yet: the gate is judged when the replay finishes"}
    try:
        return evaluate(report, target.gate, phase=target.name, source="report.json").to_dict()
    except CutoverError as exc:
        return {"phase": target.name, "passed": None, "checks": [], "error": str(exc)}


def _phase_row(phase: Any, position: int, current: int) -> dict[str, Any]:
    cohort = phase.cohort
    limits = [f"{label} {','.join(sorted(values))}" for label, values in
              (("merchants", cohort.merchants), ("countries", cohort.countries),
               ("channels", cohort.channels)) if values]
    return {"phase": phase.name, "percent": cohort.percent,
            "cohort": "; ".join(limits) or "all", "approvals": phase.approvals,
            "bake_s": phase.bake_s, "gate": "yes" if phase.gate is not None else "-",
            "state": "current" if position == current else ("done" if position < current else "")}


def _event_row(event: Any) -> dict[str, Any]:
    gate = "" if event.gate is None else ("pass" if event.gate.get("passed") else "FAIL")
    return {"seq": event.seq, "at": event.at.strftime("%Y-%m-%d %H:%M"), "actor": event.actor,
            "action": event.action, "from": event.from_phase or "", "to": event.to_phase or "",
            "gate": gate, "reason": event.reason or ""}
