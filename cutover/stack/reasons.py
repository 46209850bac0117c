"""Reason codes: which features pushed a score up, said only where the value makes it true.

Per-row contributions come from XGBoost (``approx_contribs`` by default: the exact TreeSHAP
ones cost about 100 predictions a row). They are computed only for declines and reviews, where
someone will read them; the model card records the method and the measured cost per row.

A contribution says a feature moved the score, not that its sentence is true: a tree can push
a score up for ``card_n_1h = 1``, and "many payments on this card" would then be false. So each
feature's sentence has a condition (``when`` in cutover/fixtures/reasons.toml) judged against
the reference population stored with the model (percentiles of the training rows, card.json
``reference``): a feature that pushed the score and meets it is ``model:<feature>``; one that
pushed the score without meeting it is ``pushed:<feature>``, reported as exactly that.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np

from cutover.errors import ConfigError
from cutover.paths import fixtures_dir

#: How many contributing features each decline or review carries.
TOP_REASONS: Final = 3
METHODS: Final = ("approx_contribs", "pred_contribs")
METHOD_DEFAULT: Final = "approx_contribs"
#: A feature's sentence is true of values above this percentile ("high") or below the mirror
#: one ("low") of the reference population.
HIGH_PERCENTILE: Final = 90
LOW_PERCENTILE: Final = 10
PERCENTILES: Final = (LOW_PERCENTILE, 50, HIGH_PERCENTILE)
WHEN: Final = ("high", "low", "flag", "none")
UNITS: Final = ("count", "flag", "code", "seconds", "rate", "ratio", "log_amount", "logsum")
#: Code prefixes: a truthful reason, and a feature that pushed the score without one.
MODEL: Final = "model:"
PUSHED: Final = "pushed:"


@dataclass(frozen=True)
class Claim:
    """One feature's sentence and the condition under which it is true."""

    when: str
    unit: str
    text: str
    says: str


@lru_cache(maxsize=4)
def load_claims(path: Path | None = None) -> dict[str, Claim]:
    """Every feature's claim (cutover/fixtures/reasons.toml [features])."""
    path = Path(path) if path else fixtures_dir() / "reasons.toml"
    doc = _read(path)
    out = {}
    for name, spec in doc.get("features", {}).items():
        if not isinstance(spec, dict) or set(spec) != {"when", "unit", "text", "says"}:
            raise ConfigError(f"{path}: features.{name} needs exactly when, unit, text, says")
        if spec["when"] not in WHEN or spec["unit"] not in UNITS:
            raise ConfigError(f"{path}: features.{name}: when must be one of {', '.join(WHEN)} "
                              f"and unit one of {', '.join(UNITS)}")
        out[name] = Claim(**spec)
    return out


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read reason texts: {exc}") from exc


@lru_cache(maxsize=4)
def load_reasons(path: Path | None = None) -> dict[str, str]:
    """Map "model:<feature>", "pushed:<feature>", "rule:<name>" and "route:<name>" codes to
    plain text without values (cutover/fixtures/reasons.toml)."""
    path = Path(path) if path else fixtures_dir() / "reasons.toml"
    doc = _read(path)
    out = {}
    for name, claim in load_claims(path).items():
        out[f"{MODEL}{name}"] = claim.text
        out[f"{PUSHED}{name}"] = (f"{name} pushed the score up; its value does not support "
                                  "a plain-language reason")
    out.update({f"rule:{k}": v for k, v in doc.get("rules", {}).items()})
    out.update({f"route:{k}": v for k, v in doc.get("routes", {}).items()})
    return out


def reference_of(X: np.ndarray, names: tuple[str, ...]) -> dict[str, Any]:
    """The reference population a model is stored with: percentiles of each feature."""
    points = np.percentile(X.astype(np.float64), PERCENTILES, axis=0) if len(X) else \
        np.zeros((len(PERCENTILES), len(names)))
    return {"population": "training rows", "rows": int(len(X)),
            "percentiles": [int(p) for p in PERCENTILES],
            "features": {n: [float(points[j, i]) for j in range(len(PERCENTILES))]
                         for i, n in enumerate(names)}}


def supported(X: np.ndarray, names: tuple[str, ...], reference: dict[str, Any] | None) -> np.ndarray:
    """(rows x features) bool: the feature's sentence is true of the row's value.

    Without a reference (a model trained before reasons were checked) nothing is supported:
    an unchecked sentence is exactly what this guards against.
    """
    out = np.zeros(X.shape[:1] + (len(names),), bool)
    if not reference:
        return out
    claims, points = load_claims(), reference.get("features", {})
    for i, name in enumerate(names):
        claim, p = claims.get(name), points.get(name)
        if claim is None or p is None:
            continue
        low, mid, high = p
        if claim.when == "high":
            out[:, i] = (X[:, i] > high) & (X[:, i] > mid)
        elif claim.when == "low":
            out[:, i] = (X[:, i] < low) & (X[:, i] < mid)
        elif claim.when == "flag":
            out[:, i] = X[:, i] >= 0.5
    return out


def top_features(contribs: np.ndarray, names: tuple[str, ...], X: np.ndarray | None = None,
                 reference: dict[str, Any] | None = None) -> list[list[str]]:
    """Per row, codes of the features with the largest positive contributions (best first):
    ``model:`` where the value supports the sentence, ``pushed:`` where it does not.

    Without ``X`` every code is ``model:`` (callers that only rank contributions).
    """
    feats = contribs[:, : len(names)]  # the last column is the bias
    order = np.argsort(-feats, axis=1, kind="stable")[:, :TOP_REASONS]
    true = supported(X, names, reference) if X is not None else np.ones(feats.shape, bool)
    return [[f"{MODEL if ok[i] else PUSHED}{names[i]}" for i in idx if row[i] > 0]
            for row, ok, idx in zip(feats, true, order, strict=True)]


def feature_values(codes: list[str], row: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    """The value of each model feature named by ``codes`` (for its sentence), from one row."""
    index = {n: i for i, n in enumerate(names)}
    out = {}
    for code in codes:
        prefix, _, name = code.partition(":")
        if f"{prefix}:" in (MODEL, PUSHED) and name in index:
            out[name] = float(row[index[name]])
    return out


def sentences(codes: list[str], values: dict[str, float] | None,
              reference: dict[str, Any] | None) -> list[str]:
    """Plain text of each code, with the value and typical range where the value is known."""
    values = values or {}
    return [sentence(c, values.get(c.partition(":")[2]), reference) for c in codes]


def format_value(unit: str, value: float) -> str:
    """A feature value in the words its sentence uses."""
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "code":
        return f"{value:.0f}"
    if unit == "flag":
        return "yes" if value >= 0.5 else "no"
    if unit == "seconds":
        return _duration(value)
    if unit == "rate":
        return f"{value * 100:.1f}%"
    if unit == "ratio":
        return f"{math.exp(min(value, 50.0)):.1f} times"
    if unit == "log_amount":
        return f"{math.expm1(min(value, 50.0)):,.2f}"
    return f"{value:.1f}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def typical(unit: str, points: list[float]) -> str:
    """The reference population's middle 80%, in the sentence's words ("0-1")."""
    low, mid, high = points
    if unit == "flag":
        return format_value(unit, mid)
    a, b = format_value(unit, low), format_value(unit, high)
    return a if a == b else f"{a}-{b}"


def sentence(code: str, value: float | None, reference: dict[str, Any] | None) -> str:
    """The plain text of one code; for a model feature with its value and typical range."""
    prefix, _, name = code.partition(":")
    claim = load_claims().get(name) if f"{prefix}:" in (MODEL, PUSHED) else None
    if claim is None or value is None:
        return explain([code])[0]
    points = (reference or {}).get("features", {}).get(name)
    shown = format_value(claim.unit, value)
    # A category code has no typical range: its numbers are labels, not sizes.
    usual = f"; typical {typical(claim.unit, points)}" if points and claim.unit != "code" else ""
    if f"{prefix}:" == MODEL:
        said = claim.says.format(value=shown)
        return f"{said[:1].upper()}{said[1:]}{usual}."
    return (f"{name} = {shown} pushed the score up{usual}; no plain-language reason is claimed "
            "for this value.")


def explain(codes: list[str]) -> list[str]:
    """Plain text for each reason code (the code itself when no text is known).

    A route code carries the gateway after its name (``route:skipped_unhealthy:GW_X``): the
    text is the name's, with the gateway added.
    """
    table = load_reasons()
    out = []
    for code in codes:
        head, _, gateway = code.rpartition(":")
        if code not in table and code.startswith("route:") and head in table:
            out.append(f"{table[head]} ({gateway})")
        else:
            out.append(table.get(code, code))
    return out
