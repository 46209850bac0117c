"""Model metrics for the model card: pure numpy, no I/O, no xgboost.

PR-AUC rather than ROC-AUC because fraud is rare: ROC-AUC looks excellent on almost any model
when 99 % of rows are negatives. Recall at a fixed false-positive rate is what a risk team
buys; the Brier score and reliability bins say whether a score can be read as a probability.
"""

from __future__ import annotations

from typing import Final

import numpy as np

RELIABILITY_BINS: Final = 10


def pr_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision (step-wise area under the precision-recall curve)."""
    y = np.asarray(y, dtype=bool)
    positives = int(y.sum())
    if positives == 0:
        return 0.0
    order = np.argsort(-score, kind="stable")
    hits = y[order]
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    return float(precision[hits].sum() / positives)


def threshold_at_fpr(y: np.ndarray, score: np.ndarray, fpr: float) -> float:
    """The lowest score threshold (``score >= t``) whose false-positive rate is at most ``fpr``."""
    neg = np.sort(np.asarray(score)[~np.asarray(y, dtype=bool)])
    if len(neg) == 0:
        return 0.5
    allowed = int(np.floor(fpr * len(neg)))
    # Just above the (allowed+1)-th highest negative score: at most `allowed` negatives pass.
    cut = neg[len(neg) - allowed - 1]
    return float(np.nextafter(cut, np.inf))


def recall_at(y: np.ndarray, score: np.ndarray, threshold: float) -> float:
    """Share of positives with ``score >= threshold``."""
    y = np.asarray(y, dtype=bool)
    return float((score[y] >= threshold).mean()) if y.any() else 0.0


def fpr_at(y: np.ndarray, score: np.ndarray, threshold: float) -> float:
    """Share of negatives with ``score >= threshold``."""
    y = np.asarray(y, dtype=bool)
    return float((score[~y] >= threshold).mean()) if (~y).any() else 0.0


def brier(y: np.ndarray, score: np.ndarray) -> float:
    """Mean squared error of the score read as a probability."""
    return float(np.mean((np.asarray(score, np.float64) - np.asarray(y, np.float64)) ** 2))


def reliability(y: np.ndarray, score: np.ndarray, bins: int = RELIABILITY_BINS) -> list[dict]:
    """Per score bin: rows, mean score, observed fraud rate (a calibration table)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        out.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "rows": n,
                    "mean_score": float(score[mask].mean()) if n else None,
                    "fraud_rate": float(np.asarray(y)[mask].mean()) if n else None})
    return out
