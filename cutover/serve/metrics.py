"""Prometheus text exposition for ``cutover serve`` and ``cutover mirror``, without a library.

The format is a handful of lines (counters, one histogram, an info gauge); writing it here
keeps a dependency out for about sixty lines and keeps every update a lock and an add.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from typing import Final

#: Histogram bucket upper bounds in seconds: 0.25 ms to 2.5 s, covering an in-process decision
#: to a timed-out call.
LATENCY_BUCKETS_S: Final = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                            0.25, 0.5, 1.0, 2.5)
#: Label values kept per counter; anything past it is counted as "other" so a stream of
#: distinct error texts cannot grow memory.
LABEL_VALUES_MAX: Final = 64


class Histogram:
    """Cumulative latency histogram in seconds (Prometheus ``le`` buckets)."""

    def __init__(self, buckets_s: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self.buckets_s = buckets_s
        self.counts = [0] * (len(buckets_s) + 1)
        self.sum_s = 0.0
        self.total = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.buckets_s, seconds)] += 1
        self.sum_s += seconds
        self.total += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        out, running = [], 0
        sep = "," if labels else ""
        for bound, count in zip(self.buckets_s, self.counts, strict=False):
            running += count
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound}"}} {running}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.total}')
        brace = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{brace} {self.sum_s:.6f}", f"{name}_count{brace} {self.total}"]
        return out


class Metrics:
    """Thread-safe counters by label and latency histograms by route."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, str], Counter[str]] = {}
        self._latency: dict[str, Histogram] = {}
        self.info: dict[str, str] = {}

    def count(self, name: str, label: str, value: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name`` with ``label=value``."""
        with self._lock:
            counter = self._counters.setdefault((name, label), Counter())
            if value not in counter and len(counter) >= LABEL_VALUES_MAX:
                value = "other"
            counter[value] += n

    def observe(self, route: str, seconds: float) -> None:
        """Record one request's latency on ``route``."""
        with self._lock:
            self._latency.setdefault(route, Histogram()).observe(seconds)

    def value(self, name: str, label: str, value: str) -> int:
        """The current count (for tests and admin status)."""
        with self._lock:
            return self._counters.get((name, label), Counter()).get(value, 0)

    def render(self) -> str:
        """The Prometheus text exposition (format 0.0.4)."""
        p = self.prefix
        with self._lock:
            lines: list[str] = []
            for (name, label), counter in sorted(self._counters.items()):
                lines.append(f"# TYPE {p}_{name} counter")
                lines += [f'{p}_{name}{{{label}="{v}"}} {n}' for v, n in sorted(counter.items())]
            lines.append(f"# TYPE {p}_request_seconds histogram")
            for route, hist in sorted(self._latency.items()):
                lines += hist.lines(f"{p}_request_seconds", f'route="{route}"')
            if self.info:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(self.info.items()))
                lines += [f"# TYPE {p}_info gauge", f"{p}_info{{{labels}}} 1"]
        return "\n".join(lines) + "\n"
