"""Integration tests of the phase state machine on real SQLite and (when set) PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from cutover.errors import PlanError
from cutover.migrate.state import PlanMachine
from tests.migrate_support import PG_HOWTO, SMALL_PLAN, FakeClock, make_report, pg_url

GOOD = make_report(10_000, {"approve_to_decline": 100})
BAD = make_report(10_000, {"approve_to_decline": 900})


@pytest.fixture(params=["sqlite", "postgres"])
def machine(request, tmp_path):
    """A fresh PlanMachine with a fake clock on SQLite, or on PostgreSQL with its own prefix."""
    clock = FakeClock()
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'plan.db'}")
        yield PlanMachine(engine, clock)
        engine.dispose()
        return
    url = pg_url()
    if not url:
        pytest.skip(PG_HOWTO)
    engine = sa.create_engine(url)
    prefix = f"t_plan_{uuid.uuid4().hex[:8]}_"
    built = PlanMachine(engine, clock, prefix=prefix)
    yield built
    built.meta.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP FUNCTION IF EXISTS {prefix}events_append_only()"))
    engine.dispose()


def _to_canary_1(m: PlanMachine) -> None:
    m.init(SMALL_PLAN, "small.toml", "alice")
    m.approve("bob")
    m.approve("carol")
    m.advance(GOOD, "a" * 64, "alice")


def _phase(m: PlanMachine) -> str:
    from cutover.migrate.state import current_phase

    return current_phase(m.state()[1])


def test_advance_needs_distinct_approvals(machine):
    """One person approving twice is one approval: advancing is refused naming approvals."""
    machine.init(SMALL_PLAN, "small.toml", "alice")
    machine.approve("bob")
    machine.approve("bob")
    with pytest.raises(PlanError) as info:
        machine.advance(GOOD, "a" * 64, "alice")
    assert 'approvals for "canary-1": 1 distinct of 2 needed (have: bob)' in str(info.value)
    assert "gate" not in str(info.value) and "bake" not in str(info.value)
    assert _phase(machine) == "shadow"


def test_approver_names_differing_in_case_or_spaces_are_one_person(machine):
    """alice, ALICE, ' Alice ' and the full-width ａｌｉｃｅ approving are one approval of two."""
    machine.init(SMALL_PLAN, "small.toml", "carol")
    for name in ("alice", "ALICE", " Alice ", "\uff41\uff4c\uff49\uff43\uff45"):
        machine.approve(name)
    with pytest.raises(PlanError) as info:
        machine.advance(GOOD, "a" * 64, "carol")
    assert 'approvals for "canary-1": 1 distinct of 2 needed (have: alice)' in str(info.value)
    assert _phase(machine) == "shadow"


def test_advance_needs_a_passing_report(machine):
    """A 9% approve_to_decline report fails the 5% gate: refused naming the gate check."""
    machine.init(SMALL_PLAN, "small.toml", "alice")
    machine.approve("bob")
    machine.approve("carol")
    with pytest.raises(PlanError) as info:
        machine.advance(BAD, "b" * 64, "alice")
    assert 'gate for "canary-1" failed: rate approve_to_decline' in str(info.value)
    assert "approvals" not in str(info.value)
    assert _phase(machine) == "shadow"


def test_advance_waits_for_bake_time(machine):
    """canary-1 bakes 24h: at 23h advancing is refused naming bake time, at 24h it goes."""
    _to_canary_1(machine)
    machine.approve("dave")
    machine.clock.advance(hours=23)
    with pytest.raises(PlanError) as info:
        machine.advance(GOOD, "a" * 64, "alice")  # the same report: the same sha256
    assert 'bake time of "canary-1": 23.00h elapsed of 24.00h required' in str(info.value)
    machine.clock.advance(hours=1)
    event, gate = machine.advance(GOOD, "a" * 64, "alice")
    assert (event.to_phase, gate.passed, _phase(machine)) == ("canary-5", True, "canary-5")


def test_approvals_do_not_survive_a_rollback(machine):
    """Approvals given before a rollback do not count toward re-entering the phase."""
    machine.init(SMALL_PLAN, "small.toml", "alice")
    machine.approve("bob")
    machine.approve("carol")
    machine.rollback("alice", "drill")
    with pytest.raises(PlanError, match="0 distinct of 2 needed"):
        machine.advance(GOOD, "a" * 64, "alice")


@pytest.mark.parametrize("start", ["shadow", "canary-1", "canary-5", "full"])
def test_rollback_from_any_phase(machine, start):
    """From every phase, rollback to the previous one and --to shadow both work at once."""
    machine.init(SMALL_PLAN, "small.toml", "alice")
    order = ["shadow", "canary-1", "canary-5", "full"]
    for _ in order[1:order.index(start) + 1]:
        for who in ("bob", "carol"):
            machine.approve(who)
        machine.clock.advance(hours=25)
        machine.advance(GOOD, "a" * 64, "alice")
    assert _phase(machine) == start
    event = machine.rollback("ops", "pager fired")
    assert event.to_phase == order[max(order.index(start) - 1, 0)] == _phase(machine)
    machine.rollback("ops", "all the way", to="shadow")
    assert _phase(machine) == "shadow"


def test_history_lists_every_step_with_evidence(machine):
    """History keeps init, approvals, the refused and the accepted advance, and the rollback."""
    machine.init(SMALL_PLAN, "small.toml", "alice")
    machine.approve("bob")
    with pytest.raises(PlanError):
        machine.advance(GOOD, "e" * 64, "alice")
    machine.approve("carol")
    machine.advance(GOOD, "f" * 64, "alice")
    machine.rollback("ops", "latency alarm")
    _, events = machine.state()
    assert [(e.seq, e.actor, e.action) for e in events] == [
        (1, "alice", "init"), (2, "bob", "approve"), (3, "alice", "advance_refused"),
        (4, "carol", "approve"), (5, "alice", "advance"), (6, "ops", "rollback")]
    assert events[4].report_sha256 == "f" * 64 and events[4].gate["passed"] is True
    assert events[2].reason.startswith('approvals for "canary-1"')
    assert events[5].reason == "latency alarm" and events[5].to_phase == "shadow"


def test_second_init_and_forward_rollback_are_refused(machine):
    """A db holds one plan; rollback cannot move forward; approving a far phase is refused."""
    machine.init(SMALL_PLAN, "small.toml", "alice")
    with pytest.raises(PlanError, match="already initialised"):
        machine.init(SMALL_PLAN, "small.toml", "alice")
    with pytest.raises(PlanError, match='"full" is after "shadow"'):
        machine.rollback("ops", "x", to="full")
    with pytest.raises(PlanError, match='can only approve the next phase "canary-1"'):
        machine.approve("bob", phase="full")


@pytest.mark.parametrize("statement", ["UPDATE {t} SET actor = 'mallory'", "DELETE FROM {t}"])
def test_history_cannot_be_rewritten_in_sql(machine, statement):
    """The database itself refuses UPDATE and DELETE on the history table."""
    machine.init(SMALL_PLAN, "small.toml", "alice")
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), machine.engine.begin() as conn:
        conn.execute(sa.text(statement.format(t=machine.events.name)))
    _, events = machine.state()
    assert [(e.actor, e.action) for e in events] == [("alice", "init")]
