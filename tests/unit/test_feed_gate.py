"""Gate checks on feed health: on by default in canary-1, each failure naming field, segment and
first-seen time in the check table, JUnit and Markdown; bursts and weak findings pass."""

from __future__ import annotations

import pytest

from cutover.errors import ConfigError, GateInputError
from cutover.migrate.gate import evaluate
from cutover.migrate.outputs import junit_xml, markdown
from cutover.migrate.plan import load_policy
from cutover.migrate.policy import FEED_CHECKS, parse_policy
from tests.migrate_support import DEMO_PLAN, make_report


def finding(**over):
    """One report.json finding: amount_minor of merchant M00042 fell a hundredfold."""
    row = {"field": "amount_minor", "dimension": "merchant_id", "segment": "M00042",
           "metric": "amount_shift", "before": "median ~3,652 minor", "after": "median ~65 minor",
           "effect": 2.1, "p": 1e-40, "q": 1e-36, "rows_reference": 600, "rows_replay": 300,
           "rows_affected": 160, "first_seen": "2026-09-25T13:02:11Z", "hours_flagged": 90,
           "gated": True}
    return row | over


def report_with(*findings):
    return make_report(50_000, feed_health={"version": 1, "findings": list(findings)})


def test_canary_1_of_the_demo_plan_judges_every_feed_group():
    """The shipped plan's canary-1 turns all feed checks on, at a 1% FDR, with a quarantine limit."""
    policy = load_policy(DEMO_PLAN, "canary-1")
    assert policy.feed_checks == tuple(FEED_CHECKS) and policy.feed_fdr == 0.01
    assert policy.max_quarantine_rate == 0.005


def test_a_finding_fails_naming_field_segment_and_first_seen_everywhere():
    """One failing check; its name, observed text, JUnit testcase and Markdown row all carry
    amount_minor, merchant_id=M00042 and the first-seen time."""
    policy = parse_policy({"min_sample": 1, "feed_checks": "all"}, "t")
    result = evaluate(report_with(finding()), policy, phase="canary-1")
    failed = result.failures
    assert len(failed) == 1 and not result.passed
    assert failed[0].name == "feed amount_minor @ merchant_id=M00042 (amount_shift)"
    assert "first seen 2026-09-25T13:02:11Z" in failed[0].observed
    xml, md = junit_xml(result), markdown(result)
    assert 'name="feed amount_minor @ merchant_id=M00042 (amount_shift)"' in xml
    assert "first seen 2026-09-25T13:02:11Z" in xml
    assert "| feed amount_minor @ merchant_id=M00042 (amount_shift) |" in md
    assert "2026-09-25T13:02:11Z" in md


def test_bursts_weak_findings_and_unjudged_groups_pass():
    """A burst (gated false), a q above the FDR, and a group the policy leaves out: one pass."""
    policy = parse_policy({"min_sample": 1, "feed_checks": ["formats"], "feed_fdr": 0.01}, "t")
    result = evaluate(report_with(finding(gated=False, metric="format"),
                                  finding(q=0.02, metric="format"), finding()), policy)
    feed = [c for c in result.checks if c.name.startswith("feed")]
    assert [(c.name, c.passed) for c in feed] == [("feed health", True)]


def test_failures_list_the_segment_that_explains_the_change_first():
    """The merchant (half its rows, all the change) before its country (a few percent)."""
    policy = parse_policy({"min_sample": 1, "feed_checks": "all"}, "t")
    country = finding(dimension="merchant_country", segment="FR", rows_replay=6_000, q=1e-50)
    result = evaluate(report_with(country, finding()), policy)
    assert [c.name for c in result.failures] == [
        "feed amount_minor @ merchant_id=M00042 (amount_shift)",
        "feed amount_minor @ merchant_country=FR (amount_shift)"]


def test_quarantine_rate_is_judged_on_its_upper_bound():
    """850 of 50,000 refused (1.7%) against 0.5%: the overall quarantine check fails."""
    policy = parse_policy({"min_sample": 1, "max_quarantine_rate": 0.005}, "t")
    result = evaluate(make_report(50_000, {"quarantined": 850}), policy)
    check = next(c for c in result.checks if c.name == "rate quarantined")
    assert not check.passed and check.observed == "1.70% (850/50,000)"


def test_a_report_without_feed_health_says_so_and_a_broken_one_is_unusable():
    """No section (a live run, an older report): one check reading "not computed" with the
    reason; findings that are not a list: GateInputError naming the field."""
    report = make_report(50_000)
    del report["feed_health"]
    result = evaluate(report, parse_policy({"min_sample": 1, "feed_checks": "all"}, "t"))
    feed = [c for c in result.checks if c.name == "feed health"]
    assert [(c.observed, c.passed) for c in feed] == [("not computed", True)]
    assert "no feed_health section" in feed[0].message
    report["feed_health"] = {"findings": "none"}
    with pytest.raises(GateInputError, match="feed_health.findings must be a list"):
        evaluate(report, parse_policy({"min_sample": 1, "feed_checks": "all"}, "t"))


def test_unknown_feed_check_and_bad_fdr_are_refused():
    """A typo in a feed group or an FDR outside (0, 1) names the field and the allowed values."""
    with pytest.raises(ConfigError, match="unknown feed check 'format'; known: quarantine"):
        parse_policy({"min_sample": 1, "feed_checks": ["format"]}, "plan.toml phase x")
    with pytest.raises(ConfigError, match="gate.feed_fdr must be a false-discovery rate"):
        parse_policy({"min_sample": 1, "feed_fdr": 1.5}, "plan.toml phase x")
