"""The guards around every call to an outside service: throttle, circuit breaker, retries.

A legacy core or a candidate service is slow, flaky and sometimes down. These guards are small,
thread-safe, take a ``Clock`` (tests advance a fake one instead of sleeping) and know nothing
of HTTP or SOAP, so any client reuses them:

- ``Throttle``: calls per second (token bucket) and calls in flight (semaphore).
- ``CircuitBreaker``: opens after consecutive failures or a high error rate, half-opens after
  a cool-down to let one probe through.
- ``call_with_retries``: retries a failed idempotent attempt with exponential backoff, all of it
  inside one ``Deadline``.

Failures are ``CallFailed`` (a ``LegacyFault`` carrying a canonical ``reason``) and
``BreakerOpen`` (a ``LegacyUnavailable``, reason ``breaker_open``).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Final, TypeVar

from cutover.adapters.deadline import SYSTEM_CLOCK, Clock, Deadline
from cutover.errors import LegacyFault, LegacyUnavailable

#: Total time of one call to the legacy core, retries included (connect + headers + body).
CALL_DEADLINE_S: Final = 10.0
RETRY_ATTEMPTS_MAX: Final = 3
RETRY_WAIT_BASE_S: Final = 0.05
RETRY_WAIT_MAX_S: Final = 1.0
BREAKER_FAILURES_MAX: Final = 5
BREAKER_WINDOW_CALLS: Final = 20
BREAKER_ERROR_RATE_MAX: Final = 0.5
BREAKER_COOLDOWN_S: Final = 5.0

T = TypeVar("T")


class CallFailed(LegacyFault):
    """One call to an outside service failed; ``reason`` is the canonical legacy_reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class BreakerOpen(LegacyUnavailable):
    """The circuit breaker is open: the call was not made."""

    reason = "breaker_open"


class Throttle:
    """Token bucket for calls per second plus a semaphore for calls in flight; thread-safe."""

    def __init__(self, calls_per_s: float, in_flight_max: int, burst_calls: int = 1,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        # NaN compares false with everything, so "<= 0" alone would let it switch the throttle off.
        if not (math.isfinite(calls_per_s) and calls_per_s > 0) or in_flight_max <= 0 \
                or burst_calls <= 0:
            raise ValueError("throttle rate (finite), in-flight limit and burst must be positive")
        self.calls_per_s = float(calls_per_s)
        self.clock = clock
        self._burst = float(burst_calls)
        self._tokens = float(burst_calls)
        self._last_s = clock.monotonic()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(in_flight_max)

    def _take_token_wait_s(self) -> float:
        with self._lock:
            now_s = self.clock.monotonic()
            refill = (now_s - self._last_s) * self.calls_per_s
            self._tokens = min(self._burst, self._tokens + refill)
            self._last_s = now_s
            # Taking the token now (possibly into debt) reserves this caller's slot in time,
            # so waiting callers are served in order and the rate holds under contention.
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.calls_per_s

    def _give_token_back(self) -> None:
        with self._lock:
            self._tokens += 1.0

    def acquire(self, deadline: Deadline | None = None) -> None:
        """Block until a call may start (rate and in-flight), then hold an in-flight slot.

        With a ``deadline``, raise ``CallFailed('timeout')`` rather than wait past it.
        """
        if deadline is None:
            self._slots.acquire()
        elif not self._slots.acquire(timeout=deadline.remaining_s()):
            raise CallFailed("timeout", "no call slot came free before the deadline")
        wait_s = self._take_token_wait_s()
        if deadline is not None and wait_s > deadline.remaining_s():
            self._give_token_back()
            self._slots.release()
            raise CallFailed("timeout", f"throttle wait {wait_s:.3f} s is past the deadline")
        self.clock.sleep(wait_s)

    def release(self) -> None:
        """Give back the in-flight slot taken by ``acquire``."""
        self._slots.release()

    def __enter__(self) -> Throttle:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass
class CircuitBreaker:
    """Opens after consecutive failures or a high error rate; half-opens after a cool-down."""

    failures_max: int = BREAKER_FAILURES_MAX
    window_calls: int = BREAKER_WINDOW_CALLS
    error_rate_max: float = BREAKER_ERROR_RATE_MAX
    cooldown_s: float = BREAKER_COOLDOWN_S
    clock: Clock = field(default=SYSTEM_CLOCK, repr=False)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._consecutive = 0
        self._window: deque[bool] = deque(maxlen=self.window_calls)
        self._opened_at_s: float | None = None
        self._probing = False
        self._last_cause = ""

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open``."""
        with self._lock:
            return self._state_locked(self.clock.monotonic())

    def _state_locked(self, now_s: float) -> str:
        if self._opened_at_s is None:
            return "closed"
        return "half_open" if now_s - self._opened_at_s >= self.cooldown_s else "open"

    def before_call(self) -> None:
        """Raise ``BreakerOpen`` while open; let one probe through once half-open."""
        with self._lock:
            state = self._state_locked(self.clock.monotonic())
            if state == "open" or (state == "half_open" and self._probing):
                raise BreakerOpen("circuit breaker is open, call not made; the core's last"
                                  f" failure: {self._last_cause or 'unknown'}")
            if state == "half_open":
                self._probing = True

    def record(self, ok: bool, cause: str = "") -> None:
        """Record a call's result (``cause`` of a failure is quoted while the breaker is open)."""
        with self._lock:
            self._probing = False
            self._window.append(ok)
            if ok:
                self._consecutive = 0
                self._opened_at_s = None
                return
            self._last_cause = cause or self._last_cause
            self._consecutive += 1
            full = len(self._window) == self.window_calls
            rate = self._window.count(False) / len(self._window)
            if (self._opened_at_s is not None or self._consecutive >= self.failures_max
                    or (full and rate > self.error_rate_max)):
                self._opened_at_s = self.clock.monotonic()


def backoff_wait_s(attempt: int, base_s: float = RETRY_WAIT_BASE_S,
                   wait_max_s: float = RETRY_WAIT_MAX_S) -> float:
    """Exponential wait before retry ``attempt`` (1-based), capped at ``wait_max_s``."""
    return min(wait_max_s, base_s * (2 ** (attempt - 1)))


def call_with_retries(attempt: Callable[[], T], deadline: Deadline, *, attempts_max: int,
                      retryable: Collection[str], clock: Clock = SYSTEM_CLOCK) -> T:
    """Run ``attempt`` until it returns, retrying a retryable ``CallFailed`` inside ``deadline``.

    Pass ``attempts_max=1`` for an operation that is not idempotent. A retry whose backoff
    would end past the deadline is not started: the last failure is raised instead. When the
    breaker opens between attempts, the failure that opened it is raised, not ``BreakerOpen``:
    the call was made, and its cause is what the caller must see.
    """
    last: CallFailed | None = None
    for number in range(1, max(1, attempts_max) + 1):
        try:
            return attempt()
        except BreakerOpen:
            if last is None:
                raise
            raise last from None
        except CallFailed as exc:
            last = exc
            wait_s = backoff_wait_s(number)
            if (number >= attempts_max or exc.reason not in retryable
                    or wait_s >= deadline.remaining_s()):
                raise
            clock.sleep(wait_s)
    raise AssertionError("unreachable: the retry loop returns or raises")
