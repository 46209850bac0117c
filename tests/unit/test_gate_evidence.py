"""Every gate output names what it judged: report path and sha256, run id, policy and hash, phase."""

import json

from cutover.migrate import outputs
from cutover.migrate.gate import evaluate, evidence_of
from cutover.migrate.policy import Policy
from tests.migrate_support import make_report


def test_markdown_junit_and_json_name_the_report_run_policy_and_phase():
    """The same five facts in the Markdown, the JUnit properties and to_dict()."""
    report = make_report(5_000)
    report.setdefault("run", {})["run_id"] = "run-abc"
    evidence = evidence_of(report, "runs/r1/report.json", "a" * 64, "plans/demo.toml", "b" * 64,
                           "canary-1")
    result = evaluate(report, Policy(min_sample=100), phase="canary-1", evidence=evidence)
    md, xml = outputs.markdown(result), outputs.junit_xml(result)
    as_json = json.loads(json.dumps(result.to_dict()))
    for text in (md, xml, json.dumps(as_json)):
        for fact in ("runs/r1/report.json", "a" * 64, "run-abc", "plans/demo.toml", "b" * 64,
                     "canary-1"):
            assert fact in text, (fact, text[:300])
    assert as_json["evidence"]["phase"] == "canary-1" and result.passed
