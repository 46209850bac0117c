"""End-to-end tests of `cutover gate` and `cutover plan` through the real CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.cli_support import run_cli as run
from tests.migrate_support import DEMO_PLAN, REPO, SMALL_PLAN, make_report, write_plan, write_report


def _cutover(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from cutover.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=REPO, timeout=60)


def _passing(tmp_path):
    return write_report(tmp_path / "report.json", make_report(100_000, {"approve_to_decline": 500}))


@pytest.mark.parametrize(("case", "expected"), [("pass", 0), ("fail", 1), ("bad", 2)])
def test_exit_codes_through_the_console_entry_point(tmp_path, case, expected):
    """A real process exits 0 on pass, 1 on a failed check, 2 on a wrong report version."""
    report = make_report(100_000, {"approve_to_decline": 500})
    if case == "fail":
        report["counts"]["by_category"]["approve_to_decline"] = 9000
        report["counts"]["by_category"]["match"] -= 8500
    if case == "bad":
        report["report_version"] = 99
    path = write_report(tmp_path / "report.json", report)
    proc = _cutover("gate", str(path), "--policy", str(DEMO_PLAN), "--phase", "canary-1")
    assert proc.returncode == expected, proc.stderr
    if case == "fail":
        assert "rate approve_to_decline: upper bound 9.18%" in proc.stderr
    if case == "bad":
        assert f"{path}: field report_version is 99" in proc.stderr


def test_missing_report_and_bad_policy_are_exit_2(tmp_path):
    """A missing report file and an unknown phase are unusable input, each named."""
    code, _, message = run(["gate", str(tmp_path / "nope.json"), "--policy", str(DEMO_PLAN),
                            "--phase", "canary-1"])
    assert (code, message) == (2, f"{tmp_path / 'nope.json'}: report file not found")
    code, _, message = run(["gate", str(_passing(tmp_path)), "--policy", str(DEMO_PLAN),
                            "--phase", "canary-7"])
    assert code == 2 and 'no phase "canary-7"' in message


POLICY_50 = """\
min_sample = 50000
max_rate = { approve_to_decline = 0.03, decline_to_approve = 0.02, review_change = 0.05 }
max_candidate_error_rate = 0.005
max_latency_p99_ms = 20
max_psi = 0.25
no_new_values = ["merchant_country", "channel"]
segment_min_n = 500
segment_max_mismatch_rate = 0.50
max_false_decline = ["50000.00 USD", "50000.00 EUR", "50000.00 GBP"]
max_fraud_let_through = ["10000.00 USD", "10000.00 EUR", "10000.00 GBP"]
"""


def test_junit_and_markdown_outputs(tmp_path):
    """A failing gate writes JUnit with the right failure count and a Markdown row per check."""
    report = make_report(900, {"approve_to_decline": 80})
    report["segments"] = [{"dimension": "merchant_id", "value": "M00042", "n": 600,
                           "mismatches": 400}]
    path = write_report(tmp_path / "report.json", report)
    # A policy of its own (the demo plan's gates change with the demo): a 50% segment limit
    # over every mismatch category, money per currency.
    policy = write_plan(tmp_path / "policy.toml", "[gate]\n" + POLICY_50)
    code, stdout, _ = run(["gate", str(path), "--policy", str(policy),
                           "--junit", str(tmp_path / "g.xml"), "--markdown", str(tmp_path / "g.md"),
                           "--json"])
    result = json.loads(stdout)
    failed = [c for c in result["checks"] if not c["passed"]]
    assert code == 1 and len(failed) == 3
    assert "merchant_id=M00042: 66.7% mismatches over 600 txns > 50.0%" in [
        c["message"] for c in failed]
    suite = ET.parse(tmp_path / "g.xml").getroot().find("testsuite")
    assert int(suite.get("failures")) == 3 == len(suite.findall("testcase/failure"))
    assert int(suite.get("tests")) == len(result["checks"])
    rows = [line for line in (tmp_path / "g.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| check")]
    assert len(rows) == len(result["checks"])
    assert sum("**FAIL**" in row for row in rows) == 3


def test_plan_lifecycle_through_the_cli(tmp_path):
    """init, refused advance, approve x2, advance, rollback, history --json: every step kept."""
    plan = write_plan(tmp_path / "small.toml", SMALL_PLAN)
    env = {"CUTOVER_PLAN_DB": f"sqlite:///{tmp_path / 'state.db'}"}
    report = str(_passing(tmp_path))
    assert run(["plan", "init", str(plan), "--as", "alice"], env)[0] == 0
    code, _, message = run(["plan", "advance", "--report", report, "--as", "alice"], env)
    assert code == 1 and "0 distinct of 2 needed" in message
    for who in ("bob", "carol"):
        assert run(["plan", "approve", "--as", who], env)[0] == 0
    assert run(["plan", "advance", "--report", report, "--as", "alice"], env)[0] == 0
    status = json.loads(run(["plan", "status", "--json"], env)[1])
    assert (status["phase"], status["next"]["phase"]) == ("canary-1", "canary-5")
    assert run(["plan", "rollback", "--as", "ops", "--reason", "drill"], env)[0] == 0
    history = json.loads(run(["plan", "history", "--json"], env)[1])
    assert [e["action"] for e in history] == ["init", "advance_refused", "approve", "approve",
                                              "advance", "rollback"]
    sha = hashlib.sha256(Path(report).read_bytes()).hexdigest()
    assert history[4]["report_sha256"] == sha


def test_route_and_export(tmp_path):
    """route prints the side on stdout and the reason on stderr; export writes the JSON rule."""
    plan = write_plan(tmp_path / "small.toml", SMALL_PLAN)
    code, stdout, _ = run(["plan", "route", "--merchant", "M1", "--customer", "C1",
                           "--plan", str(plan), "--phase", "full", "--json"])
    assert code == 0 and json.loads(stdout)["route"] == "candidate"
    out = tmp_path / "rule.json"
    code, _, _ = run(["plan", "export", "--plan", str(plan), "--phase", "canary-5",
                      "--out", str(out)])
    rule = json.loads(out.read_text())
    assert (code, rule["threshold"], rule["sticky_key"]) == (0, 500, "merchant_id")


def test_demo_canary_gate_passes_a_plausible_demo_report(tmp_path):
    """A 120k-txn multi-currency report of a sound candidate passes demo canary-1 (table out)."""
    report = make_report(120_000, {"approve_to_decline": 2400, "decline_to_approve": 900,
                                   "route_change": 30_000, "candidate_error": 12})
    report["money"]["by_currency"] = {
        currency: {"false_decline_minor": amount, "fraud_let_through_minor": amount // 10}
        for currency, amount in (("USD", 9_000_000), ("EUR", 4_000_000), ("JPY", 900_000),
                                 ("BRL", 2_000_000), ("BHD", 100_000))}
    # The new stack routes differently by design: a merchant with 48% route changes and a
    # country where it approves what legacy declined do not close a 1% canary.
    report["segments"] = [
        {"dimension": "merchant_id", "value": "M00891", "n": 824, "mismatches": 401,
         "by_category": {"route_change": 349, "review_change": 41, "decline_to_approve": 11}},
        {"dimension": "merchant_country", "value": "NG", "n": 740, "mismatches": 712,
         "by_category": {"decline_to_approve": 657, "review_change": 55}}]
    path = write_report(tmp_path / "report.json", report)
    code, stdout, _ = run(["gate", str(path), "--policy", str(DEMO_PLAN), "--phase", "canary-1"])
    assert code == 0, stdout
    assert "gate canary-1: PASSED" in stdout and "false decline JPY" in stdout
    assert "2 with n >= 500" in stdout


def test_standalone_policy_file(tmp_path):
    """A policy file with a [gate] table works without --phase; a bad field there is exit 2."""
    policy = write_plan(tmp_path / "policy.toml",
                        "[gate]\nmin_sample = 200000\nmax_rate = { mismatch = 1.0 }\n")
    code, _, message = run(["gate", str(_passing(tmp_path)), "--policy", str(policy)])
    assert code == 1 and "sample size: 100,000 transactions < 200,000" in message
    write_plan(policy, "[gate]\nmin_sample = -1\n")
    code, _, message = run(["gate", str(_passing(tmp_path)), "--policy", str(policy)])
    assert code == 2 and message == (f"{policy}: gate.min_sample must be a whole number >= 0, "
                                     "got -1")


@pytest.mark.parametrize(("gate", "fragment"), [
    ("[gate]\n", "gate.min_sample is missing or 0"),
    ("gate = {}\n", "gate.min_sample is missing or 0"),
    ("[gate]\nmax_rate = { mismatch = 0.1 }\n", "gate.min_sample is missing or 0"),
    ("[gate]\nmin_sample = 0\nmax_psi = 0.2\n", "gate.min_sample is missing or 0"),
    ("[gate]\nmin_sample = 1000\n", "the gate has no check, so it can never fail"),
])
def test_gate_that_cannot_fail_is_input_error(tmp_path, gate, fragment):
    """A policy without a sample floor, or with no check at all, is refused with exit 2."""
    policy = write_plan(tmp_path / "policy.toml", gate)
    code, _, message = run(["gate", str(_passing(tmp_path)), "--policy", str(policy)])
    assert code == 2 and fragment in message and str(policy) in message


def test_nan_in_report_is_unusable(tmp_path):
    """A report with NaN where a number belongs is refused with exit 2 naming the file."""
    path = tmp_path / "report.json"
    path.write_text(json.dumps(make_report(1000)).replace('"p99": 1.1', '"p99": NaN'))
    code, _, message = run(["gate", str(path), "--policy", str(DEMO_PLAN), "--phase", "canary-1"])
    assert (code, message) == (2, f"{path}: report holds NaN, which is not a number to judge")


def test_status_before_init_is_refused_without_creating_a_db(tmp_path):
    """plan status on a missing SQLite file exits 1 naming the file, and creates nothing."""
    db = tmp_path / "missing.db"
    code, _, message = run(["plan", "status", "--db", f"sqlite:///{db}"])
    assert code == 1 and f"no plan state at {db}" in message
    assert not db.exists()


@pytest.mark.parametrize(("command", "phase_body", "message"), [
    ("init", 'percent = 5\napprovals = "two"\ngate = { min_sample = 1, max_rate = { mismatch = 1.0 } }',
     'phase "canary-5": approvals must be a whole number 0..20, got \'two\''),
    ("init", 'percent = 5\ngate = { max_rate = { approve_to_decline = 1.5 } }',
     'phase "canary-5": gate.max_rate.approve_to_decline must be a rate between 0 and 1'),
    ("gate", 'percent = 5\nbake = "1 week"\ngate = { min_sample = 1, max_rate = { mismatch = 1.0 } }',
     'phase "canary-5": bake must be a duration like "30m", "24h" or "2d", got \'1 week\''),
    ("gate", 'percent = 5\ngate = { segment_min_n = 500 }',
     'phase "canary-5": gate.segment_min_n and gate.segment_max_mismatch_rate go together'),
])
def test_bad_plan_is_exit_2_naming_phase_and_field(tmp_path, command, phase_body, message):
    """`plan init` and `gate` refuse a bad plan with exit 2, naming file, phase and field;
    init leaves no state behind."""
    plan = write_plan(tmp_path / "bad.toml", 'name = "x"\nsalt = "s"\n[[phases]]\n'
                      f'name = "shadow"\npercent = 0\n[[phases]]\nname = "canary-5"\n{phase_body}\n')
    db = tmp_path / "state.db"
    if command == "init":
        args = ["plan", "init", str(plan), "--as", "alice", "--db", f"sqlite:///{db}"]
    else:
        args = ["gate", str(_passing(tmp_path)), "--policy", str(plan), "--phase", "canary-5"]
    code, _, error = run(args)
    assert code == 2
    assert error.startswith(f"{plan}: {message}"), error
    assert not db.exists()


def test_confidence_option_changes_the_bound_judged(tmp_path):
    """190 of 10,000 against a 2.3% limit: exit 0 at --confidence 0.95, exit 1 at 0.999 with
    the 99.9% upper bound (2.40%) in the message; an out-of-range confidence is exit 2."""
    path = write_report(tmp_path / "report.json", make_report(10_000, {"approve_to_decline": 190}))
    policy = write_plan(tmp_path / "policy.toml",
                        "[gate]\nmin_sample = 1\nmax_rate = { approve_to_decline = 0.023 }\n")
    base = ["gate", str(path), "--policy", str(policy)]
    assert run(base)[0] == 0
    code, _, message = run([*base, "--confidence", "0.999"])
    assert code == 1 and "upper bound 2.40% at 0.999 confidence > 2.30%" in message
    assert run([*base, "--confidence", "1.5"])[0] == 2
