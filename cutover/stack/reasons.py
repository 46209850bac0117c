"""Reason codes: which features pushed a score up, in words a risk analyst can read.

Per-row contributions come from XGBoost (``approx_contribs`` by default: the exact TreeSHAP
ones cost about 100 predictions a row). They are computed only for declines and reviews, where
someone will read them; the model card records the method and the measured cost per row.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np

from cutover.errors import ConfigError
from cutover.paths import fixtures_dir

#: How many contributing features each decline or review carries.
TOP_REASONS: Final = 3
METHODS: Final = ("approx_contribs", "pred_contribs")
METHOD_DEFAULT: Final = "approx_contribs"


@lru_cache(maxsize=4)
def load_reasons(path: Path | None = None) -> dict[str, str]:
    """Map "model:<feature>", "rule:<name>" and "route:<name>" codes to plain text
    (cutover/fixtures/reasons.toml)."""
    path = Path(path) if path else fixtures_dir() / "reasons.toml"
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read reason texts: {exc}") from exc
    out = {f"model:{k}": v for k, v in doc.get("features", {}).items()}
    out.update({f"rule:{k}": v for k, v in doc.get("rules", {}).items()})
    out.update({f"route:{k}": v for k, v in doc.get("routes", {}).items()})
    return out


def top_features(contribs: np.ndarray, names: tuple[str, ...]) -> list[list[str]]:
    """Per row, codes of the features with the largest positive contributions (best first)."""
    feats = contribs[:, : len(names)]  # the last column is the bias
    order = np.argsort(-feats, axis=1, kind="stable")[:, :TOP_REASONS]
    return [[f"model:{names[i]}" for i in idx if row[i] > 0]
            for row, idx in zip(feats, order, strict=True)]


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
