"""The TUI's headless queries: paging, filters, sorting, counts, detail, ledger, plan, rules."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from datetime import UTC, datetime

import pytest

from cutover.tui.views import diffs as dv
from cutover.tui.views.counts import CountsCache
from cutover.tui.views.detail import explain
from cutover.tui.views.feedback import ExpectedPattern, append_expected, parse_segment_pairs
from cutover.tui.views.ledger import default_ledger_url, read_ledger
from cutover.tui.views.plan import read_plan
from cutover.tui.views.run import fingerprint, read_run_files, run_facts
from tests.tui_support import PATTERN, diff_rows, write_part


def test_default_page_is_the_first_mismatches_in_file_order(small_run):
    """Mismatches (not match, not quarantined) in batch order, page by page, no row twice."""
    dataset = dv.open_diffs(small_run)
    first = dv.page(dataset, dv.DiffQuery(page_rows=20))
    second = dv.page(dataset, dv.DiffQuery(page_rows=20, page=1))
    expected = [r["txn_id"] for r in diff_rows(0, 120) if r["category"] not in ("match", "quarantined")]
    assert first["txn_id"].to_pylist() == expected[:20]
    assert second["txn_id"].to_pylist() == expected[20:40]
    assert dv.count_rows(dataset, dv.DiffQuery()) == len(expected) == 45


def test_filters_combine_category_segment_amount_and_txn_search(small_run):
    """Every filter narrows the same way a row-by-row check does."""
    dataset = dv.open_diffs(small_run)
    query = dv.DiffQuery(category="route_change", segment=("merchant_id", "M0004"),
                         min_amount_minor=50_000)
    got = dv.page(dataset, query)["txn_id"].to_pylist()
    want = [r["txn_id"] for r in diff_rows(0, 120) if r["category"] == "route_change"
            and r["merchant_id"] == "M0004" and r["amount_minor"] >= 50_000]
    assert got == want and want
    assert dv.page(dataset, dv.DiffQuery(category="all", txn_id="T00011"))["txn_id"].to_pylist() \
        == [f"T00011{d}" for d in range(10)]


def test_sort_by_amount_descending_and_severity(small_run):
    """Sorted pages come out in the key's order (amounts by their indicative USD value, as
    minor units of EUR and USD do not compare), ties broken by txn id."""
    from cutover.stack.fx import load_fx, reference_amounts
    dataset = dv.open_diffs(small_run)
    amounts = dv.page(dataset, dv.DiffQuery(sort="amount_minor", descending=True))
    values = list(reference_amounts(load_fx(), amounts["amount_minor"].to_numpy(),
                                    amounts["currency"]))
    assert values == sorted(values, reverse=True) and len(values) == 45
    worst = dv.page(dataset, dv.DiffQuery(sort="severity", descending=True, page_rows=5))
    assert set(worst["severity"].to_pylist()) == {"critical"}


def test_parse_segment_refuses_unknown_dimensions():
    """A typo in the segment filter is an error, not an empty table."""
    assert dv.parse_segment(" channel = pos ") == ("channel", "pos")
    assert dv.parse_segment("") is None
    with pytest.raises(ValueError, match="DIMENSION=VALUE"):
        dv.parse_segment("merchant=M1")


def test_counts_cache_reads_only_new_parts(small_run, monkeypatch):
    """A poll after a new part reads that part alone; totals grow by its rows."""
    from cutover.tui.views import counts as counts_module
    cache = CountsCache()
    before = cache.counts(small_run)
    assert before.rows == 120 and before.by_category["route_change"] == 10
    read = []
    original = counts_module.read_part_counts
    monkeypatch.setattr(counts_module, "read_part_counts",
                        lambda p: read.append(p.name) or original(p))
    write_part(small_run, 2, diff_rows(120, 24))
    after = cache.counts(small_run)
    assert read == ["part-000002.parquet"]
    assert after.rows == 144 and after.by_category["match"] == before.by_category["match"] + \
        PATTERN.count("match")
    assert len(after.part_rates()) == 3


def test_fingerprint_changes_when_a_part_is_committed(small_run):
    """Follow mode's change detector sees a new part and ignores nothing else."""
    before = fingerprint(small_run)
    assert fingerprint(small_run) == before
    write_part(small_run, 2, diff_rows(120, 10))
    assert fingerprint(small_run) != before


def test_run_facts_name_the_candidate_and_model(small_run):
    """The Overview's run block comes from run.json."""
    facts = dict(run_facts(read_run_files(small_run)))
    assert facts["model_version"] == "xgb-2026-10-01"
    assert facts["candidate"] == "cutover.stack:default_stack"
    assert facts["input"] == "traffic/day=2026-10-01 (120 rows)"


def test_explain_puts_both_outcomes_side_by_side(small_run):
    """The drill-down (or the fallback) diffs the compared fields and keeps the reason codes."""
    found = explain(small_run, "T000003")
    assert found["row"]["category"] == "approve_to_decline"
    assert found["row"]["merchant_id"] == "M0004" and found["row"]["fields"] == ["decision"]
    assert found["legacy"]["decision"] == "approve"
    assert found["candidate"]["decision"] == "decline"
    assert found["candidate"]["model_version"] == "xgb-2026-10-01"
    changed = found["deepdiff"]["values_changed"]
    assert changed["root['decision']"] == {"old_value": "approve", "new_value": "decline"}
    assert "root['latency_ms']" not in changed
    codes = [c["code"] if isinstance(c, dict) else c for c in found["reason_codes"]]
    assert codes == ["R_VELOCITY", "R_AMOUNT"]
    assert explain(small_run, "T999999") is None


def test_fallback_explain_reads_the_diff_and_decision_rows(small_run):
    """Without the replay area's drill-down the Detail screen still has both sides."""
    from cutover.tui.views.detail import explain_from_rows
    found = explain_from_rows(small_run, "T000005")
    assert (found["legacy"]["route"], found["candidate"]["route"]) == ("GW_A", "GW_B")
    assert list(found["deepdiff"]["values_changed"]) == ["root['route']"]
    assert found["candidate"]["score"] == 0.1
    assert explain_from_rows(small_run, "T999999") is None


def test_ledger_view_shows_both_books_and_a_verified_chain(small_run):
    """Balances per class come from the real ledger; verify says intact."""
    view = read_ledger(default_ledger_url(small_run), small_run)
    assert view.error is None and view.url == "RUN_DIR/ledger.db"
    classes = {(r["account_class"], r["currency"]) for r in view.balances}
    assert ("MERCHANT_PAYABLE", "USD") in classes and ("FEE_EXPENSE", "EUR") in classes
    for row in view.balances:
        assert row["delta_minor"] == row["candidate_minor"] - row["legacy_minor"]
    assert view.verify["ok"] and view.verify["entries"] > 0


def test_ledger_view_without_a_ledger_says_how_to_make_one(tmp_path):
    """No ledger.db: an explanation, not an exception."""
    assert default_ledger_url(tmp_path) is None
    assert "cutover shadow apply" in read_ledger(None, tmp_path).error


def test_plan_view_judges_the_next_gate_on_this_run(small_run_template, small_run):
    """Phase, approvals and the next gate's verdict, from the plan db and report.json."""
    from tests.tui_support import T0, FixedClock
    report = read_run_files(small_run).report
    view = read_plan(f"sqlite:///{small_run_template / 'plan.db'}", report, FixedClock(T0))
    assert view.error is None and view.phase == "shadow"
    assert view.next_phase["approved_by"] == ["bob"]
    assert view.gate["passed"] is False
    assert any(c["name"] == "sample size" and not c["passed"] for c in view.gate["checks"])
    assert [e["action"] for e in view.history] == ["init", "approve"]


def test_plan_view_refuses_to_create_a_missing_sqlite_file(tmp_path):
    """A typo in --plan-db is reported, and no empty database appears."""
    view = read_plan(f"sqlite:///{tmp_path / 'nope.db'}", None)
    assert "no plan state" in view.error and not (tmp_path / "nope.db").exists()


def test_append_expected_writes_one_rule_with_who_when_why(small_run):
    """The rule lands in diff_rules.toml, parseable, with the operator's fields."""
    at = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)
    append_expected(small_run, ExpectedPattern("route_change", ("route",),
                                               {"merchant_id": "M0004"}, "new gateway", "dana"),
                    at=at)
    rules = tomllib.loads((small_run / "diff_rules.toml").read_text(encoding="utf-8"))
    rule = rules["expected"][-1]
    assert rule["category"] == "route_change" and rule["fields"] == ["route"]
    assert rule["segment"] == {"merchant_id": "M0004"}
    assert (rule["reason"], rule["by"]) == ("new gateway", "dana")
    assert rule["at"] == at


def test_append_expected_refuses_bad_input_before_writing(small_run):
    """No reason, or a field the diff engine does not compare: nothing is written."""
    before = (small_run / "diff_rules.toml").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="reason is required"):
        append_expected(small_run, ExpectedPattern("route_change", (), {}, " ", "dana"))
    with pytest.raises(ValueError, match="fields"):
        append_expected(small_run, ExpectedPattern("route_change", ("colour",), {}, "x", "dana"))
    assert (small_run / "diff_rules.toml").read_text(encoding="utf-8") == before
    assert parse_segment_pairs("merchant_id=M1, channel=pos") == {"merchant_id": "M1",
                                                                  "channel": "pos"}


def test_views_import_no_textual():
    """The headless half stays headless: importing every view loads no Textual."""
    code = ("import sys, cutover.tui.views.diffs, cutover.tui.views.counts, "
            "cutover.tui.views.detail, cutover.tui.views.ledger, cutover.tui.views.plan, "
            "cutover.tui.views.feedback, cutover.tui.views.run; "
            "print(any(m.split('.')[0] == 'textual' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_reason_codes_show_contributions_when_the_explanation_has_them():
    """A code with a contribution is shown signed to three places with its meaning; plain
    codes (the decision store keeps codes only) are listed as they are."""
    from cutover.tui.screens.detail import reasons_text
    text = reasons_text({"reason_codes": [
        {"code": "model:cross_border", "contribution": 0.41234,
         "text": "The card is from a different country than the merchant."},
        {"code": "rule:score_decline", "text": "rule:score_decline"}, "R_VELOCITY"],
        "features": {"amount_minor": 100}})
    assert text.splitlines() == [
        "reason codes:",
        "  model:cross_border +0.412: The card is from a different country than the merchant.",
        "  rule:score_decline", "  R_VELOCITY"]
