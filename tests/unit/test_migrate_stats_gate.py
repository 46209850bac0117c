"""Unit tests of the gate: Wilson bounds and each check, on crafted report dicts."""

from __future__ import annotations

import pytest

from cutover.errors import GateInputError
from cutover.migrate.gate import evaluate
from cutover.migrate.policy import parse_policy
from cutover.migrate.stats import wilson, z_for
from tests.migrate_support import make_report


def test_z_matches_the_normal_table():
    """The 95% two-sided quantile is 1.95996 and 99% is 2.5758."""
    assert z_for(0.95) == pytest.approx(1.959964, abs=1e-5)
    assert z_for(0.99) == pytest.approx(2.575829, abs=1e-5)


def test_wilson_known_values():
    """Wilson(20, 1000) at 95% is (0.01298, 0.03069), and n=0 knows nothing."""
    lo, hi = wilson(20, 1000, 0.95)
    assert lo == pytest.approx(0.012983, abs=1e-5)
    assert hi == pytest.approx(0.030690, abs=1e-5)
    assert wilson(0, 0) == (0.0, 1.0)


def test_rate_under_threshold_but_upper_bound_over_fails():
    """1.8% measured on 1,000 is under 2% but its upper bound (~2.8%) is over: FAIL."""
    policy = parse_policy({"min_sample": 1, "max_rate": {"approve_to_decline": 0.02}}, "t")
    result = evaluate(make_report(1000, {"approve_to_decline": 18}), policy, 0.95)
    rate = next(c for c in result.checks if c.name == "rate approve_to_decline")
    assert not rate.passed and not result.passed
    assert rate.observed == "1.80% (18/1,000)"
    assert "upper bound 2.83%" in rate.message


def test_same_rate_on_a_big_sample_passes():
    """1.8% on 1,000,000 has an upper bound of 1.83%: PASS under 2%."""
    policy = parse_policy({"min_sample": 1, "max_rate": {"approve_to_decline": 0.02}}, "t")
    result = evaluate(make_report(1_000_000, {"approve_to_decline": 18_000}), policy, 0.95)
    assert result.passed, [c.message for c in result.failures]


def test_small_sample_fails_on_sample_size():
    """900 transactions against min_sample 1,000 fails the sample size check only."""
    policy = parse_policy({"min_sample": 1000, "max_rate": {"mismatch": 1.0}}, "t")
    result = evaluate(make_report(900), policy)
    assert [c.name for c in result.failures] == ["sample size"]
    assert result.failures[0].message == "sample size: 900 transactions < 1,000"


def test_segment_failure_names_the_segment():
    """A merchant at 41% mismatches over 1,200 txns fails and is named; small ones are not."""
    policy = parse_policy({"min_sample": 1, "segment_min_n": 1000, "segment_max_mismatch_rate": 0.05}, "t")
    segments = [
        {"dimension": "merchant_id", "value": "M00042", "n": 1200, "mismatches": 492},
        {"dimension": "merchant_id", "value": "M00007", "n": 999, "mismatches": 900},
        {"dimension": "channel", "value": "ecom", "n": 50_000, "mismatches": 100},
    ]
    result = evaluate(make_report(100_000, segments=segments), policy)
    assert [c.message for c in result.failures] == [
        "merchant_id=M00042: 41.0% mismatches over 1,200 txns > 5.0%"]


def test_money_at_risk_per_currency():
    """False declines of 600.00 USD break a 500.00 USD limit; an unlisted currency at risk is
    unusable input naming the currency (the plan must say), not a failure of the candidate."""
    policy = parse_policy({"min_sample": 1, "max_false_decline": ["500.00 USD"]}, "t")
    report = make_report(10_000)
    report["money"]["by_currency"]["USD"]["false_decline_minor"] = 60_000
    result = evaluate(report, policy)
    assert [c.message for c in result.failures] == [
        "false decline USD: 600.00 USD over <= 500.00 USD"]
    report["money"]["by_currency"]["JPY"] = {"false_decline_minor": 3000}
    with pytest.raises(GateInputError, match="false decline JPY is 3000 JPY and the policy sets "
                                             "no limit for JPY"):
        evaluate(report, policy)


def test_money_total_in_the_reference_currency_covers_every_currency():
    """3,000 JPY + 600.00 USD at 150 JPY/USD is 620.00 USD: over a 610.00 USD total, within 620."""
    from cutover.stack.fx import load_fx
    report = make_report(10_000)
    report["money"]["by_currency"]["USD"]["false_decline_minor"] = 60_000
    report["money"]["by_currency"]["JPY"] = {"false_decline_minor": 3000}
    for limit, passed in (("610.00 USD", False), ("620.00 USD", True)):
        policy = parse_policy({"min_sample": 1, "max_false_decline_total": limit}, "t", load_fx(), "fx.toml")
        check = next(c for c in evaluate(report, policy).checks if c.name == "false decline total")
        assert check.passed is passed and check.observed.startswith("620.00 USD")
        assert "2026-11-01" in check.message


def test_conservation_false_fails():
    """A report whose replay flagged broken conservation never passes."""
    report = make_report(1000)
    report["counts"]["conservation_ok"] = False
    result = evaluate(report, parse_policy({"min_sample": 1, "max_rate": {"mismatch": 1.0}}, "t"))
    assert [c.name for c in result.failures] == ["conservation"]


def test_latency_drift_and_errors():
    """p99, worst PSI, new category values and candidate error rate each fail on their own."""
    policy = parse_policy({"min_sample": 1, "max_latency_p99_ms": 1.0, "max_psi": 0.2,
                           "no_new_values": ["merchant_country"],
                           "max_candidate_error_rate": 0.001}, "t")
    report = make_report(10_000, {"candidate_error": 30})
    report["drift"] = {"features": [{"name": "amount_minor", "psi": 0.31}],
                       "new_values": {"merchant_country": ["XX"]}}
    names = [c.name for c in evaluate(report, policy).failures]
    assert names == ["candidate error rate", "candidate latency p99", "drift psi",
                     "new values merchant_country"]


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda r: r.update(report_version=2), "report_version is 2"),
    (lambda r: r["counts"].pop("in"), "field counts.in is missing"),
    (lambda r: r.pop("latency_ms"), "field latency_ms.candidate.p99 is missing"),
])
def test_unusable_report_names_the_field(mutate, field):
    """A wrong version or a missing field is GateInputError naming the file and field."""
    report = make_report(1000)
    mutate(report)
    with pytest.raises(GateInputError) as info:
        evaluate(report, parse_policy({"min_sample": 1, "max_latency_p99_ms": 5}, "t"), source="r.json")
    assert str(info.value).startswith("r.json: ") and field in str(info.value)


def test_blockers_is_a_pure_rule_over_events():
    """blockers() names gate, approvals and bake together from plain events and a fixed time."""
    import tomllib
    from datetime import UTC, datetime, timedelta

    from cutover.migrate.plan import parse_plan
    from cutover.migrate.state import Event, blockers
    from tests.migrate_support import SMALL_PLAN

    plan = parse_plan(tomllib.loads(SMALL_PLAN), "small.toml")
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    events = [Event(1, t0, "alice", "init", None, "shadow"),
              Event(2, t0, "bob", "advance", "shadow", "canary-1"),
              Event(3, t0, "carol", "approve", "canary-1", "canary-5")]
    policy = plan.phase("canary-5").gate
    failing = evaluate(make_report(500), policy)
    found = blockers(plan, events, t0 + timedelta(hours=2), failing)
    assert [f.split(":")[0] for f in found] == ['gate for "canary-5" failed',
                                                'bake time of "canary-1"']
    passing = evaluate(make_report(5000), policy)
    assert blockers(plan, events, t0 + timedelta(hours=24), passing) == []


def test_core_does_not_import_cli_or_tui():
    """Importing every migrate module pulls in no cutover.cli, cutover.tui, typer or rich."""
    import subprocess
    import sys

    code = ("import sys, cutover.migrate.state, cutover.migrate.outputs, cutover.migrate.plan;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'textual')"
            " or m.startswith(('cutover.cli', 'cutover.tui'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


try:
    from hypothesis import given
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    given = None

if given is not None:
    @given(st.integers(0, 10_000), st.integers(1, 10_000),
           st.sampled_from([0.8, 0.9, 0.95, 0.99]))
    def test_wilson_brackets_the_rate_and_widens_with_confidence(k, n, confidence):
        """lo <= k/n <= hi inside [0, 1], and a higher confidence never gives a lower hi."""
        k = min(k, n)
        lo, hi = wilson(k, n, confidence)
        assert 0.0 <= lo <= k / n + 1e-12 and k / n - 1e-12 <= hi <= 1.0
        assert wilson(k, n, 0.999)[1] >= hi - 1e-12


def test_expected_changes_do_not_count_against_the_rate():
    """500 route changes of which 450 are expected count as 50; the report's rates entry wins."""
    policy = parse_policy({"min_sample": 1, "max_rate": {"route_change": 0.001}}, "t")
    report = make_report(100_000, {"route_change": 500})
    report["counts"]["expected_by_category"] = {"route_change": 450}
    check = evaluate(report, policy).checks[-1]
    assert check.observed == "0.05% (50/100,000)" and check.passed
    report["rates"] = {"route_change": {"k": 200, "n": 100_000}}
    assert evaluate(report, policy).checks[-1].observed == "0.20% (200/100,000)"


def test_segment_categories_count_only_the_listed_categories():
    """A segment at 48% route changes and 1% fee changes passes a 5% fee-only limit; at 6%
    fee changes it fails, and the message says which categories were counted."""
    policy = parse_policy({"min_sample": 1, "segment_min_n": 500, "segment_max_mismatch_rate": 0.05,
                           "segment_categories": ["fee_change", "candidate_error"]}, "t")

    def segment(fee_changes: int) -> dict:
        return {"dimension": "merchant_id", "value": "M00891", "n": 1000,
                "mismatches": 480 + fee_changes,
                "by_category": {"route_change": 480, "fee_change": fee_changes}}
    assert evaluate(make_report(100_000, segments=[segment(10)]), policy).passed
    result = evaluate(make_report(100_000, segments=[segment(60)]), policy)
    assert [c.message for c in result.failures] == [
        "merchant_id=M00891: 6.0% fee_change or candidate_error over 1,000 txns > 5.0%"]


def test_segment_categories_need_by_category_in_the_report():
    """A report whose segments lack by_category cannot be judged per category: unusable."""
    policy = parse_policy({"min_sample": 1, "segment_min_n": 1, "segment_max_mismatch_rate": 0.05,
                           "segment_categories": ["fee_change"]}, "t")
    report = make_report(1000, segments=[{"dimension": "channel", "value": "ecom", "n": 10,
                                          "mismatches": 0}])
    with pytest.raises(GateInputError, match=r"r.json: field segments\[0\].by_category is "
                                             "missing"):
        evaluate(report, policy, source="r.json")


@pytest.mark.parametrize(("gate", "message"), [
    ({"segment_min_n": 1, "segment_max_mismatch_rate": 0.1, "segment_categories": ["nope"]},
     "p: gate.segment_categories: unknown category 'nope'"),
    ({"segment_min_n": 1, "segment_max_mismatch_rate": 0.1, "segment_categories": "fee_change"},
     "p: gate.segment_categories must be a list of mismatch categories"),
    ({"segment_categories": ["fee_change"]},
     "p: gate.segment_categories needs gate.segment_min_n and gate.segment_max_mismatch_rate"),
])
def test_bad_segment_categories_are_refused(gate, message):
    """segment_categories must name known mismatch categories and come with a segment limit."""
    from cutover.errors import ConfigError
    with pytest.raises(ConfigError) as info:
        parse_policy(gate, "p")
    assert str(info.value).startswith(message)


def test_higher_confidence_can_close_a_gate():
    """190 of 10,000 against 2.3%: the 95% upper bound (2.19%) and the 99% one (2.28%) pass,
    the 99.9% one (2.40%) fails; the bound shown is the one judged."""
    policy = parse_policy({"min_sample": 1, "max_rate": {"approve_to_decline": 0.023}}, "t")
    report = make_report(10_000, {"approve_to_decline": 190})
    verdicts = {}
    for confidence in (0.95, 0.99, 0.999):
        check = evaluate(report, policy, confidence).checks[-1]
        verdicts[confidence] = (check.passed, check.bound)
        assert check.bound == f"{wilson(190, 10_000, confidence)[1] * 100:.2f}%"
    assert [v[0] for v in verdicts.values()] == [True, True, False]
