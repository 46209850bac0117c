"""Reason codes: which features pushed a score up, in words a risk analyst can read.

Contributions come from XGBoost's approximate per-feature contributions
(``approx_contribs=True``), computed only for declines and reviews, where someone will read
them. docs/model-card.md says why (cost measured by bench/decide.py).
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np

from cutover.errors import ConfigError

REASONS_DEFAULT: Final = Path(__file__).resolve().parents[2] / "fixtures" / "reasons.toml"
#: How many contributing features each decline or review carries.
TOP_REASONS: Final = 3
METHOD: Final = "xgboost approx_contribs (Saabas), declines and reviews only"


@lru_cache(maxsize=4)
def load_reasons(path: Path = REASONS_DEFAULT) -> dict[str, str]:
    """Map "model:<feature>" and "rule:<name>" codes to plain text."""
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read reason texts: {exc}") from exc
    out = {f"model:{k}": v for k, v in doc.get("features", {}).items()}
    out.update({f"rule:{k}": v for k, v in doc.get("rules", {}).items()})
    return out


def top_features(contribs: np.ndarray, names: tuple[str, ...]) -> list[list[str]]:
    """Per row, the codes of the features with the largest positive contributions."""
    feats = contribs[:, : len(names)]  # the last column is the bias
    order = np.argsort(-feats, axis=1)[:, :TOP_REASONS]
    out = []
    for row, idx in zip(feats, order, strict=True):
        out.append([f"model:{names[i]}" for i in idx if row[i] > 0])
    return out


def explain(codes: list[str]) -> list[str]:
    """Plain text for each reason code (the code itself when no text is known)."""
    table = load_reasons()
    return [table.get(c, c) for c in codes]
