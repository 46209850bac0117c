"""Where a cutover stands: an append-only event log of phase changes, approvals and evidence.

The current phase, the approvals and the bake clock are all derived from the log, so the log is
the single source of truth and nothing is ever updated or deleted. Rules are pure functions over
the events (``blockers``); ``PlanMachine`` is the thin shell that reads and appends inside one
database transaction per command. Works on SQLite (default) and PostgreSQL via SQLAlchemy Core.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa

from cutover.errors import ConfigError, PlanError
from cutover.migrate.gate import GateResult, evaluate, evidence_of
from cutover.migrate.plan import Plan, parse_plan

DEFAULT_PREFIX: Final = "cutover_plan_"
#: Actions that move the cutover to another phase; bake time counts from the last of them.
PHASE_CHANGES: Final = ("init", "advance", "rollback")
ACTOR_CHARS_MAX: Final = 200
_PREFIX: Final = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
REASON_CHARS_MAX: Final = 2000


def utcnow() -> datetime:
    """The real clock; tests inject their own."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Event:
    """One row of the log."""

    seq: int
    at: datetime
    actor: str
    action: str
    from_phase: str | None
    to_phase: str | None
    report_sha256: str | None = None
    gate: dict[str, Any] | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {**self.__dict__, "at": self.at.isoformat()}


def current_phase(events: list[Event]) -> str:
    """The phase the last phase change moved to."""
    changes = [e for e in events if e.action in PHASE_CHANGES]
    if not changes:
        raise PlanError("the plan has not been initialised: run `cutover plan init PLAN_FILE`")
    return changes[-1].to_phase or ""


def identity(actor: str) -> str:
    """One person, however they typed their name: Unicode-normalised (NFKC), case-folded,
    trimmed, inner whitespace collapsed. ``alice``, ``ALICE`` and `` Alice `` are one approver."""
    return " ".join(unicodedata.normalize("NFKC", actor).casefold().split())


def approvers(events: list[Event], target: str) -> set[str]:
    """Distinct people (by ``identity``) who approved ``target`` since the last phase change;
    older approvals do not carry over a rollback."""
    last_change = max(e.seq for e in events if e.action in PHASE_CHANGES)
    return {identity(e.actor) for e in events
            if e.action == "approve" and e.to_phase == target and e.seq > last_change}


def blockers(plan: Plan, events: list[Event], now: datetime, gate: GateResult) -> list[str]:
    """Every reason the cutover may not move to the next phase now; empty means go."""
    here = current_phase(events)
    index = plan.index(here)
    if index + 1 >= len(plan.phases):
        return [f'phase "{here}" is the last phase; there is nothing to advance to']
    target = plan.phases[index + 1]
    found: list[str] = []
    if not gate.passed:
        failed = "; ".join(c.message for c in gate.failures)
        found.append(f'gate for "{target.name}" failed: {failed}')
    have = approvers(events, target.name)
    if len(have) < target.approvals:
        found.append(f'approvals for "{target.name}": {len(have)} distinct of {target.approvals} '
                     f"needed (have: {', '.join(sorted(have)) or 'none'})")
    entered = max(e.at for e in events if e.action in PHASE_CHANGES)
    baked_s = (now - entered).total_seconds()
    bake_s = plan.phase(here).bake_s
    if baked_s < bake_s:
        found.append(f'bake time of "{here}": {baked_s / 3600:.2f}h elapsed of '
                     f"{bake_s / 3600:.2f}h required")
    return found


#: The report's name when the caller gave no file (tests, library use): never compared as a file.
DEFAULT_SOURCE: Final = "report"


def changed_evidence(events: list[Event], evidence: dict[str, Any]) -> list[str]:
    """The report differs from one an earlier advance recorded for the same file or run.

    A report is evidence once a phase was entered on it: if its bytes (or a later report of
    the same run) change, what was approved is no longer what is shown.
    """
    for e in events:
        seen = (e.gate or {}).get("evidence") or {}
        if e.action != "advance" or not seen or seen.get("report_sha256") == \
                evidence["report_sha256"]:
            continue
        same_file = seen.get("report") not in (None, DEFAULT_SOURCE) and \
            seen.get("report") == evidence["report"]
        same_run = seen.get("run_id") is not None and seen.get("run_id") == evidence["run_id"]
        if same_file or same_run:
            what = f"file {evidence['report']}" if same_file else f"run {evidence['run_id']}"
            return [f"the evidence changed: {what} was recorded with sha256 "
                    f"{seen['report_sha256'][:16]}… when entering \"{e.to_phase}\" (event "
                    f"{e.seq}); this report's sha256 is {evidence['report_sha256'][:16]}…; "
                    "replay anew for new evidence"]
    return []


def _tables(prefix: str) -> tuple[sa.MetaData, sa.Table]:
    meta = sa.MetaData()
    events = sa.Table(
        f"{prefix}events", meta,
        # seq is unique and computed as max + 1 inside the transaction, so two concurrent
        # writers collide on the constraint instead of both appending from a stale view.
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(ACTOR_CHARS_MAX), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("from_phase", sa.String(100)),
        sa.Column("to_phase", sa.String(100)),
        sa.Column("report_sha256", sa.String(64)),
        sa.Column("gate_json", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("plan_toml", sa.Text),
        sa.Column("plan_source", sa.Text),
    )
    return meta, events


def _append_only_ddl(dialect: str, table: str) -> list[str]:
    """Triggers that make the database itself refuse UPDATE and DELETE on the history, so the
    append-only promise holds even for someone with a SQL prompt and no cutover."""
    message = f"{table} is append-only: history is never updated or deleted"
    if dialect == "sqlite":
        return [f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END" for verb in ("UPDATE", "DELETE")]
    if dialect == "postgresql":
        return [f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger "
                f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{message}'; END $$",
                f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON "
                f"{table} FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"]
    return []


def _clean(text: str, what: str, limit: int) -> str:
    text = (text or "").strip()
    if not text:
        raise PlanError(f"{what} must not be empty: history records who did what and why")
    if len(text) > limit:
        raise PlanError(f"{what} is {len(text)} characters; the limit is {limit}")
    return text


class PlanMachine:
    """The phase state machine over one database; each public method is one transaction."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], datetime] = utcnow,
                 prefix: str = DEFAULT_PREFIX) -> None:
        self.engine = engine
        self.clock = clock
        if not _PREFIX.match(prefix):
            raise ConfigError(f"table prefix {prefix!r} must match {_PREFIX.pattern}")
        self.meta, self.events = _tables(prefix)

    def _rows(self, conn: sa.Connection) -> list[Any]:
        return list(conn.execute(sa.select(self.events).order_by(self.events.c.seq)))

    def _read(self, conn: sa.Connection) -> tuple[Plan, list[Event]]:
        rows = self._rows(conn)
        if not rows:
            raise PlanError("the plan has not been initialised: run `cutover plan init PLAN_FILE`")
        plan = parse_plan(tomllib.loads(rows[0].plan_toml), rows[0].plan_source or "plan")
        events = [Event(r.seq, datetime.fromisoformat(r.at), r.actor, r.action, r.from_phase,
                        r.to_phase, r.report_sha256,
                        json.loads(r.gate_json) if r.gate_json else None, r.reason)
                  for r in rows]
        return plan, events

    def _append(self, conn: sa.Connection, **values: Any) -> Event:
        seq = conn.execute(sa.select(sa.func.coalesce(sa.func.max(self.events.c.seq), 0)))
        values["seq"] = int(seq.scalar_one()) + 1
        values["at"] = self.clock().astimezone(UTC).isoformat()
        gate = values.pop("gate", None)
        values["gate_json"] = json.dumps(gate, sort_keys=True) if gate is not None else None
        try:
            conn.execute(sa.insert(self.events).values(**values))
        except sa.exc.IntegrityError as exc:
            raise PlanError("another plan command wrote to the history at the same time; "
                            "nothing was recorded, run the command again") from exc
        return Event(values["seq"], datetime.fromisoformat(values["at"]), values["actor"],
                     values["action"], values.get("from_phase"), values.get("to_phase"),
                     values.get("report_sha256"), gate, values.get("reason"))

    def init(self, plan_toml: str, source: str, actor: str) -> Plan:
        """Create the log and start the plan in its first phase; refuse a second init."""
        try:
            plan = parse_plan(tomllib.loads(plan_toml), source)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
        self.meta.create_all(self.engine)
        with self.engine.begin() as conn:
            for statement in _append_only_ddl(self.engine.dialect.name, self.events.name):
                conn.execute(sa.text(statement))
            if self._rows(conn):
                raise PlanError("a plan is already initialised in this database; "
                                "use a new --db for a new plan")
            self._append(conn, actor=_clean(actor, "--as", ACTOR_CHARS_MAX), action="init",
                         to_phase=plan.phases[0].name, plan_toml=plan_toml, plan_source=source)
        return plan

    def state(self) -> tuple[Plan, list[Event]]:
        """The plan and every event, oldest first."""
        try:
            with self.engine.connect() as conn:
                return self._read(conn)
        except sa.exc.OperationalError as exc:
            raise PlanError("no plan state here (cannot read the events table): run "
                            "`cutover plan init PLAN_FILE` first or pass the right --db") from exc
        except sa.exc.ProgrammingError as exc:
            raise PlanError("no plan state here: run `cutover plan init PLAN_FILE` first or "
                            "pass the right --db") from exc

    def _next(self, conn: sa.Connection, verb: str) -> tuple[Plan, list[Event], str, Any]:
        """The plan, its history, the current phase and the next one; refuse past the last."""
        plan, events = self._read(conn)
        here = current_phase(events)
        index = plan.index(here)
        if index + 1 >= len(plan.phases):
            raise PlanError(f'phase "{here}" is the last phase; there is nothing to {verb}')
        return plan, events, here, plan.phases[index + 1]

    def approve(self, actor: str, phase: str | None = None) -> Event:
        """Record one person's approval for entering the next phase."""
        actor = _clean(actor, "--as", ACTOR_CHARS_MAX)
        with self.engine.begin() as conn:
            plan, events, here, next_phase = self._next(conn, "approve")
            target = next_phase.name
            if phase is not None and phase != target:
                plan.phase(phase)
                raise PlanError(f'can only approve the next phase "{target}" (current "{here}"),'
                                f' not "{phase}"')
            return self._append(conn, actor=actor, action="approve", from_phase=here,
                                to_phase=target)

    def advance(self, report: dict[str, Any], report_sha256: str, actor: str,
                confidence: float = 0.95, source: str = "report") -> tuple[Event, GateResult]:
        """Move to the next phase if the gate passes on ``report``, approvals and bake allow.

        A refusal is recorded in the history too (action ``advance_refused``), then raised.
        """
        actor = _clean(actor, "--as", ACTOR_CHARS_MAX)
        with self.engine.begin() as conn:
            plan, events, here, target = self._next(conn, "advance to")
            plan_row = self._rows(conn)[0]
            evidence = evidence_of(report, source, report_sha256, plan_row.plan_source or "plan",
                                   hashlib.sha256(plan_row.plan_toml.encode()).hexdigest(),
                                   target.name)
            gate = evaluate(report, target.gate, confidence, phase=target.name, source=source,
                            evidence=evidence)
            found = changed_evidence(events, evidence) + blockers(plan, events, self.clock(), gate)
            action = "advance_refused" if found else "advance"
            event = self._append(conn, actor=actor, action=action, from_phase=here,
                                 to_phase=target.name, report_sha256=report_sha256,
                                 gate=gate.to_dict(), reason="; ".join(found) or None)
        if found:
            raise PlanError(f'cannot advance "{here}" -> "{target.name}": ' + " | ".join(found))
        return event, gate

    def rollback(self, actor: str, reason: str, to: str | None = None) -> Event:
        """Go back at once, to the previous phase or to ``to``; always allowed."""
        actor = _clean(actor, "--as", ACTOR_CHARS_MAX)
        reason = _clean(reason, "--reason", REASON_CHARS_MAX)
        with self.engine.begin() as conn:
            plan, events = self._read(conn)
            here = current_phase(events)
            index = plan.index(here)
            target = plan.phases[max(index - 1, 0)].name if to is None else to
            if plan.index(target) > index:
                raise PlanError(f'rollback goes backwards: "{target}" is after "{here}"; '
                                "use `cutover plan advance` to move forward")
            return self._append(conn, actor=actor, action="rollback", from_phase=here,
                                to_phase=target, reason=reason)
