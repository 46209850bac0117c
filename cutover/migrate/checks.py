"""The gate's building blocks: one judged check, and reading and judging a report's numbers.

Both the gate and the feed-health checks build on these, so they live below both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cutover.errors import GateInputError
from cutover.migrate.stats import wilson


@dataclass(frozen=True)
class Check:
    """One judged condition; ``observed``, ``bound`` and ``threshold`` are display text."""

    name: str
    observed: str
    bound: str
    threshold: str
    passed: bool
    message: str


def report_field(report: dict[str, Any], path: str, source: str) -> Any:
    """The value at a dotted ``path`` of the report; GateInputError naming it when missing."""
    node: Any = report
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise GateInputError(f"{source}: field {path} is missing")
        node = node[part]
    return node


def report_int(report: dict[str, Any], path: str, source: str) -> int:
    """A whole number >= 0 at ``path``; GateInputError naming it otherwise."""
    value = report_field(report, path, source)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise GateInputError(f"{source}: field {path} must be a whole number >= 0, got {value!r}")
    return value


def pct(rate: float) -> str:
    """A share as a percentage with two decimals."""
    return f"{rate * 100:.2f}%"


def rate_check(name: str, k: int, n: int, limit: float, confidence: float) -> Check:
    """Pass when the Wilson upper bound of k/n at ``confidence`` is within ``limit``."""
    hi = wilson(k, n, confidence)[1]
    passed = hi <= limit
    verdict = "<=" if passed else ">"
    return Check(name, f"{pct(k / n if n else 0.0)} ({k:,}/{n:,})", pct(hi), f"<= {pct(limit)}",
                 passed, f"{name}: upper bound {pct(hi)} at {confidence:g} confidence "
                         f"{verdict} {pct(limit)} ({k:,} of {n:,})")
