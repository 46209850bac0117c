"""The replay engine end to end on a small store: conservation, parts, report, narrowing."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from cutover.domain import DECISION, DIFF
from cutover.errors import InputError
from cutover.replay.engine import run_replay
from cutover.store.filters import hash_fraction
from tests.replay_support import (
    exact_candidate,  # noqa: F401  (imported by name through --candidate)
    gate_canary,
    make_traffic,
    read_parts,
    with_bad_rows,
    write_store,
)

MIRROR = "tests.replay_support:mirror_candidate"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """6,000 rows over three days, five of them broken in five ways."""
    root = tmp_path_factory.mktemp("store")
    return write_store(root, with_bad_rows(make_traffic(6_000, seed=3)))


def test_every_row_lands_in_exactly_one_category(store, tmp_path):
    """Bad rows, legacy-side and candidate errors and mismatches all add up to rows in."""
    out = tmp_path / "run"
    summary = run_replay(store, out, candidate=MIRROR, batch_rows=1_000,
                         candidate_options={"raise_share": "0.25", "error_share": "0.02"})
    diffs = read_parts(out, "diffs")
    assert summary.rows_in == 6_000 and diffs.num_rows == 6_000 and summary.conservation_ok
    assert diffs.schema == DIFF and read_parts(out, "decisions").schema == DECISION
    assert len(set(diffs["txn_id"].to_pylist())) == 6_000
    assert summary.by_category["quarantined"] == 5
    # A batch that raised becomes candidate_error as a whole (its replayable rows).
    raised = pc.equal(diffs["candidate_reason"], "RuntimeError: mirror candidate failed on purpose")
    assert pc.sum(raised).as_py() % 1_000 in (0, 999, 998, 997, 996, 995)
    assert summary.by_category["candidate_error"] > pc.sum(raised).as_py() > 0
    report = json.loads((out / "report.json").read_text())
    counts = report["counts"]
    assert counts["in"] == 6_000 and counts["conservation_ok"] is True
    assert sum(counts["by_category"].values()) == 6_000
    assert counts["by_category"] == summary.by_category
    assert report["errors"]["quarantined"] == 5
    assert report["rates"]["route_change"]["k"] == (counts["by_category"]["route_change"]
                                                    - counts["expected_by_category"].get(
                                                        "route_change", 0))
    assert (out / "report.md").read_text().count("![") >= 2
    assert len(list((out / "diffs").glob("part-*.parquet"))) == 6


def test_the_gate_can_judge_the_report(store, tmp_path):
    """cutover gate reads the report: pass or fail, never "unusable input"."""
    out = tmp_path / "run"
    run_replay(store, out, candidate=MIRROR, batch_rows=2_000)
    result = gate_canary(out / "report.json")
    assert result.returncode in (0, 1), result.stderr


def test_an_exact_candidate_matches_every_replayable_row(store, tmp_path):
    """A candidate deciding like the legacy core gives only matches (and the quarantined)."""
    summary = run_replay(store, tmp_path / "run", candidate="tests.replay_support:exact_candidate",
                         batch_rows=700, report=False)
    assert summary.by_category["match"] == 6_000 - 5
    assert summary.by_category["quarantined"] == 5


def test_a_nonempty_run_dir_is_refused_and_a_finished_resume_changes_nothing(store, tmp_path):
    """Rerun without --resume: InputError; --resume on a finished run: same bytes."""
    out = tmp_path / "run"
    run_replay(store, out, candidate=MIRROR, batch_rows=2_000, report=False)
    with pytest.raises(InputError, match="not empty"):
        run_replay(store, out, candidate=MIRROR, batch_rows=2_000, report=False)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    summary = run_replay(store, out, candidate=MIRROR, batch_rows=2_000, report=False,
                         resume=True)
    assert summary.already_finished
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    with pytest.raises(InputError, match="different inputs or options"):
        run_replay(store, out, candidate=MIRROR, batch_rows=1_000, report=False, resume=True)
    forced = run_replay(store, out, candidate=MIRROR, batch_rows=1_000, report=False, force=True)
    assert forced.batches == 6


def test_narrowing_by_time_merchant_sample_and_limit(store, tmp_path):
    """Each narrowing reads exactly the rows it names."""
    full = make_traffic(6_000, seed=3)
    m = run_replay(store, tmp_path / "m", candidate=MIRROR, merchant="M0003", report=False)
    assert m.rows_in == pc.sum(pc.equal(full["merchant_id"], "M0003")).as_py()
    s = run_replay(store, tmp_path / "s", candidate=MIRROR, sample=0.2, report=False)
    assert s.rows_in == int((hash_fraction(with_bad_rows(full)["txn_id"]) < 0.2).sum())
    t = run_replay(store, tmp_path / "t", candidate=MIRROR, since="2026-10-02",
                   until="2026-10-03T12:00:00Z", report=False)
    ts = pc.cast(full["ts"], "int64").to_numpy()
    since_us = int(datetime(2026, 10, 2, tzinfo=UTC).timestamp() * 1e6)
    until_us = int(datetime(2026, 10, 3, 12, tzinfo=UTC).timestamp() * 1e6)
    assert 0 < t.rows_in == int(((ts >= since_us) & (ts < until_us)).sum())
    calls = []
    limited = run_replay(store, tmp_path / "l", candidate=MIRROR, limit=1_234, batch_rows=500,
                         report=False, on_progress=calls.append)  # the one-argument form
    assert limited.rows_in == 1_234 and limited.batches == 3
    assert calls == [500, 1_000, 1_234]
    first = pq.read_table(tmp_path / "l" / "diffs" / "part-000000.parquet")
    assert first["txn_id"].to_pylist() == full["txn_id"].to_pylist()[:500]


def test_bad_arguments_are_input_errors(store, tmp_path):
    """A bad date, sample or candidate spec is refused before anything is written."""
    with pytest.raises(InputError):
        run_replay(store, tmp_path / "a", candidate=MIRROR, since="yesterday")
    with pytest.raises(InputError):
        run_replay(store, tmp_path / "b", candidate=MIRROR, sample=1.5)
    with pytest.raises(InputError):
        run_replay(store, tmp_path / "c", candidate="no_such_module:thing")
    assert not (tmp_path / "c").exists()


def test_an_operator_rule_appended_later_is_applied_by_cutover_report(store, tmp_path):
    """Agreeing to one merchant's declines in diff_rules.toml moves exactly its
    approve_to_decline rows to expected in the rebuilt report."""
    from cutover.shadow.diff_rules import append_expected_rule
    from cutover.shadow.report import build_report
    out = tmp_path / "run"
    summary = run_replay(store, out, candidate=MIRROR, batch_rows=2_000)
    before = json.loads((out / "report.json").read_text())
    assert summary.mismatches == before["rates"]["mismatch"]["k"]
    assert before["run"]["rules_reapplied"] is False
    diffs = read_parts(out, "diffs")
    a2d = diffs.filter(pc.and_(pc.equal(diffs["category"], "approve_to_decline"),
                               pc.equal(diffs["merchant_id"], "M0005")))
    assert a2d.num_rows > 0
    append_expected_rule(out / "diff_rules.toml", category="approve_to_decline",
                         fields=["decision", "reason", "fee_minor", "route"],
                         segment={"merchant_id": "M0005"}, reason="agreed", by="ops")
    after = build_report(out)
    assert after["run"]["rules_reapplied"] is True
    assert after["counts"]["by_category"] == before["counts"]["by_category"]
    assert after["counts"]["expected_by_category"].get("approve_to_decline", 0) == a2d.num_rows
    assert after["rates"]["approve_to_decline"]["k"] == \
        before["rates"]["approve_to_decline"]["k"] - a2d.num_rows
