"""How cutover talks HTTP to a legacy core without being hurt by it.

The legacy core is slow, flaky and sometimes hostile (huge or unsafe bodies). This module holds
the guards every call goes through: a thread-safe throttle (calls per second and calls in
flight), a circuit breaker that fails fast while the core is down, exponential backoff for
idempotent retries, and a zeep transport that streams each reply and stops at a size cap.
Each guard is small and testable alone; ``cutover.adapters.soap`` wires them together.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Final

import requests
from zeep.transports import Transport

from cutover.errors import LegacyFault, LegacyUnavailable

CONNECT_TIMEOUT_S: Final = 2.0
READ_TIMEOUT_S: Final = 5.0
#: A SOAP authorisation reply is a few KiB; anything past this is refused unread.
RESPONSE_BYTES_MAX: Final = 1 * 1024 * 1024
STREAM_CHUNK_BYTES: Final = 64 * 1024
RETRY_ATTEMPTS_MAX: Final = 3
RETRY_WAIT_BASE_S: Final = 0.05
RETRY_WAIT_MAX_S: Final = 1.0
BREAKER_FAILURES_MAX: Final = 5
BREAKER_WINDOW_CALLS: Final = 20
BREAKER_ERROR_RATE_MAX: Final = 0.5
BREAKER_COOLDOWN_S: Final = 5.0


class CallFailed(LegacyFault):
    """One call to the legacy core failed; ``reason`` is the canonical legacy_reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class BreakerOpen(LegacyUnavailable):
    """The circuit breaker is open: the call was not made."""

    reason = "breaker_open"


class Throttle:
    """Token bucket for calls per second plus a semaphore for calls in flight; thread-safe."""

    def __init__(self, calls_per_s: float, in_flight_max: int, burst_calls: int = 1) -> None:
        if calls_per_s <= 0 or in_flight_max <= 0 or burst_calls <= 0:
            raise ValueError("throttle rate, in-flight limit and burst must be positive")
        self.calls_per_s = float(calls_per_s)
        self._burst = float(burst_calls)
        self._tokens = float(burst_calls)
        self._last_s = time.monotonic()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(in_flight_max)

    def _take_token_wait_s(self) -> float:
        with self._lock:
            now_s = time.monotonic()
            refill = (now_s - self._last_s) * self.calls_per_s
            self._tokens = min(self._burst, self._tokens + refill)
            self._last_s = now_s
            # Taking the token now (possibly into debt) reserves this caller's slot in time,
            # so waiting callers are served in order and the rate holds under contention.
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.calls_per_s

    def acquire(self) -> None:
        """Block until a call may start (rate and in-flight), then hold an in-flight slot."""
        self._slots.acquire()
        wait_s = self._take_token_wait_s()
        if wait_s > 0:
            time.sleep(wait_s)

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

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._consecutive = 0
        self._window: deque[bool] = deque(maxlen=self.window_calls)
        self._opened_at_s: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open``."""
        with self._lock:
            return self._state_locked(time.monotonic())

    def _state_locked(self, now_s: float) -> str:
        if self._opened_at_s is None:
            return "closed"
        return "half_open" if now_s - self._opened_at_s >= self.cooldown_s else "open"

    def before_call(self) -> None:
        """Raise ``BreakerOpen`` while open; let one probe through once half-open."""
        with self._lock:
            state = self._state_locked(time.monotonic())
            if state == "open" or (state == "half_open" and self._probing):
                raise BreakerOpen("circuit breaker is open: legacy core failing, call not made")
            if state == "half_open":
                self._probing = True

    def record(self, ok: bool) -> None:
        """Record a call's result; a success closes the breaker, failures may open it."""
        with self._lock:
            self._probing = False
            self._window.append(ok)
            if ok:
                self._consecutive = 0
                self._opened_at_s = None
                return
            self._consecutive += 1
            full = len(self._window) == self.window_calls
            rate = self._window.count(False) / len(self._window)
            if (self._opened_at_s is not None or self._consecutive >= self.failures_max
                    or (full and rate > self.error_rate_max)):
                self._opened_at_s = time.monotonic()


def backoff_wait_s(attempt: int, base_s: float = RETRY_WAIT_BASE_S,
                   wait_max_s: float = RETRY_WAIT_MAX_S) -> float:
    """Exponential wait before retry ``attempt`` (1-based), capped at ``wait_max_s``."""
    return min(wait_max_s, base_s * (2 ** (attempt - 1)))


class CappedTransport(Transport):
    """A zeep transport with explicit timeouts that streams replies and stops at a size cap.

    Without the cap, a misbehaving core could make us read hundreds of megabytes into memory;
    with streaming we stop at ``response_bytes_max`` and close the connection.
    """

    def __init__(self, *, connect_timeout_s: float = CONNECT_TIMEOUT_S,
                 read_timeout_s: float = READ_TIMEOUT_S,
                 response_bytes_max: int = RESPONSE_BYTES_MAX,
                 session: requests.Session | None = None) -> None:
        super().__init__(timeout=connect_timeout_s + read_timeout_s,
                         operation_timeout=read_timeout_s, session=session or requests.Session())
        self.timeouts_s = (connect_timeout_s, read_timeout_s)
        self.response_bytes_max = response_bytes_max

    def post(self, address: str, message: bytes | str, headers: dict) -> requests.Response:
        """POST ``message``; return the response with its body read up to the cap."""
        try:
            response = self.session.post(address, data=message, headers=headers,
                                         timeout=self.timeouts_s, stream=True)
            with response:
                body = read_capped(response, self.response_bytes_max, sum(self.timeouts_s))
        except requests.exceptions.Timeout as exc:
            raise CallFailed("timeout", f"{address}: {exc}") from exc
        except requests.exceptions.ConnectionError as exc:
            raise CallFailed("connection_refused", f"{address}: {exc}") from exc
        response._content = body  # noqa: SLF001 - requests keeps the read body here
        return response


    def _load_remote_data(self, url: str) -> bytes:
        """Fetch a WSDL or schema with the same timeouts and size cap as a reply."""
        response = self.session.get(url, timeout=self.timeouts_s, stream=True)
        with response:
            response.raise_for_status()
            return read_capped(response, self.response_bytes_max, sum(self.timeouts_s))


def read_capped(response: requests.Response, bytes_max: int, deadline_s: float) -> bytes:
    """Read a streamed body; raise ``CallFailed`` past ``bytes_max`` or the total deadline."""
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > bytes_max:
        raise CallFailed("response_too_large", f"Content-Length {declared} > {bytes_max}")
    started_s = time.monotonic()
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(STREAM_CHUNK_BYTES):
        size += len(chunk)
        if size > bytes_max:
            raise CallFailed("response_too_large", f"body passed {bytes_max} bytes")
        if time.monotonic() - started_s > deadline_s:
            raise CallFailed("timeout", f"body still arriving after {deadline_s} s")
        chunks.append(chunk)
    return b"".join(chunks)
