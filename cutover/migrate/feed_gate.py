"""Gate checks on a report's feed health: a partner feed that broke in one segment stops a canary.

Pure functions from report.json's ``feed_health`` section (and ``counts``) to ``Check`` rows.
Each failing check names the field, the segment and when the change was first seen, in the
check's name and observed text, so the table, the JUnit testcase and the Markdown row all say
what broke where. The report already ran every test and the false-discovery control; the gate
judges each finding's q-value at the policy's ``feed_fdr`` and skips bursts the report marked
(``gated: false``).
"""

from __future__ import annotations

from typing import Any, Final

from cutover.errors import GateInputError
from cutover.migrate.checks import Check
from cutover.migrate.checks import rate_check as _rate_check
from cutover.migrate.checks import report_int as _int
from cutover.migrate.policy import FEED_CHECKS, Policy

#: Failing feed checks shown one by one; the rest are counted in one more row.
FEED_FAILURES_SHOWN: Final = 12
FINDING_FIELDS: Final = frozenset({"field", "dimension", "segment", "metric", "before", "after",
                                   "q", "rows_replay", "rows_affected", "first_seen"})


def _findings(report: dict[str, Any], source: str) -> list[dict[str, Any]] | str:
    """The findings, or why there are none to judge (a live run or a report whose traffic
    store is gone has no feed health; that is shown as such, never as a finding-free pass)."""
    section = report.get("feed_health")
    if section is None:
        return "this report has no feed_health section (rebuild it with `cutover report`)"
    if not isinstance(section, dict) or not isinstance(section.get("findings"), list):
        raise GateInputError(f"{source}: field feed_health.findings must be a list")
    if section.get("note") and not section["findings"]:
        return str(section["note"])
    for i, f in enumerate(section["findings"]):
        if not isinstance(f, dict) or not set(f) >= FINDING_FIELDS:
            raise GateInputError(f"{source}: field feed_health.findings[{i}] needs "
                                 f"{', '.join(sorted(FINDING_FIELDS))}")
    return section["findings"]


def _explaining_first(judged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The findings ordered by how well their segment explains the change of their field: the
    share of the segment's rows affected times the share of all the field's affected rows it
    holds. A units switch on one merchant shows as that merchant (half its rows, all of the
    change), not as its country (a few percent) nor as one small merchant of a broken country
    (all its rows, a sliver of the change)."""
    most: dict[str, int] = {}
    for f in judged:
        most[f["field"]] = max(most.get(f["field"], 0), int(f["rows_affected"]))

    def score(f: dict[str, Any]) -> tuple[float, float]:
        share = f["rows_affected"] / f["rows_replay"] if f["rows_replay"] else 0.0
        cover = f["rows_affected"] / most[f["field"]] if most[f["field"]] else 0.0
        return -share * cover, float(f["q"])
    return sorted(judged, key=score)


def _check(f: dict[str, Any], fdr: float) -> Any:
    segment = f"{f['dimension']}={f['segment']}" if f["dimension"] != "all" else "all rows"
    since = f["first_seen"] or "unknown"
    observed = f"{f['metric']}: {f['before']} -> {f['after']}; first seen {since}"
    return Check(f"feed {f['field']} @ {segment} ({f['metric']})", observed, f"q={float(f['q']):.2g}",
                 f"q > {fdr:g}", False,
                 f"{f['field']} in {segment}: {f['metric']} {f['before']} -> {f['after']} "
                 f"({f['rows_affected']:,} of {f['rows_replay']:,} rows), first seen {since}, "
                 f"q={float(f['q']):.2g} <= {fdr:g}")


def feed_checks(report: dict[str, Any], policy: Policy, source: str) -> list[Any]:
    """Failing checks for every judged finding (strongest segment first), else one pass."""
    if not policy.feed_checks:
        return []
    metrics = {m for group in policy.feed_checks for m in FEED_CHECKS[group]}
    findings = _findings(report, source)
    if isinstance(findings, str):
        return [Check("feed health", "not computed", "-", "-", True,
                      f"feed health not judged: {findings}")]
    judged = [f for f in findings
              if f["metric"] in metrics and f.get("gated", True)
              and float(f["q"]) <= policy.feed_fdr]
    judged = _explaining_first(judged)
    checks = [_check(f, policy.feed_fdr) for f in judged[:FEED_FAILURES_SHOWN]]
    if len(judged) > FEED_FAILURES_SHOWN:
        rest = len(judged) - FEED_FAILURES_SHOWN
        checks.append(Check("feed (more findings)", f"{rest} more", "-", "none", False,
                            f"feed health: {rest} more findings, see report.md"))
    if checks:
        return checks
    groups = ", ".join(policy.feed_checks)
    return [Check("feed health", "no finding", "-", f"q > {policy.feed_fdr:g}", True,
                  f"feed health ({groups}): no finding at q <= {policy.feed_fdr:g}")]


def quarantine_check(report: dict[str, Any], policy: Policy, confidence: float,
                     source: str) -> list[Any]:
    """The overall quarantine rate, judged on its Wilson upper bound like the other rates."""
    if policy.max_quarantine_rate is None:
        return []
    n = _int(report, "counts.in", source)
    k = _int(report, "counts.by_category.quarantined", source) \
        if "quarantined" in report.get("counts", {}).get("by_category", {}) else 0
    if k > n:
        raise GateInputError(f"{source}: field counts.by_category.quarantined ({k}) is more "
                             f"than counts.in ({n})")
    return [_rate_check("rate quarantined", k, n, policy.max_quarantine_rate, confidence)]
