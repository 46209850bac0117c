"""Confidence bounds for the gates: re-exported from ``cutover.stats``.

The replay report and the gates must compute the very same interval (a gate recomputes what
the report prints), so the one implementation lives in ``cutover.stats``; this module keeps
the names the gates and their tests import.
"""

from __future__ import annotations

from cutover.stats import CONFIDENCE_MAX, CONFIDENCE_MIN, wilson, z_for

__all__ = ["CONFIDENCE_MAX", "CONFIDENCE_MIN", "wilson", "z_for"]
