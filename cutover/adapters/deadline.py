"""Time as a port: a ``Clock`` to read and wait on, and a ``Deadline`` that every call carries.

A timeout per socket read does not bound a call: a peer that drips one byte per second keeps
every read inside its timeout forever. A call therefore gets one ``Deadline`` (connect, headers,
body and every retry inside it), and each blocking step waits at most ``remaining_s()``.

The throttle, the circuit breaker and the retry loop take a ``Clock`` rather than calling
``time`` directly, so tests drive them with a fake clock (``tests/adapters_support.FakeClock``)
instead of sleeping. Socket waits still use real time: pass the default ``SYSTEM_CLOCK`` there.
"""

from __future__ import annotations

import math
import time
from typing import Final, Protocol


class Clock(Protocol):
    """Monotonic seconds and a way to wait; the one seam between the guards and real time."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: ``time.monotonic`` and ``time.sleep``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


SYSTEM_CLOCK: Final = SystemClock()


class Deadline:
    """A point in time by which a call must be over, on ``clock``; immutable once made."""

    __slots__ = ("at_s", "budget_s", "clock")

    def __init__(self, budget_s: float, clock: Clock = SYSTEM_CLOCK) -> None:
        if not math.isfinite(budget_s) or budget_s <= 0:
            raise ValueError(f"deadline budget must be a positive finite number of seconds,"
                             f" not {budget_s!r}")
        self.budget_s = float(budget_s)
        self.clock = clock
        self.at_s = clock.monotonic() + self.budget_s

    def remaining_s(self) -> float:
        """Seconds left (0.0 once passed, never negative)."""
        return max(0.0, self.at_s - self.clock.monotonic())

    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self.clock.monotonic() >= self.at_s

    def elapsed_s(self) -> float:
        """Seconds since the deadline was set."""
        return self.clock.monotonic() - (self.at_s - self.budget_s)

    def cap(self, wait_s: float) -> float:
        """``wait_s`` shortened to what is left; use it for every blocking step."""
        return min(wait_s, self.remaining_s())
