"""How cutover talks HTTP to an outside service without being hurt by it.

The legacy core (and any HTTP candidate) is slow, flaky and sometimes hostile: it drips bytes,
sends 200 MB, or goes away. Every call goes through the same small pieces, reusable by any
HTTP client in cutover (the SOAP adapter here, an HTTP candidate client elsewhere):

    Clock, SYSTEM_CLOCK      cutover.adapters.deadline   time as a port (tests pass a fake)
    Deadline(budget_s)       cutover.adapters.deadline   the total time one call may take,
                                                         connect + headers + body + retries
    fetch(url, body, deadline, bytes_max=, pool=)        one exchange, cut at the deadline
                             cutover.adapters.fetch      while bytes arrive, body capped while
                                                         streaming; ``Reply`` or ``CallFailed``
    ConnectionPool           cutover.adapters.fetch      keep-alive connections, bounded
    Throttle, CircuitBreaker cutover.adapters.guards     rate / in-flight limit; fail fast
    call_with_retries        cutover.adapters.guards     backoff retries inside the deadline

A caller writes, for example::

    deadline = Deadline(CALL_DEADLINE_S)
    breaker.before_call()
    with throttle:
        reply = call_with_retries(lambda: fetch(url, body, deadline, bytes_max=cap, pool=pool),
                                  deadline, attempts_max=3, retryable=RETRYABLE_REASONS)

Every failure is a ``CallFailed`` whose ``reason`` is the canonical ``legacy_reason`` (see
``cutover.adapters.fetch`` for the transport reasons).

This module adds what zeep needs: ``Exchange`` (the port that carries one HTTP exchange: the
network, or a cassette when recording or playing back) and ``CappedTransport``, a zeep transport
whose every POST and WSDL fetch goes through an exchange under the current call's deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Protocol

import requests
from requests.structures import CaseInsensitiveDict
from zeep.transports import Transport

from cutover.adapters.deadline import SYSTEM_CLOCK, Clock, Deadline
from cutover.adapters.fetch import (
    CONNECT_S_DEFAULT,
    IDLE_S_DEFAULT,
    ConnectionPool,
    Reply,
    fetch,
)
from cutover.adapters.guards import (
    BREAKER_COOLDOWN_S,
    BREAKER_ERROR_RATE_MAX,
    BREAKER_FAILURES_MAX,
    BREAKER_WINDOW_CALLS,
    CALL_DEADLINE_S,
    RETRY_ATTEMPTS_MAX,
    RETRY_WAIT_BASE_S,
    RETRY_WAIT_MAX_S,
    BreakerOpen,
    CallFailed,
    CircuitBreaker,
    Throttle,
    backoff_wait_s,
    call_with_retries,
)

__all__ = [
    "BREAKER_COOLDOWN_S", "BREAKER_ERROR_RATE_MAX", "BREAKER_FAILURES_MAX",
    "BREAKER_WINDOW_CALLS", "CALL_DEADLINE_S", "CONNECT_TIMEOUT_S", "READ_TIMEOUT_S",
    "RESPONSE_BYTES_MAX", "RETRY_ATTEMPTS_MAX", "RETRY_WAIT_BASE_S", "RETRY_WAIT_MAX_S",
    "SYSTEM_CLOCK", "BreakerOpen", "CallFailed", "CappedTransport", "CircuitBreaker", "Clock",
    "ConnectionPool", "Deadline", "Exchange", "NetworkExchange", "Reply", "Throttle",
    "backoff_wait_s", "call_with_retries", "fetch",
]

#: Longest a connection attempt may take, inside the call's deadline.
CONNECT_TIMEOUT_S: Final = CONNECT_S_DEFAULT
#: Longest silence between two bytes of a reply, inside the call's deadline.
READ_TIMEOUT_S: Final = IDLE_S_DEFAULT
#: A SOAP authorisation reply is a few KiB; anything past this is refused unread.
RESPONSE_BYTES_MAX: Final = 1 * 1024 * 1024


class Exchange(Protocol):
    """Carries one HTTP request and returns the whole reply, or raises ``CallFailed``."""

    def send(self, url: str, body: bytes | None, headers: dict[str, str], deadline: Deadline,
             bytes_max: int) -> Reply: ...

    def close(self) -> None: ...


class NetworkExchange:
    """The real network through ``fetch``, reusing keep-alive connections."""

    def __init__(self, idle_s: float = READ_TIMEOUT_S,
                 connect_s: float = CONNECT_TIMEOUT_S) -> None:
        self.idle_s = idle_s
        self.connect_s = connect_s
        self.pool = ConnectionPool()

    def send(self, url: str, body: bytes | None, headers: dict[str, str], deadline: Deadline,
             bytes_max: int) -> Reply:
        return fetch(url, body, deadline, bytes_max=bytes_max, headers=headers,
                     idle_s=self.idle_s, connect_s=self.connect_s, pool=self.pool)

    def close(self) -> None:
        self.pool.close()


def as_requests_response(reply: Reply, url: str) -> requests.Response:
    """``reply`` in the shape zeep reads (a ``requests.Response`` already holding its body)."""
    response = requests.Response()
    response.status_code = reply.status
    response.reason = reply.reason
    response.headers = CaseInsensitiveDict(dict(reply.headers))
    response.url = url
    response._content = reply.body  # noqa: SLF001 - requests keeps the read body here
    response.encoding = "utf-8"
    return response


class CappedTransport(Transport):
    """A zeep transport whose every exchange obeys the calling thread's deadline and size cap.

    The adapter wraps each operation in ``call_deadline(deadline)``; a fetch outside one (the
    WSDL at start-up) gets a fresh deadline of ``deadline_s``.
    """

    def __init__(self, *, deadline_s: float = CALL_DEADLINE_S,
                 response_bytes_max: int = RESPONSE_BYTES_MAX, exchange: Exchange | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(timeout=deadline_s, operation_timeout=deadline_s)
        self.deadline_s = deadline_s
        self.response_bytes_max = response_bytes_max
        self.exchange: Exchange = exchange or NetworkExchange()
        self.clock = clock
        self._local = threading.local()

    @contextmanager
    def call_deadline(self, deadline: Deadline) -> Iterator[None]:
        """Every exchange of this thread inside the block runs under ``deadline``."""
        self._local.deadline = deadline
        try:
            yield
        finally:
            self._local.deadline = None

    def _deadline(self) -> Deadline:
        current = getattr(self._local, "deadline", None)
        return current if current is not None else Deadline(self.deadline_s, self.clock)

    def post(self, address: str, message: bytes | str, headers: dict) -> requests.Response:
        """POST ``message``; the response with its body read up to the cap, or ``CallFailed``."""
        body = message.encode("utf-8") if isinstance(message, str) else message
        reply = self.exchange.send(address, body, {k: str(v) for k, v in headers.items()},
                                   self._deadline(), self.response_bytes_max)
        return as_requests_response(reply, address)

    def _load_remote_data(self, url: str) -> bytes:
        """Fetch a WSDL or schema under the same deadline and size cap as a reply."""
        reply = self.exchange.send(url, None, {}, self._deadline(), self.response_bytes_max)
        if reply.status >= 400:
            raise CallFailed(f"http_{reply.status}", f"{url}: {reply.reason}")
        return reply.body

    def close(self) -> None:
        """Close pooled connections."""
        self.exchange.close()
