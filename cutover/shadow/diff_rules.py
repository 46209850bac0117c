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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cutover.domain import CATEGORIES, MISMATCH_CATEGORIES, SEVERITIES
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
_TOP_KEYS: Final = frozenset({"version", "ignore", "tolerance", "compare", "severity",
                              "predicates", "reason_map", "expected"})
_EXPECTED_KEYS: Final = frozenset({"name", "category", "fields", "segment", "when", "reason",
                                   "by", "at"})


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


def _fail(path: Path | str, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: key {key}: {problem}")


def _table(doc: dict[str, Any], key: str, path: Path | str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise _fail(path, key, "must be a table")
    return value


def _str_list(value: Any, key: str, path: Path | str, allowed: tuple[str, ...] | None = None
              ) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(path, key, f"must be a list of strings, got {value!r}")
    if allowed is not None:
        bad = [v for v in value if v not in allowed]
        if bad:
            raise _fail(path, key, f"unknown values {bad}; expected some of {list(allowed)}")
    return tuple(value)


def _number(value: Any, key: str, path: Path | str, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _fail(path, key, f"must be a number >= 0, got {value!r}")
    if kind is int and not isinstance(value, int):
        raise _fail(path, key, f"must be a whole number of minor units, got {value!r}")
    return kind(value)


def _severity(doc: dict[str, Any], path: Path | str) -> tuple[dict[str, str], str]:
    table = _table(doc, "severity", path)
    severity = dict(DEFAULT_SEVERITY)
    expected = "none"
    for category, level in table.items():
        if category not in (*CATEGORIES, "expected"):
            raise _fail(path, f"severity.{category}", f"not a category; expected one of {CATEGORIES}")
        if level not in SEVERITIES:
            raise _fail(path, f"severity.{category}", f"{level!r} is not one of {SEVERITIES}")
        if category == "expected":
            expected = level
        else:
            severity[category] = level
    return severity, expected


def _expected_rule(i: int, entry: Any, path: Path | str) -> ExpectedRule:
    key = f"expected[{i}]"
    if not isinstance(entry, dict):
        raise _fail(path, key, "must be a table")
    unknown = sorted(set(entry) - _EXPECTED_KEYS)
    if unknown:
        raise _fail(path, f"{key}.{unknown[0]}", f"unknown key; allowed: {sorted(_EXPECTED_KEYS)}")
    category = entry.get("category")
    if category not in MISMATCH_CATEGORIES:
        raise _fail(path, f"{key}.category", f"{category!r} is not one of {MISMATCH_CATEGORIES}")
    fields = entry.get("fields")
    if fields is not None:
        fields = _str_list(fields, f"{key}.fields", path, COMPARED_FIELDS)
    segment = entry.get("segment", {})
    if not isinstance(segment, dict) or not all(isinstance(v, str) for v in segment.values()):
        raise _fail(path, f"{key}.segment", "must be an inline table of text values")
    bad = sorted(set(segment) - set(SEGMENT_KEYS))
    if bad:
        raise _fail(path, f"{key}.segment.{bad[0]}", f"not a segment column; use {SEGMENT_KEYS}")
    when = entry.get("when")
    if when is not None and when not in PREDICATES:
        raise _fail(path, f"{key}.when", f"{when!r} is not a builtin predicate {PREDICATES}")
    for text_key in ("reason", "by"):
        if not isinstance(entry.get(text_key), str) or not entry[text_key].strip():
            raise _fail(path, f"{key}.{text_key}", "is required text (who agreed, and why)")
    at = entry.get("at")
    at_text = at.isoformat() if isinstance(at, datetime) else (None if at is None else str(at))
    return ExpectedRule(str(entry.get("name") or f"expected-{i}"), category, fields,
                        dict(segment), when, entry["reason"], entry["by"], at_text)


def _evidence(ignore: dict[str, Any], path: Path | str) -> tuple[dict[str, Any], ...]:
    evidence = ignore.get("evidence", [])
    if not isinstance(evidence, list) or not all(isinstance(e, dict) for e in evidence):
        raise _fail(path, "ignore.evidence", "must be an array of tables")
    return tuple(evidence)


def parse_diff_rules(text: str, source: Path | str = "<rules>") -> DiffRules:
    """Parse rules from TOML text; ``source`` names the file in errors."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise _fail(source, unknown[0], f"unknown key; allowed: {sorted(_TOP_KEYS)}")
    if doc.get("version") != RULES_VERSION:
        raise _fail(source, "version", f"must be {RULES_VERSION}, got {doc.get('version')!r}")
    ignore = _table(doc, "ignore", source)
    fee = _table(_table(doc, "tolerance", source), "fee_minor", source)
    compare = _table(doc, "compare", source)
    predicate = _table(_table(doc, "predicates", source), "cheaper_route_same_success", source)
    reason_map = _table(doc, "reason_map", source)
    if not all(isinstance(v, str) for v in reason_map.values()):
        raise _fail(source, "reason_map", "values must be canonical reason text")
    expected = doc.get("expected", [])
    if not isinstance(expected, list):
        raise _fail(source, "expected", "must be an array of tables ([[expected]])")
    severity, expected_severity = _severity(doc, source)
    return DiffRules(
        ignore_fields=frozenset(_str_list(ignore.get("fields", []), "ignore.fields", source)),
        fee_abs_minor=_number(fee.get("abs", 0), "tolerance.fee_minor.abs", source, int),
        fee_rel=_number(fee.get("rel", 0.0), "tolerance.fee_minor.rel", source, float),
        route_decisions=_str_list(compare.get("route_decisions", ["approve"]),
                                  "compare.route_decisions", source, DECISION_VALUES),
        severity=severity, expected_severity=expected_severity,
        p_success_min=_number(predicate.get("p_success_min", P_SUCCESS_MIN_DEFAULT),
                              "predicates.cheaper_route_same_success.p_success_min", source, float),
        reason_map=dict(reason_map),
        expected=tuple(_expected_rule(i, e, source) for i, e in enumerate(expected)),
        ignore_evidence=_evidence(ignore, source),
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
