"""Gate checks: a pure function from a replay report and a policy to pass or fail, with reasons.

``evaluate`` does no I/O; the CLI reads the files and prints. Rates are judged on the UPPER bound
of a Wilson interval at the configured confidence, so a small sample that happens to look good
cannot open a gate. A report that lacks a field the policy needs is unusable input
(GateInputError, naming the field), never a silent pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from cutover.domain import MISMATCH_CATEGORIES, REPORT_VERSION, format_money
from cutover.errors import ConfigError, GateInputError
from cutover.migrate.checks import Check
from cutover.migrate.checks import rate_check as _rate_check
from cutover.migrate.checks import report_field as _field
from cutover.migrate.checks import report_int as _int
from cutover.migrate.feed_gate import feed_checks, quarantine_check
from cutover.migrate.policy import Policy
from cutover.migrate.stats import CONFIDENCE_MAX, CONFIDENCE_MIN

#: Report money fields judged by the money-at-risk checks, with the policy attribute holding the
#: per-currency limits.
MONEY_CHECKS: Final = (("false_decline_minor", "max_false_decline"),
                       ("fraud_let_through_minor", "max_fraud_let_through"))
NEW_VALUES_SHOWN_MAX: Final = 5
SEGMENT_FIELDS: Final = frozenset({"dimension", "value", "n", "mismatches"})


@dataclass(frozen=True)
class GateResult:
    """Every check of one evaluation; the gate passes iff every check passed."""

    checks: tuple[Check, ...]
    passed: bool
    phase: str = ""
    confidence: float = 0.95
    #: What was judged: report path and sha256, run id, policy file and sha256, phase.
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> tuple[Check, ...]:
        """The checks that failed, in evaluation order."""
        return tuple(c for c in self.checks if not c.passed)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for --json and the plan history."""
        return {"phase": self.phase, "passed": self.passed, "confidence": self.confidence,
                "evidence": self.evidence, "checks": [c.__dict__ for c in self.checks]}


def check_version(report: Any, source: str) -> None:
    """Refuse anything that is not a report of the version this code reads."""
    if not isinstance(report, dict):
        raise GateInputError(f"{source}: a report must be a JSON object")
    version = _field(report, "report_version", source)
    if version != REPORT_VERSION:
        raise GateInputError(f"{source}: field report_version is {version!r}; this cutover reads "
                             f"version {REPORT_VERSION}")


def _conservation(report: dict[str, Any], source: str) -> Check:
    total = _int(report, "counts.in", source)
    by_category = _field(report, "counts.by_category", source)
    if not isinstance(by_category, dict):
        raise GateInputError(f"{source}: field counts.by_category must be an object")
    summed = sum(_int(report, f"counts.by_category.{c}", source) for c in by_category)
    ok_flag = _field(report, "counts.conservation_ok", source)
    # Asserted twice on two paths: the replay's own flag and our recount of the categories.
    passed = ok_flag is True and summed == total
    return Check("conservation", f"{summed:,} categorised", "-", f"== {total:,} in", passed,
                 f"conservation: flag {ok_flag!r}, categories sum to {summed:,} of {total:,} in")


def _sample(report: dict[str, Any], policy: Policy, source: str) -> Check:
    n = _int(report, "counts.in", source)
    passed = n >= policy.min_sample
    return Check("sample size", f"{n:,}", "-", f">= {policy.min_sample:,}", passed,
                 f"sample size: {n:,} transactions {'>=' if passed else '<'} {policy.min_sample:,}")


def _category_k(report: dict[str, Any], category: str, source: str) -> tuple[int, int]:
    """k and n for a category: the report's own rates entry when present, else the category
    count minus the changes the diff rules marked expected, over counts.in."""
    entry = report.get("rates", {}).get(category)
    if isinstance(entry, dict) and "k" in entry and "n" in entry:
        return (_int(report, f"rates.{category}.k", source),
                _int(report, f"rates.{category}.n", source))
    by_category = _field(report, "counts.by_category", source)
    count = _int(report, f"counts.by_category.{category}", source) \
        if category in by_category else 0
    expected_counts = report["counts"].get("expected_by_category") or {}
    expected = _int(report, f"counts.expected_by_category.{category}", source) \
        if category in expected_counts else 0
    if expected > count:
        raise GateInputError(f"{source}: field counts.expected_by_category.{category} "
                             f"({expected}) is more than counts.by_category.{category} ({count})")
    return count - expected, _int(report, "counts.in", source)


def _rates(report: dict[str, Any], policy: Policy, confidence: float, source: str) -> list[Check]:
    checks = []
    for category, limit in policy.max_rate.items():
        if category == "mismatch":
            pairs = [_category_k(report, c, source) for c in MISMATCH_CATEGORIES]
            k, n = sum(p[0] for p in pairs), _int(report, "counts.in", source)
        else:
            k, n = _category_k(report, category, source)
        if k > n:
            raise GateInputError(f"{source}: rate of {category}: k={k} is more than n={n}")
        checks.append(_rate_check(f"rate {category}", k, n, limit, confidence))
    if policy.max_candidate_error_rate is not None:
        k = _int(report, "errors.candidate_error", source)
        n = _int(report, "counts.in", source)
        if k > n:
            raise GateInputError(f"{source}: field errors.candidate_error ({k}) is more than "
                                 f"counts.in ({n})")
        checks.append(_rate_check("candidate error rate", k, n,
                                  policy.max_candidate_error_rate, confidence))
    return checks


def _money(report: dict[str, Any], policy: Policy, source: str) -> list[Check]:
    by_currency = _field(report, "money.by_currency", source)
    checks = []
    for field_name, attribute in MONEY_CHECKS:
        limits, total = policy.money_limits(attribute)
        if not limits and total is None:
            continue
        label = field_name.removesuffix("_minor").replace("_", " ")
        observed = {c: _int(report, f"money.by_currency.{c}.{field_name}", source)
                    for c in by_currency}
        if total is not None:
            checks.append(_total_check(label, observed, total, policy, source))
        for currency in sorted(set(limits) | {c for c, v in observed.items() if v}):
            seen, limit = observed.get(currency, 0), limits.get(currency)
            if limit is None:
                if total is not None:
                    continue  # judged in the total
                # Nobody agreed to money at risk in this currency: the plan must say, not the
                # candidate take the blame (exit 2, not 1).
                raise GateInputError(
                    f"{source}: {label} {currency} is {format_money(seen, currency)} and the "
                    f"policy sets no limit for {currency}; add it to gate.{attribute} or set "
                    f"gate.{attribute}_total")
            passed = seen <= limit.amount_minor
            checks.append(Check(f"{label} {currency}", format_money(seen, currency), "-",
                                f"<= {limit}", passed,
                                f"{label} {currency}: {format_money(seen, currency)} "
                                f"{'within' if passed else 'over'} <= {limit}"))
    return checks


def _total_check(label: str, observed: dict[str, int], total: Any, policy: Policy,
                 source: str) -> Check:
    """One check over every currency, converted to the reference at the plan's rates."""
    fx = policy.fx
    try:
        summed = sum(fx.to_reference_minor(v, c) for c, v in observed.items() if v)
    except ConfigError as exc:
        raise GateInputError(f"{source}: {label}: {exc} ({policy.fx_source})") from exc
    shown = format_money(summed, fx.reference)
    passed = summed <= total.amount_minor
    rates = f"indicative rates of {fx.as_of.isoformat()}"
    return Check(f"{label} total", f"{shown} ({rates})", "-", f"<= {total}", passed,
                 f"{label}, all currencies in {fx.reference} at {rates} ({policy.fx_source}): "
                 f"{shown} {'within' if passed else 'over'} <= {total}")


def _latency(report: dict[str, Any], policy: Policy, source: str) -> list[Check]:
    if policy.max_latency_p99_ms is None:
        return []
    p99 = _field(report, "latency_ms.candidate.p99", source)
    if isinstance(p99, bool) or not isinstance(p99, int | float):
        how = report["latency_ms"]["candidate"].get("how") if isinstance(
            report["latency_ms"]["candidate"], dict) else None
        raise GateInputError(f"{source}: field latency_ms.candidate.p99 must be a number, "
                             f"got {p99!r}" + (f" ({how})" if how else ""))
    n = report["latency_ms"]["candidate"].get("n")
    limit = policy.max_latency_p99_ms
    passed = p99 <= limit
    counted = f" over {n:,} timed single decisions" if isinstance(n, int) else ""
    return [Check("candidate latency p99", f"{p99:g} ms", "-", f"<= {limit:g} ms", passed,
                  f"candidate latency p99: {p99:g} ms {'<=' if passed else '>'} {limit:g} ms"
                  f"{counted}")]


def _drift(report: dict[str, Any], policy: Policy, source: str) -> list[Check]:
    checks = []
    if policy.max_psi is not None:
        features = _field(report, "drift.features", source)
        worst = max(features, key=lambda f: float(f.get("psi", 0.0)), default=None)
        psi = float(worst.get("psi", 0.0)) if worst else 0.0
        name = worst.get("name", "?") if worst else "none"
        passed = psi <= policy.max_psi
        checks.append(Check("drift psi", f"{psi:.3f} ({name})", "-", f"<= {policy.max_psi:g}",
                            passed, f"drift psi: worst feature {name} at {psi:.3f} "
                                    f"{'<=' if passed else '>'} {policy.max_psi:g}"))
    if policy.no_new_values:
        new_values = _field(report, "drift.new_values", source)
        for column in policy.no_new_values:
            seen = list(new_values.get(column, []))
            shown = ", ".join(map(str, seen[:NEW_VALUES_SHOWN_MAX]))
            checks.append(Check(f"new values {column}", shown or "none", "-", "none", not seen,
                                f"new values in {column}: {len(seen)} ({shown})"
                                if seen else f"new values in {column}: none"))
    return checks


def _segment_counts(seg: Any, i: int, categories: tuple[str, ...],
                    source: str) -> tuple[int, int]:
    """(n, mismatches) of one report segment; only ``categories`` count when given."""
    if not isinstance(seg, dict) or not set(seg) >= SEGMENT_FIELDS:
        raise GateInputError(f"{source}: field segments[{i}] needs "
                             f"{', '.join(sorted(SEGMENT_FIELDS))}")
    n, mismatches = seg["n"], seg["mismatches"]
    if categories:
        by_category = seg.get("by_category")
        if not isinstance(by_category, dict):
            raise GateInputError(f"{source}: field segments[{i}].by_category is missing; the "
                                 "policy's segment_categories needs it")
        mismatches = sum(by_category.get(c, 0) for c in categories)
    if isinstance(n, bool) or not isinstance(n, int) or not isinstance(mismatches, int) \
            or not 0 <= mismatches <= n:
        raise GateInputError(f"{source}: field segments[{i}]: need whole numbers "
                             f"0 <= mismatches <= n, got mismatches={mismatches!r} n={n!r}")
    return n, mismatches


def _segments(report: dict[str, Any], policy: Policy, source: str) -> list[Check]:
    if policy.segment_min_n is None or policy.segment_max_mismatch_rate is None:
        return []
    segments = _field(report, "segments", source)
    limit, min_n = policy.segment_max_mismatch_rate, policy.segment_min_n
    # Say what was counted, so "5% mismatches" is not read as all categories when it is not.
    what = "mismatches" if not policy.segment_categories else \
        " or ".join(policy.segment_categories)
    failed, judged = [], 0
    for i, seg in enumerate(segments):
        n, mismatches = _segment_counts(seg, i, policy.segment_categories, source)
        if n < min_n:
            continue
        judged += 1
        rate = mismatches / n
        if rate > limit:
            label = f"{seg['dimension']}={seg['value']}"
            failed.append(Check(f"segment {label}", f"{rate * 100:.1f}%", "-",
                                f"<= {limit * 100:.1f}%", False,
                                f"{label}: {rate * 100:.1f}% {what} over {n:,} txns > "
                                f"{limit * 100:.1f}%"))
    if failed:
        return failed
    # Short cells: the TUI's Plan screen shows this table in 80 columns.
    return [Check("segments", f"{judged} with n >= {min_n:,}", "-",
                  f"<= {limit * 100:.1f}% each", True,
                  f"segments: none of {judged} with >= {min_n:,} txns above {limit * 100:.1f}%"
                  f" {what}")]


def evidence_of(report: dict[str, Any], report_source: str, report_sha256: str,
                policy_source: str, policy_sha256: str, phase: str) -> dict[str, Any]:
    """The provenance every gate output names, so a reader knows exactly what was judged."""
    found = report.get("run")
    run: dict[str, Any] = found if isinstance(found, dict) else {}
    return {"report": report_source, "report_sha256": report_sha256,
            "run_id": run.get("run_id"), "policy": policy_source,
            "policy_sha256": policy_sha256, "phase": phase}


def evaluate(report: dict[str, Any], policy: Policy, confidence: float = 0.95, *,
             phase: str = "", source: str = "report",
             evidence: dict[str, Any] | None = None) -> GateResult:
    """Judge ``report`` against ``policy``; raise GateInputError if the report is unusable."""
    check_version(report, source)
    if not CONFIDENCE_MIN <= confidence <= CONFIDENCE_MAX:
        raise GateInputError(f"confidence must be between {CONFIDENCE_MIN} and "
                             f"{CONFIDENCE_MAX}, got {confidence}")
    checks = [_conservation(report, source), _sample(report, policy, source),
              *_rates(report, policy, confidence, source), *_money(report, policy, source),
              *_latency(report, policy, source), *_drift(report, policy, source),
              *_segments(report, policy, source),
              *quarantine_check(report, policy, confidence, source),
              *feed_checks(report, policy, source)]
    return GateResult(tuple(checks), all(c.passed for c in checks), phase, confidence,
                      dict(evidence or {}))
