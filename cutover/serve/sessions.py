"""Candidate state per client: the live stack, and fresh stacks for replays that need one.

A stateful stack (look-back features, labels, gateway health) gives the same decisions over
HTTP as in process only if it sees the same events in the same order. So a replay opens a
session (a stack of its own, built fresh by the same factory), feeds it the warm-up rows,
labels and outcomes as the in-process replay would, and numbers its batches: chunks sent
concurrently are decided strictly in sequence order. Live traffic (the mirror) uses the
``live`` session. Sessions are bounded; the least recently used one is closed first.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

LIVE: Final = "live"
SESSIONS_MAX: Final = 4
#: A chunk waits at most this long for the chunks numbered before it.
SEQUENCE_WAIT_S: Final = 30.0


class SessionError(LookupError):
    """Unknown session or a sequence number that can never come (the client's mistake)."""


class Session:
    """One stack, used by one thread at a time, in sequence order when the client numbers."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.next_seq = 0
        self.used_at_s = time.monotonic()
        self._turn = threading.Condition()

    def run(self, seq: int | None, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(stack)`` alone, after every lower ``seq`` has run (None: no order)."""
        deadline_s = time.monotonic() + SEQUENCE_WAIT_S
        with self._turn:
            if seq is not None and seq < self.next_seq:
                raise SessionError(f"sequence {seq} already decided (next is {self.next_seq})")
            while seq is not None and seq != self.next_seq:
                left_s = deadline_s - time.monotonic()
                if left_s <= 0:
                    raise SessionError(f"sequence {seq} waited {SEQUENCE_WAIT_S} s for"
                                       f" {self.next_seq}")
                self._turn.wait(left_s)
            try:
                return fn(self.stack)
            finally:
                self.used_at_s = time.monotonic()
                if seq is not None:
                    self.next_seq += 1
                self._turn.notify_all()


class Sessions:
    """The live session plus up to ``SESSIONS_MAX`` replay sessions."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory
        self._lock = threading.Lock()
        self._live = Session(factory())
        self._open: OrderedDict[str, Session] = OrderedDict()

    @property
    def live(self) -> Session:
        return self._live

    def open(self) -> str:
        """A new session with a fresh stack; returns its id."""
        session = Session(self.factory())
        sid = secrets.token_hex(8)
        with self._lock:
            self._open[sid] = session
            while len(self._open) > SESSIONS_MAX:
                self._open.popitem(last=False)
        return sid

    def get(self, sid: str | None) -> Session:
        """The session ``sid`` (None or ``live``: the live one)."""
        if sid is None or sid == LIVE:
            return self._live
        with self._lock:
            session = self._open.get(sid)
            if session is None:
                raise SessionError(f"unknown session {sid!r} (closed, or evicted after"
                                   f" {SESSIONS_MAX} newer ones)")
            self._open.move_to_end(sid)
            return session

    def close(self, sid: str) -> bool:
        with self._lock:
            return self._open.pop(sid, None) is not None
