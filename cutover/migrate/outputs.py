"""Gate results as files CI understands: JUnit XML (one testcase per check) and Markdown.

CI systems render JUnit natively and a Markdown table reads well as a pull-request comment, so
the same GateResult feeds both. Writing only: XML is built with ElementTree, never parsed here.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 - we only write XML here, we never parse it

from cutover.migrate.gate import GateResult


def junit_xml(result: GateResult, suite: str = "cutover gate") -> str:
    """One <testsuite> with a <testcase> per check and a <failure> for each failed one."""
    name = f"{suite} {result.phase}".strip()
    root = ET.Element("testsuites", name=name, tests=str(len(result.checks)),
                      failures=str(len(result.failures)))
    suite_el = ET.SubElement(root, "testsuite", name=name, tests=str(len(result.checks)),
                             failures=str(len(result.failures)), errors="0", skipped="0")
    if result.evidence:
        props = ET.SubElement(suite_el, "properties")
        for key, value in result.evidence.items():
            ET.SubElement(props, "property", name=key, value=str(value))
    for check in result.checks:
        case = ET.SubElement(suite_el, "testcase", classname=name, name=check.name)
        if not check.passed:
            failure = ET.SubElement(case, "failure", message=check.message, type="GateFailed")
            failure.text = (f"observed {check.observed}; bound {check.bound}; "
                            f"threshold {check.threshold}")
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def evidence_lines(result: GateResult) -> list[str]:
    """What the gate judged, one Markdown bullet a fact (nothing when unknown)."""
    e = result.evidence
    if not e:
        return []
    return [f"- report: `{_cell(str(e.get('report')))}` (sha256 `{e.get('report_sha256')}`)",
            f"- run: `{e.get('run_id')}`",
            f"- policy: `{_cell(str(e.get('policy')))}` (sha256 `{e.get('policy_sha256')}`), "
            f"phase `{e.get('phase')}`", ""]


def markdown(result: GateResult) -> str:
    """A heading with the verdict and a table with one row per check."""
    verdict = "PASSED" if result.passed else "FAILED"
    lines = [f"### cutover gate `{result.phase}`: {verdict}", "",
             f"{len(result.checks) - len(result.failures)} of {len(result.checks)} checks "
             f"passed; rates judged on the Wilson upper bound at {result.confidence:g} "
             "confidence.", "", *evidence_lines(result),
             "| check | observed | upper bound | threshold | result |",
             "|---|---|---|---|---|"]
    for c in result.checks:
        mark = "pass" if c.passed else "**FAIL**"
        lines.append(f"| {_cell(c.name)} | {_cell(c.observed)} | {_cell(c.bound)} | "
                     f"{_cell(c.threshold)} | {mark} |")
    failures = [f"- {_cell(c.message)}" for c in result.failures]
    if failures:
        lines += ["", "Failed:", *failures]
    return "\n".join(lines) + "\n"

