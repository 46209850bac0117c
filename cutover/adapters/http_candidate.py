"""A candidate stack behind HTTP (``--candidate http://HOST:PORT``), e.g. ``cutover serve``.

It is a candidate like an in-process one (``decide_batch``, ``decide``, ``warm``,
``observe_labels``, ``observe_outcomes``), so the replay engine needs no change: each call
goes over a pooled connection through the same throttle and circuit breaker as the legacy
adapter (``cutover.adapters.transport``), with connect and read timeouts. A replay batch is
cut into chunks sent ``concurrency`` at a time; the service decides them in sequence order,
so a stateful stack sees exactly what it would see in process. Each row's ``latency_us`` is
its call's measured round trip shared over the call's rows, as an in-process batch shares
its time, so the gate judges the latency the service really gave.

A failed call raises ``CandidateCallFailed`` with a canonical reason (``timeout``,
``connection_refused``, ``http_503``, ``breaker_open``, ...), which the replay turns into
``candidate_error`` rows. After a failure the service's state for this replay may have
missed a step, so later batches fail too (``session_lost``) instead of deciding on a state
that differs from the in-process one; ``--resume`` opens a fresh session and rebuilds it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import numpy as np
import pyarrow as pa
import requests
from requests.adapters import HTTPAdapter

from cutover.adapters.transport import (
    CONNECT_TIMEOUT_S,
    BreakerOpen,
    CallFailed,
    CircuitBreaker,
    Throttle,
)
from cutover.adapters.wire import ARROW_TYPE, decisions_table, from_ipc, json_ready, to_ipc
from cutover.domain import REQUEST_COLUMNS
from cutover.errors import ConfigError

CONCURRENCY_DEFAULT: Final = 2
CONCURRENCY_MAX: Final = 32
CHUNK_ROWS_DEFAULT: Final = 16_384
#: A chunk of 16k rows decides in well under a second; the rest is the network.
READ_TIMEOUT_S: Final = 10.0
CALLS_PER_S_DEFAULT: Final = 1000.0
REPLY_TEXT_MAX: Final = 200


class CandidateCallFailed(CallFailed):
    """One call to the candidate service failed; ``reason`` is canonical."""


def _int_opt(options: dict[str, Any], name: str, default: int, top: int) -> int:
    value = options.pop(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--candidate-opt {name}={value!r}: expected an integer") from exc
    if not 1 <= number <= top:
        raise ConfigError(f"--candidate-opt {name}={number}: expected 1..{top}")
    return number


def _float_opt(options: dict[str, Any], name: str, default: float) -> float:
    value = options.pop(name, default)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--candidate-opt {name}={value!r}: expected a number") from exc
    if number <= 0:
        raise ConfigError(f"--candidate-opt {name}={number}: must be positive")
    return number


class HttpCandidate:
    """The candidate port spoken over HTTP to a service of the ``cutover serve`` contract."""

    OPTIONS: Final = ("concurrency", "chunk_rows", "timeout_s", "calls_per_s", "session")

    def __init__(self, url: str, options: dict[str, Any] | None = None,
                 breaker: CircuitBreaker | None = None) -> None:
        opts = dict(options or {})
        self.url = url.rstrip("/")
        self.concurrency = _int_opt(opts, "concurrency", CONCURRENCY_DEFAULT, CONCURRENCY_MAX)
        self.chunk_rows = _int_opt(opts, "chunk_rows", CHUNK_ROWS_DEFAULT, 1 << 20)
        self.timeouts_s = (CONNECT_TIMEOUT_S, _float_opt(opts, "timeout_s", READ_TIMEOUT_S))
        calls_per_s = _float_opt(opts, "calls_per_s", CALLS_PER_S_DEFAULT)
        own_session = str(opts.pop("session", "own")) != "live"
        if opts:
            raise ConfigError(f"--candidate {url}: unknown options {sorted(opts)}; allowed:"
                              f" {list(self.OPTIONS)}")
        self.throttle = Throttle(calls_per_s, self.concurrency, burst_calls=self.concurrency)
        self.breaker = breaker or CircuitBreaker()
        self.http = requests.Session()
        self.http.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=self.concurrency))
        self.http.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=self.concurrency))
        self._pool = ThreadPoolExecutor(self.concurrency, "candidate-http")
        self._seq_lock = threading.Lock()
        self._seq = 0
        self._lost: str | None = None
        self.model_version: str | None = None
        self.sid: str | None = None
        if own_session:
            self.sid = self._open_session()

    # -- one guarded call ------------------------------------------------------------------

    def _call(self, path: str, body: bytes, content_type: str,
              seq: int | None = None) -> tuple[bytes, float]:
        """POST ``body``; the reply body and the call's seconds, or ``CandidateCallFailed``."""
        headers = {"Content-Type": content_type, "Accept": content_type}
        if self.sid is not None:
            headers["X-Cutover-Session"] = self.sid
        if seq is not None:
            headers["X-Cutover-Seq"] = str(seq)
        try:
            self.breaker.before_call()
        except BreakerOpen as exc:
            raise CandidateCallFailed("breaker_open", str(exc)) from exc
        with self.throttle:
            started_s = time.perf_counter()
            try:
                reply = self.http.post(self.url + path, data=body, headers=headers,
                                       timeout=self.timeouts_s)
            except requests.exceptions.Timeout as exc:
                self.breaker.record(False)
                raise CandidateCallFailed("timeout", f"{self.url}{path}") from exc
            except requests.exceptions.ConnectionError as exc:
                self.breaker.record(False)
                raise CandidateCallFailed("connection_refused", f"{self.url}{path}") from exc
            seconds = time.perf_counter() - started_s
        self.breaker.record(reply.status_code < 500)
        if reply.status_code != 200:
            raise CandidateCallFailed(f"http_{reply.status_code}",
                                      reply.text[:REPLY_TEXT_MAX].replace("\n", " "))
        return reply.content, seconds

    def _next_seq(self) -> int:
        with self._seq_lock:
            self._seq += 1
            return self._seq - 1

    def _open_session(self) -> str:
        try:
            body, _ = self._call("/sessions", b"", "application/json")
            reply = json.loads(body)
        except (CallFailed, ValueError) as exc:
            raise ConfigError(f"--candidate {self.url}: cannot open a session: {exc}") from exc
        self.model_version = reply.get("model_version")
        return str(reply["session"])

    # -- the candidate port ------------------------------------------------------------------

    def _observe(self, kind: str, table: pa.Table | pa.RecordBatch) -> None:
        if self._lost is not None or table.num_rows == 0:
            return
        try:
            self._call(f"/sessions/{self.sid}/{kind}", to_ipc(table), ARROW_TYPE,
                       self._next_seq())
        except CallFailed as exc:
            self._lost = f"{kind} failed: {exc}"

    def warm(self, batch: pa.RecordBatch | pa.Table) -> None:
        self._observe("warm", batch)

    def observe_labels(self, labels: pa.Table | pa.RecordBatch) -> None:
        self._observe("labels", labels)

    def observe_outcomes(self, outcomes: pa.Table | pa.RecordBatch) -> None:
        self._observe("outcomes", outcomes)

    def _decide_chunk(self, chunk: pa.RecordBatch, seq: int | None) -> pa.Table:
        body, seconds = self._call("/decide-batch", to_ipc(chunk), ARROW_TYPE, seq)
        decisions = decisions_table(from_ipc(body))
        per_row_us = int(seconds * 1e6) // max(chunk.num_rows, 1)
        latency = pa.array(np.full(decisions.num_rows, per_row_us, np.int64))
        return decisions.set_column(decisions.schema.get_field_index("latency_us"),
                                    "latency_us", latency)

    def decide_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Decisions for ``batch`` in input order; raises ``CandidateCallFailed``."""
        if self._lost is not None:
            raise CandidateCallFailed("session_lost", self._lost)
        chunks = [batch.slice(i, self.chunk_rows)
                  for i in range(0, max(batch.num_rows, 1), self.chunk_rows)]
        ordered = self.sid is not None
        futures = [self._pool.submit(self._decide_chunk, c, self._next_seq() if ordered else None)
                   for c in chunks]
        try:
            tables = [f.result() for f in futures]
        except CallFailed as exc:
            if ordered:
                self._lost = f"a batch failed: {exc}"
            raise
        return pa.concat_tables(tables).combine_chunks().to_batches()[0] if tables else \
            batch.slice(0, 0)

    def decide(self, txn: dict[str, Any]) -> dict[str, Any]:
        """One decision over ``POST /decide`` (the live session); raises ``CandidateCallFailed``."""
        body = json.dumps(json_ready({k: txn.get(k) for k in _request_names()})).encode()
        reply, seconds = self._call("/decide", body, "application/json")
        out: dict[str, Any] = json.loads(reply)
        out["latency_us"] = int(seconds * 1e6)
        return out

    def close(self) -> None:
        if self.sid is not None:
            # The service evicts idle sessions itself, so a failed goodbye is harmless.
            with contextlib.suppress(requests.exceptions.RequestException):
                self.http.delete(f"{self.url}/sessions/{self.sid}", timeout=self.timeouts_s)
        self._pool.shutdown(wait=False)
        self.http.close()


def _request_names() -> tuple[str, ...]:
    return REQUEST_COLUMNS


def is_http_spec(spec: str) -> bool:
    """True for ``http://...`` and ``https://...`` candidate specs."""
    return spec.startswith(("http://", "https://"))
