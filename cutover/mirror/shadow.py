"""The mirror's shadow path: copies of live requests decided by the candidate, off the
request path, and committed in batches to the run directory.

The request handler only offers ``(request, reply)`` bytes to a bounded queue and returns;
when the queue is full the copy is dropped and counted, never the client's request. One
worker thread reads the envelopes (tokenising card numbers), asks the candidate about a
batch and commits it (``MirrorRun``) every ``flush_s`` or ``batch_rows`` requests.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np

from cutover.adapters.candidate import CandidateSide
from cutover.adapters.codes import CodeTable
from cutover.adapters.mapping import Mapping
from cutover.adapters.soap_wire import EnvelopeError, read_reply, read_request
from cutover.mirror.runlog import MirrorRun
from cutover.sim.legacy_rules import card_country_of, load_core_config

QUEUE_MAX: Final = 20_000
BATCH_ROWS_MAX: Final = 4_096
FLUSH_S: Final = 1.0
STOP_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True)
class Exchange:
    """One client request and the legacy core's reply, as bytes, with when and how long."""

    request: bytes
    reply: bytes
    status: int
    latency_ms: int
    received_at: datetime


class ShadowWorker:
    """Bounded queue plus one committing thread."""

    def __init__(self, run: MirrorRun, candidate: CandidateSide, mapping: Mapping,
                 codes: CodeTable, token_key: bytes, *, queue_max: int = QUEUE_MAX,
                 batch_rows: int = BATCH_ROWS_MAX, flush_s: float = FLUSH_S) -> None:
        self.run = run
        self.candidate = candidate
        self.mapping = mapping
        self.codes = codes
        self.token_key = token_key
        self.batch_rows = batch_rows
        self.flush_s = flush_s
        self.queue: queue.Queue[Exchange] = queue.Queue(maxsize=queue_max)
        self._stop = threading.Event()
        self._flush = threading.Event()
        self._lock = threading.Lock()
        self.bin_country = _bin_countries()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="mirror-shadow", daemon=True)
        self._thread.start()

    def offer(self, exchange: Exchange) -> bool:
        """Queue a copy; False (and counted) when the queue is full."""
        with self._lock:
            self.run.stats.received += 1
        try:
            self.queue.put_nowait(exchange)
        except queue.Full:
            with self._lock:
                self.run.stats.dropped_queue_full += 1
            return False
        return True

    def count(self, name: str, key: str | None = None) -> None:
        """Bump a stats counter (``fallbacks`` takes a reason key)."""
        with self._lock:
            if key is None:
                setattr(self.run.stats, name, getattr(self.run.stats, name) + 1)
            else:
                bucket = getattr(self.run.stats, name)
                bucket[key] = bucket.get(key, 0) + 1

    def flush(self) -> None:
        """Ask the worker to commit what it holds now."""
        self._flush.set()

    def _row(self, ex: Exchange) -> dict[str, Any] | None:
        try:
            txn = read_request(self.mapping, ex.request, self.token_key)
        except EnvelopeError:
            self.count("unreadable")
            return None
        outcome = read_reply(self.mapping, self.codes, ex.reply, ex.status,
                             str(txn.get("currency")))
        txn.setdefault("card_country", self.bin_country(str(txn.get("card_bin", ""))))
        return txn | outcome | {"legacy_latency_ms": ex.latency_ms}

    def _take(self, rows: list[dict[str, Any]], first_s: float | None) -> float | None:
        try:
            ex = self.queue.get(timeout=0.05)
        except queue.Empty:
            return first_s
        row = self._row(ex)
        if row is not None:
            rows.append(row)
        return first_s if first_s is not None else time.monotonic()

    def _loop(self) -> None:
        rows: list[dict[str, Any]] = []
        first_s: float | None = None
        try:
            while not (self._stop.is_set() and self.queue.empty()):
                first_s = self._take(rows, first_s)
                due = first_s is not None and time.monotonic() - first_s >= self.flush_s
                if rows and (len(rows) >= self.batch_rows or due or self._flush.is_set()
                             or self._stop.is_set()):
                    self._commit(rows)
                    rows, first_s = [], None
                elif self._flush.is_set() and not rows and self.queue.empty():
                    self._flush.clear()
            if rows:
                self._commit(rows)
        except BaseException as exc:  # the worker must not die silently: stop() re-raises
            self.error = exc

    def _commit(self, rows: list[dict[str, Any]]) -> None:
        # Not under the stats lock: a commit asks the candidate and writes files, and the
        # request path must never wait for that. Only this thread touches the run's files.
        self.run.commit(rows, self.candidate)
        if self.queue.empty():
            self._flush.clear()

    def stop(self) -> None:
        """Commit everything queued, mark the run finished, and re-raise a worker failure."""
        self._stop.set()
        self._thread.join(timeout=STOP_TIMEOUT_S)
        if self.error is not None:
            raise self.error
        self.run.finish()

    def status(self) -> dict[str, Any]:
        with self._lock:
            return self.run.stats.as_dict() | {
                "queued": self.queue.qsize(),
                "batches_committed": self.run.checkpoint.batches_committed}


def _bin_countries() -> Any:
    """BIN -> issuing country by the simulated world's range table ("ZZ" when unknown)."""
    cfg = load_core_config()

    def lookup(card_bin: str) -> str:
        return str(card_country_of(np.array([card_bin], dtype=object), cfg)[0])
    return lookup


def utc_now() -> datetime:
    return datetime.now(UTC)
