"""Failed legacy calls counted by reason, and the error-rate limit a recording must stay under.

A recording against a core that times out on half its calls is not evidence: ``record`` must
stop and say why. This is the pure part: it counts outcomes, keeps the first message of each
kind of failure verbatim (what an operator needs to act), and says as soon as the limit is
certainly crossed, so a dead core is not called for every remaining transaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final

#: Outcomes with decision ``error`` that are not a failed call: the core answered, and only
#: the code table lacks the code (import reports those separately).
NOT_CALL_FAILURES: Final = frozenset({"unknown_code"})
#: ``cutover record``'s default: more than 5 % failed calls and the recording is refused.
MAX_ERROR_RATE_DEFAULT: Final = 0.05


def is_call_failure(outcome: dict[str, Any]) -> bool:
    """True when ``outcome`` is a failed call (decision ``error`` for a reason of the call)."""
    return (outcome.get("legacy_decision") == "error"
            and outcome.get("legacy_reason") not in NOT_CALL_FAILURES)


@dataclass
class ErrorTally:
    """Counts calls and failures of ``planned`` calls against ``max_error_rate`` (0 to 1)."""

    planned: int
    max_error_rate: float = MAX_ERROR_RATE_DEFAULT
    calls: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    first_detail: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_error_rate) and 0.0 <= self.max_error_rate <= 1.0):
            raise ValueError(f"max error rate {self.max_error_rate!r}: expected 0 to 1")
        # Errors past this many make the final rate exceed the limit whatever follows.
        self.errors_max = math.floor(self.max_error_rate * self.planned + 1e-9)

    @property
    def errors(self) -> int:
        return sum(self.by_reason.values())

    def add(self, outcome: dict[str, Any]) -> bool:
        """Count ``outcome``; True once the limit is crossed (stop calling)."""
        self.calls += 1
        if is_call_failure(outcome):
            reason = str(outcome.get("legacy_reason"))
            self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
            self.first_detail.setdefault(reason, str(outcome.get("detail") or reason))
        return self.crossed()

    def crossed(self) -> bool:
        """True when the failures already exceed the limit for the planned calls."""
        return self.errors > self.errors_max

    def lines(self) -> list[str]:
        """One line per kind of failure in the order first seen (the cause before its echoes,
        such as ``breaker_open``): count, reason, first message verbatim."""
        return [f"{count} x {reason}: {self.first_detail[reason]}"
                for reason, count in self.by_reason.items()]
