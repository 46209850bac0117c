"""A report is evidence: re-reporting writes a new version, and a plan refuses changed evidence."""

import hashlib
import json

import pytest
import sqlalchemy as sa

from cutover.errors import PlanError
from cutover.migrate.state import PlanMachine
from cutover.replay.engine import run_replay
from cutover.shadow.report import write_reports
from tests.migrate_support import SMALL_PLAN, FakeClock
from tests.replay_support import make_traffic, write_store


@pytest.fixture()
def recorded(tmp_path):
    """A replay of 1,500 rows whose report.json entered canary-1 through `plan advance`."""
    store = write_store(tmp_path / "store", make_traffic(1_500, seed=8))
    run = tmp_path / "run"
    run_replay(store, run, candidate="tests.replay_support:exact_candidate", latency_sample_max=0)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    clock = FakeClock()
    machine = PlanMachine(engine, clock)
    machine.init(SMALL_PLAN, "small.toml", "alice")
    machine.approve("bob")
    machine.approve("carol")
    clock.advance(hours=1)
    path = run / "report.json"
    raw = path.read_bytes()
    machine.advance(json.loads(raw), hashlib.sha256(raw).hexdigest(), "alice", source=str(path))
    machine.approve("dave")
    clock.advance(hours=25)
    yield {"run": run, "machine": machine, "raw": raw, "path": path}
    engine.dispose()


def _advance(machine, path):
    raw = path.read_bytes()
    return machine.advance(json.loads(raw), hashlib.sha256(raw).hexdigest(), "alice",
                           source=str(path))


def test_a_re_report_leaves_the_recorded_report_and_the_next_advance_refuses_it(recorded):
    """report-2.json is written beside report.json (bytes unchanged); advancing on it is refused."""
    run = recorded["run"]
    first_md = (run / "report.md").read_bytes()
    first_charts = {p.name: p.read_bytes() for p in (run / "charts").iterdir()}
    (run / "diff_rules.toml").write_text((run / "diff_rules.toml").read_text() + "\n")
    again = write_reports(run)
    assert again["run"]["report_version_of_run"] == 2
    assert (run / "report-2.json").is_file() and "charts-2/" in (run / "report-2.md").read_text()
    assert recorded["path"].read_bytes() == recorded["raw"]
    assert (run / "report.md").read_bytes() == first_md
    assert {p.name: p.read_bytes() for p in (run / "charts").iterdir()} == first_charts
    with pytest.raises(PlanError, match="evidence changed: run"):
        _advance(recorded["machine"], run / "report-2.json")
    history = recorded["machine"].state()[1]
    assert history[-1].action == "advance_refused" and "evidence changed" in history[-1].reason


def test_a_report_edited_in_place_is_refused_and_the_unchanged_one_still_advances(recorded):
    """Bytes of the recorded file changed: refused; restored: the next phase's gate judges it."""
    path, machine = recorded["path"], recorded["machine"]
    path.write_bytes(recorded["raw"].replace(b'"report_version"', b'"report_version" ', 1))
    with pytest.raises(PlanError, match="evidence changed: file"):
        _advance(machine, path)
    path.write_bytes(recorded["raw"])
    event, gate = _advance(machine, path)
    assert event.action == "advance" and event.to_phase == "canary-5"
    assert gate.evidence["report_sha256"] == hashlib.sha256(recorded["raw"]).hexdigest()
    assert gate.evidence["run_id"] and gate.evidence["policy"] == "small.toml"
