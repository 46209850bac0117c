"""Diff rules: what the diff engine ignores, tolerates, expects and how badly it rates a change.

A rules file is TOML (``cutover/fixtures/diff_rules/default.toml`` documents every key). It is data an
operator edits, so every error names the file and the key. ``append_expected_rule`` adds one
``[[expected]]`` table as text at the end of the file, so the operator's comments and layout
stay as written, and re-parses the result before anything is replaced on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import Field

from cutover.config import StrictModel, config_model, validate
from cutover.domain import CATEGORIES, MISMATCH_CATEGORIES
from cutover.errors import ConfigError
from cutover.paths import fixtures_dir

RULES_VERSION: Final = 1
#: Outcome fields the diff engine compares; ``fields`` of a diff row lists those that changed.
COMPARED_FIELDS: Final = ("decision", "route", "fee_minor", "reason")
#: Segment columns an expected rule may narrow on (exact equality).
SEGMENT_KEYS: Final = ("merchant_id", "merchant_country", "channel", "mcc", "currency")
#: Builtin predicates an expected rule may name in ``when``.
PREDICATES: Final = ("cheaper_route_same_success", "labelled_fraud", "not_labelled_fraud")
DECISION_VALUES: Final = ("approve", "decline", "review")
DEFAULT_SEVERITY: Final = {"quarantined": "medium", "legacy_error": "medium",
                           "candidate_error": "high", "approve_to_decline": "high",
                           "decline_to_approve": "critical", "review_change": "medium",
                           "route_change": "low", "fee_change": "low", "reason_change": "low",
                           "match": "none"}
P_SUCCESS_MIN_DEFAULT: Final = 0.90


def default_rules_path() -> Path:
    """The shipped rules file (under the fixtures directory)."""
    return fixtures_dir() / "diff_rules" / "default.toml"


@dataclass(frozen=True)
class ExpectedRule:
    """Rows of ``category`` (narrowed by fields, segment and predicate) are expected changes."""

    name: str
    category: str
    fields: tuple[str, ...] | None
    segment: dict[str, str]
    when: str | None
    reason: str
    by: str
    at: str | None


@dataclass(frozen=True)
class DiffRules:
    """One parsed rules file; ``sha256`` is of its bytes, for run metadata and audit."""

    ignore_fields: frozenset[str] = frozenset()
    fee_abs_minor: int = 0
    fee_rel: float = 0.0
    route_decisions: tuple[str, ...] = ("approve",)
    severity: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SEVERITY))
    expected_severity: str = "none"
    p_success_min: float = P_SUCCESS_MIN_DEFAULT
    reason_map: dict[str, str] = field(default_factory=dict)
    expected: tuple[ExpectedRule, ...] = ()
    ignore_evidence: tuple[dict[str, Any], ...] = ()
    source: str = ""
    sha256: str = ""


Decision = Literal["approve", "decline", "review"]
Severity = Literal["none", "low", "medium", "high", "critical"]
Mismatch = Literal[MISMATCH_CATEGORIES]  # type: ignore[valid-type]
SeverityKey = Literal[(*CATEGORIES, "expected")]  # type: ignore[valid-type]
ComparedField = Literal[COMPARED_FIELDS]  # type: ignore[valid-type]
SegmentKey = Literal[SEGMENT_KEYS]  # type: ignore[valid-type]
Predicate = Literal[PREDICATES]  # type: ignore[valid-type]


class IgnoreSection(StrictModel):
    """Fields never compared, and the calibration evidence that justified each."""

    fields: list[str] = Field(default_factory=list, description="outcome fields to ignore")
    evidence: list[dict[str, Any]] = Field(default_factory=list,
                                           description="written by `cutover calibrate`")


class FeeTolerance(StrictModel):
    """How far fees may differ and still count as equal."""

    abs: int = Field(0, ge=0, description="absolute, in minor units")
    rel: float = Field(0.0, ge=0, description="relative to the legacy fee")


class ToleranceSection(StrictModel):
    """Tolerances per compared field."""

    fee_minor: FeeTolerance = FeeTolerance()


class CompareSection(StrictModel):
    """What is compared when."""

    route_decisions: list[Decision] = Field(["approve"], description="decisions whose route is compared")


class CheaperRoute(StrictModel):
    """The ``cheaper_route_same_success`` predicate."""

    p_success_min: float = Field(P_SUCCESS_MIN_DEFAULT, ge=0, le=1,
                                 description="candidate's predicted success at least this")


class PredicatesSection(StrictModel):
    """Settings of the builtin predicates."""

    cheaper_route_same_success: CheaperRoute = CheaperRoute()


class ExpectedEntry(StrictModel):
    """One ``[[expected]]`` table: a change people agreed to, with who and why."""

    name: str | None = None
    category: Mismatch = Field(description="a mismatch category")
    fields: list[ComparedField] | None = Field(None, description="changed fields it covers")
    segment: dict[SegmentKey, str] = Field(default_factory=dict,
                                           description="exact segment column values")
    when: Predicate | None = Field(None, description="a builtin predicate")
    reason: str = Field(min_length=1, pattern=r"\S", description="why (required)")
    by: str = Field(min_length=1, pattern=r"\S", description="who agreed (required)")
    at: datetime | date | str | None = None


@config_model("diff rules", "cutover/fixtures/diff_rules/default.toml; `replay --rules FILE`")
class DiffRulesFile(StrictModel):
    """What the diff engine ignores, tolerates, expects, and how badly it rates a change."""

    version: Literal[1] = Field(description="format version")
    ignore: IgnoreSection = IgnoreSection()
    tolerance: ToleranceSection = ToleranceSection()
    compare: CompareSection = CompareSection()
    severity: dict[SeverityKey, Severity] = Field(default_factory=dict,
                                                  description="category -> severity")
    predicates: PredicatesSection = PredicatesSection()
    reason_map: dict[str, str] = Field(default_factory=dict,
                                       description="candidate code -> canonical legacy reason")
    expected: list[ExpectedEntry] = Field(default_factory=list)


def _expected_rule(i: int, entry: ExpectedEntry) -> ExpectedRule:
    at = entry.at
    at_text = at.isoformat() if isinstance(at, datetime) else (None if at is None else str(at))
    return ExpectedRule(entry.name or f"expected-{i}", entry.category,
                        None if entry.fields is None else tuple(entry.fields),
                        dict(entry.segment), entry.when, entry.reason, entry.by, at_text)


def parse_diff_rules(text: str, source: Path | str = "<rules>") -> DiffRules:
    """Parse rules from TOML text; ``source`` names the file in errors."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    rules = validate(DiffRulesFile, doc, source)
    severity = dict(DEFAULT_SEVERITY) | {k: v for k, v in rules.severity.items() if k != "expected"}
    fee = rules.tolerance.fee_minor
    return DiffRules(
        ignore_fields=frozenset(rules.ignore.fields), fee_abs_minor=fee.abs, fee_rel=fee.rel,
        route_decisions=tuple(rules.compare.route_decisions), severity=severity,
        expected_severity=rules.severity.get("expected", "none"),
        p_success_min=rules.predicates.cheaper_route_same_success.p_success_min,
        reason_map=dict(rules.reason_map),
        expected=tuple(_expected_rule(i, e) for i, e in enumerate(rules.expected)),
        ignore_evidence=tuple(rules.ignore.evidence),
        source=str(source), sha256=hashlib.sha256(text.encode()).hexdigest())


def load_diff_rules(path: Path | str | None = None) -> DiffRules:
    """Read and check a rules file (the shipped default when ``path`` is None)."""
    path = Path(path) if path is not None else default_rules_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read diff rules: {exc.strerror or exc}") from exc
    return parse_diff_rules(text, path)


def toml_string(value: str) -> str:
    """A TOML basic string: JSON's escaping is valid TOML when non-ASCII is left as is."""
    return json.dumps(value, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def expected_rule_text(rule: dict[str, Any]) -> str:
    """One ``[[expected]]`` table as TOML text (keys in a fixed order)."""
    lines = ["", "[[expected]]"]
    for key in ("name", "category", "fields", "segment", "when", "reason", "by", "at"):
        if rule.get(key) is not None:
            lines.append(f"{key} = {_toml_value(rule[key])}")
    return "\n".join(lines) + "\n"


def append_expected_rule(path: Path, *, category: str, fields: list[str],
                         segment: dict[str, str], reason: str, by: str,
                         at: datetime | None = None) -> dict[str, Any]:
    """Append one ``[[expected]]`` table to the rules file at ``path``; return it as a dict.

    The file's existing text is kept byte for byte; the new text is validated by parsing the
    whole result before the file is replaced atomically, so a bad rule never lands on disk.
    """
    path = Path(path)
    try:
        original = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read diff rules: {exc.strerror or exc}") from exc
    before = parse_diff_rules(original, path)
    when = at or datetime.now(UTC)
    parts = [category, *(f"{k}={v}" for k, v in sorted(segment.items()))]
    rule = {"name": f"operator-{len(before.expected) + 1}-" + "-".join(parts),
            "category": category, "fields": list(fields), "segment": dict(segment),
            "reason": reason, "by": by, "at": when.astimezone(UTC).replace(microsecond=0)}
    separator = "" if original.endswith("\n") or not original else "\n"
    text = original + separator + expected_rule_text(rule)
    after = parse_diff_rules(text, path)
    if len(after.expected) != len(before.expected) + 1:
        raise ConfigError(f"{path}: appending a rule did not add exactly one [[expected]] table")
    _replace_atomically(path, text)
    return {**rule, "at": rule["at"].isoformat()}


def _replace_atomically(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
