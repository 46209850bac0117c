"""Confidence bounds for rates, shared by the replay report and the gates.

A mismatch rate of 1.8% measured on 300 transactions says little; the Wilson interval's upper
bound says how bad the rate could plausibly be. The report prints the interval and a gate
recomputes it from the same counts, so both must use this one function: two copies could
drift apart and a gate would then judge a different number than the report shows. Only the
standard library is used (the normal quantile comes from ``statistics.NormalDist``), so
neither needs scipy. Imports nothing of ours, so any layer may use it.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Final

CONFIDENCE_MIN: Final = 0.5
CONFIDENCE_MAX: Final = 0.9999


def z_for(confidence: float) -> float:
    """Two-sided normal quantile for ``confidence`` (0.95 -> 1.95996...)."""
    if not CONFIDENCE_MIN <= confidence <= CONFIDENCE_MAX:
        raise ValueError(
            f"confidence must be between {CONFIDENCE_MIN} and {CONFIDENCE_MAX}, got {confidence}"
        )
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (lo, hi) for ``k`` successes out of ``n`` trials.

    With no trials nothing is known, so the interval is the whole [0, 1].
    """
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k} n={n}")
    if n == 0:
        return 0.0, 1.0
    z = z_for(confidence)
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
