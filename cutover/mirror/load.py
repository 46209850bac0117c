"""``cutover load``: recorded traffic sent as legacy SOAP requests at a set pace.

The pace is a fixed rate (``rate_per_s``) or a multiple of the recorded one (``speed``: 2.0
sends a day's traffic in half a day). A scheduler thread releases each request at its due
time into a bounded queue; a fixed pool of sender threads (pooled keep-alive connections)
posts them and records each latency and outcome. When the target is slower than the pace
the queue fills and the scheduler waits: the run is late, never unbounded, and the summary
says how late. Errors are counted by kind (``http_500``, ``soap_fault``, ``timeout``,
``connection_refused``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import requests
from requests.adapters import HTTPAdapter

from cutover.adapters.mapping import load_mapping
from cutover.adapters.soap_wire import render_request
from cutover.errors import InputError
from cutover.store.filters import Narrowing, parse_when
from cutover.store.stream import iter_input

SENDERS_DEFAULT: Final = 16
SENDERS_MAX: Final = 256
QUEUE_MAX: Final = 1_024
READ_BATCH_ROWS: Final = 10_000
ROWS_MAX: Final = 10_000_000
CONNECT_TIMEOUT_S: Final = 2.0
TIMEOUT_S: Final = 10.0
PROGRESS_EVERY_S: Final = 0.5
SOAP_PATH: Final = "/soap"


@dataclass
class LoadSummary:
    """What a load run did: counts, pace, latencies in ms, errors by kind."""

    sent: int = 0
    ok: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    late_s_max: float = 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "ok": self.ok, "seconds": round(self.seconds, 3),
                "rate_per_s": round(self.sent / self.seconds, 1) if self.seconds else 0.0,
                "latency_ms": {"p50": round(self.percentile_ms(50), 3),
                               "p99": round(self.percentile_ms(99), 3),
                               "max": round(max(self.latencies_ms, default=0.0), 3)},
                "errors": dict(sorted(self.errors.items())),
                "late_s_max": round(self.late_s_max, 3)}


def _schedule(ts_us: np.ndarray, rate_per_s: float | None, speed: float | None) -> np.ndarray:
    """Seconds after the start at which each row is due."""
    if rate_per_s is not None:
        return np.arange(len(ts_us), dtype=np.float64) / rate_per_s
    assert speed is not None
    return (ts_us - ts_us[0]).astype(np.float64) / 1e6 / speed if len(ts_us) else ts_us


def read_rows(store: Path, since: str | None, until: str | None, limit: int | None
              ) -> list[dict[str, Any]]:
    """The store's rows to send, in time order (at most ``ROWS_MAX``)."""
    cap = min(limit or ROWS_MAX, ROWS_MAX)
    narrowing = Narrowing(parse_when(since), parse_when(until, "--until"), None, None, cap)
    rows: list[dict[str, Any]] = []
    for table in iter_input(Path(store), narrowing, READ_BATCH_ROWS):
        rows.extend(table.to_pylist())
    return rows[:cap]


def _outcome(reply: requests.Response) -> str | None:
    if reply.status_code >= 400:
        return "soap_fault" if b"Fault>" in reply.content else f"http_{reply.status_code}"
    return None


class _Sender:
    def __init__(self, url: str, senders: int, summary: LoadSummary) -> None:
        self.url = url
        self.summary = summary
        self.lock = threading.Lock()
        self.http = requests.Session()
        self.http.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=senders))

    def send(self, body: bytes) -> None:
        started_s = time.perf_counter()
        kind: str | None
        try:
            reply = self.http.post(self.url, data=body, timeout=(CONNECT_TIMEOUT_S, TIMEOUT_S),
                                   headers={"Content-Type": "text/xml; charset=utf-8"})
            kind = _outcome(reply)
        except requests.exceptions.Timeout:
            kind = "timeout"
        except requests.exceptions.ConnectionError:
            kind = "connection_refused"
        ms = (time.perf_counter() - started_s) * 1000
        with self.lock:
            self.summary.sent += 1
            self.summary.latencies_ms.append(ms)
            if kind is None:
                self.summary.ok += 1
            else:
                self.summary.errors[kind] += 1


def run_load(rows: list[dict[str, Any]], target: str, mapping: Path, *,
             rate_per_s: float | None = None, speed: float | None = None,
             senders: int = SENDERS_DEFAULT,
             on_progress: Callable[[LoadSummary, int], None] | None = None) -> LoadSummary:
    """Send ``rows`` to ``target``/soap at the pace asked; returns the summary."""
    if (rate_per_s is None) == (speed is None):
        raise InputError("give exactly one of --rate N or --speed Nx")
    if (rate_per_s is not None and rate_per_s <= 0) or (speed is not None and speed <= 0):
        raise InputError("--rate and --speed must be positive")
    if not 1 <= senders <= SENDERS_MAX:
        raise InputError(f"--senders {senders}: expected 1..{SENDERS_MAX}")
    spec = load_mapping(mapping)
    ts_us = np.array([int(r["ts"].timestamp() * 1e6) for r in rows], dtype=np.int64)
    due_s = _schedule(ts_us, rate_per_s, speed)
    summary = LoadSummary()
    sender = _Sender(target.rstrip("/") + SOAP_PATH, senders, summary)
    work: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_MAX)

    def drain() -> None:
        while (body := work.get()) is not None:
            sender.send(body)

    threads = [threading.Thread(target=drain, daemon=True) for _ in range(senders)]
    for thread in threads:
        thread.start()
    started_s = time.perf_counter()
    last_progress_s = started_s
    for i, row in enumerate(rows):
        wait_s = due_s[i] - (time.perf_counter() - started_s)
        if wait_s > 0:
            time.sleep(wait_s)
        else:
            summary.late_s_max = max(summary.late_s_max, -wait_s)
        work.put(render_request(spec, row))
        if on_progress is not None and time.perf_counter() - last_progress_s >= PROGRESS_EVERY_S:
            last_progress_s = time.perf_counter()
            on_progress(summary, len(rows))
    for _ in threads:
        work.put(None)
    for thread in threads:
        thread.join(timeout=TIMEOUT_S * 2)
    summary.seconds = time.perf_counter() - started_s
    sender.http.close()
    return summary
