"""Gateway health: is a gateway failing right now, judged only from outcomes already known?

Routing prefers the gateway with the best expected value, but a gateway in an outage settles
almost nothing whatever its long-run success table says. So the stack keeps, per gateway, the
recorded outcomes (``gateway_ok`` of the gateway a payment went to) and skips a gateway while
its recent success rate is too low. The policy lives in cutover/fixtures/routing.toml ``[health]``:

- an outcome becomes known ``settle_delay_s`` after its payment's ``ts`` (the gateway's answer
  plus the pipeline that records it); a decision at ``t`` counts only outcomes known at or
  before ``t``, so an outcome that arrives later can never change an earlier decision;
- a gateway **trips** when the outcomes known in ``[t - window_s, t]`` number at least
  ``outcomes_min`` and succeed less often than ``trip_below``;
- it **recovers** when the outcomes of the shorter ``[t - recover_window_s, t]`` number at
  least ``recover_outcomes_min`` and succeed at least ``recover_at``, even though the longer
  window still remembers the outage: that is what brings it back soon after an outage ends;
- it is **skipped** while tripped and not recovered. Both are pure functions of the windows at
  ``t`` (no hidden state), so batch boundaries, a resumed replay and the online path agree.
  A skipped gateway that stops receiving traffic drains its window and is tried again after
  ``window_s``: the circuit breaker half-opens on its own.

``GatewayHealth`` answers for a whole time-sorted batch (sorted arrays, ``np.searchsorted``);
``OnlineHealth`` is its scalar twin for one decision (lists, ``bisect``). Counts are integers
and the rate is one float division on both paths, so the two give identical answers; a test
compares them row by row.
"""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.config import load
from cutover.errors import InputError
from cutover.paths import fixtures_dir
from cutover.stack.settings import RoutingFile

US_PER_S: Final = 1_000_000
#: Columns of the outcomes a stack observes (``observe_outcomes``).
OUTCOME_COLUMNS: Final = ("ts", "gateway", "gateway_ok")
#: Old outcomes of a gateway are cut once this many have aged out (amortised trimming).
TRIM_EVERY: Final = 256


@dataclass(frozen=True)
class HealthPolicy:
    """When a gateway is skipped for health (cutover/fixtures/routing.toml ``[health]``)."""

    settle_delay_us: int
    window_us: int
    outcomes_min: int
    trip_below: float
    recover_window_us: int
    recover_outcomes_min: int
    recover_at: float

    @property
    def horizon_us(self) -> int:
        """The oldest outcome, relative to a decision, that any rule still reads."""
        return max(self.window_us, self.recover_window_us)


def load_health(path: Path | None = None) -> HealthPolicy:
    """Read ``[health]`` of cutover/fixtures/routing.toml; errors name the file and the field."""
    path = Path(path) if path else fixtures_dir() / "routing.toml"
    doc = load(RoutingFile, path).health
    return HealthPolicy(
        settle_delay_us=doc.settle_delay_s * US_PER_S, window_us=doc.window_s * US_PER_S,
        outcomes_min=doc.outcomes_min, trip_below=doc.trip_below,
        recover_window_us=doc.recover_window_s * US_PER_S,
        recover_outcomes_min=doc.recover_outcomes_min, recover_at=doc.recover_at)


def skip_rule(policy: HealthPolicy, n: np.ndarray, ok: np.ndarray, rn: np.ndarray,
              rok: np.ndarray) -> np.ndarray:
    """Skipped: tripped on the long window and not recovered on the short one (vectorised)."""
    rate = np.divide(ok, n, out=np.ones(n.shape), where=n > 0)
    recent = np.divide(rok, rn, out=np.zeros(rn.shape), where=rn > 0)
    tripped = (n >= policy.outcomes_min) & (rate < policy.trip_below)
    recovered = (rn >= policy.recover_outcomes_min) & (recent >= policy.recover_at)
    return tripped & ~recovered


def skip_rule_one(policy: HealthPolicy, n: int, ok: int, rn: int, rok: int) -> bool:
    """The scalar twin of ``skip_rule`` (same comparisons, same single division)."""
    tripped = n >= policy.outcomes_min and ok / n < policy.trip_below
    recovered = rn >= policy.recover_outcomes_min and rok / rn >= policy.recover_at
    return tripped and not recovered


def outcome_arrays(table: pa.Table | pa.RecordBatch
                   ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(gateway names, each row's index into them, ts µs, ok) of the rows with a gateway, a ts
    and a known outcome. Gateways are dictionary-encoded: a handful of names, many rows."""
    missing = [c for c in OUTCOME_COLUMNS if c not in table.schema.names]
    if missing:
        raise InputError(f"gateway outcomes: missing columns {missing}")
    ts, gw, ok = (table.column(c) for c in OUTCOME_COLUMNS)
    keep = pc.and_(pc.and_(pc.is_valid(gw), pc.is_valid(ts)), pc.is_valid(ok))
    if isinstance(keep, pa.ChunkedArray):
        keep = keep.combine_chunks()
    gw, ts, ok = (pc.filter(c, keep) for c in (gw, ts, ok))
    ts_us = np.asarray(pc.cast(ts, pa.int64()).to_numpy(zero_copy_only=False), np.int64)
    ok_np = np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)
    enc = pc.dictionary_encode(gw.combine_chunks() if isinstance(gw, pa.ChunkedArray) else gw)
    idx = np.asarray(enc.indices.to_numpy(zero_copy_only=False), np.int64)
    return enc.dictionary.to_pylist(), idx, ts_us, ok_np


class GatewayHealth:
    """The batch path: per gateway, known times (sorted) and outcomes still inside the horizon."""

    def __init__(self, policy: HealthPolicy) -> None:
        self.policy = policy
        self.known_us: dict[str, np.ndarray] = {}
        self.ok: dict[str, np.ndarray] = {}

    @property
    def rows(self) -> int:
        return sum(len(v) for v in self.known_us.values())

    def observe(self, table: pa.Table | pa.RecordBatch) -> None:
        """Remember outcomes; each counts from ``ts + settle_delay`` on."""
        names, idx, ts_us, ok = outcome_arrays(table)
        if len(idx) == 0:
            return
        known = ts_us + self.policy.settle_delay_us
        for code, name in enumerate(names):
            mine = idx == code
            times = np.concatenate([self.known_us.get(name, np.zeros(0, np.int64)), known[mine]])
            flags = np.concatenate([self.ok.get(name, np.zeros(0, bool)), ok[mine]])
            # Stable, so equal known times keep arrival order (counts do not depend on it).
            order = np.argsort(times, kind="stable")
            self.known_us[name], self.ok[name] = times[order], flags[order]

    def skip_matrix(self, names: tuple[str, ...], ts_us: np.ndarray) -> np.ndarray:
        """(gateways x rows) True where the gateway is skipped at that row's time.

        Rows are in time order; afterwards, outcomes too old for the last row are dropped:
        decisions come in time order, so no later one can read them.
        """
        out = np.zeros((len(names), len(ts_us)), dtype=bool)
        if len(ts_us) == 0:
            return out
        p = self.policy
        for i, name in enumerate(names):
            times = self.known_us.get(name)
            if times is None or len(times) == 0:
                continue
            cum = np.concatenate([[0], np.cumsum(self.ok[name], dtype=np.int64)])
            hi = np.searchsorted(times, ts_us, side="right")
            lo = np.searchsorted(times, ts_us - p.window_us, side="left")
            rlo = np.searchsorted(times, ts_us - p.recover_window_us, side="left")
            out[i] = skip_rule(p, hi - lo, cum[hi] - cum[lo], hi - rlo, cum[hi] - cum[rlo])
        self._trim(int(ts_us[-1]) - p.horizon_us)
        return out

    def _trim(self, oldest_us: int) -> None:
        for name, times in self.known_us.items():
            cut = int(np.searchsorted(times, oldest_us, side="left"))
            if cut:
                self.known_us[name], self.ok[name] = times[cut:], self.ok[name][cut:]


class _Outcomes:
    """One gateway's known outcomes for the online path: times and prefix sums of successes."""

    __slots__ = ("times", "cum")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.cum: list[int] = [0]

    def add(self, known_us: int, ok: bool) -> None:
        if self.times and known_us < self.times[-1]:
            # An outcome observed late, behind ones already folded: insert and redo the sums.
            i = bisect.bisect_right(self.times, known_us)
            self.times.insert(i, known_us)
            self.cum.insert(i + 1, self.cum[i])
            for j in range(i + 1, len(self.cum)):
                self.cum[j] += int(ok)
            return
        self.times.append(known_us)
        self.cum.append(self.cum[-1] + int(ok))

    def window(self, ts_us: int, w_us: int) -> tuple[int, int]:
        """(count, successes) known in ``[ts - w, ts]``; everything held is known by ``ts``."""
        i = bisect.bisect_left(self.times, ts_us - w_us)
        return len(self.times) - i, self.cum[-1] - self.cum[i]

    def trim(self, oldest_us: int) -> None:
        old = bisect.bisect_left(self.times, oldest_us)
        if old >= TRIM_EVERY:
            del self.times[:old]
            del self.cum[:old]


class OnlineHealth:
    """The online twin of ``GatewayHealth``: a heap of outcomes not yet known, folded by time."""

    def __init__(self, policy: HealthPolicy) -> None:
        self.policy = policy
        self._pending: list[tuple[int, str, bool]] = []
        self._known: dict[str, _Outcomes] = {}

    def add(self, gateway: str, ts_us: int, ok: bool) -> None:
        """Remember one outcome of a payment made at ``ts_us``."""
        heapq.heappush(self._pending, (int(ts_us) + self.policy.settle_delay_us, str(gateway),
                                       bool(ok)))

    def skipped(self, names: tuple[str, ...], ts_us: int) -> frozenset[str]:
        """The gateways skipped at ``ts_us`` (fold what is known by then first)."""
        pending = self._pending
        while pending and pending[0][0] <= ts_us:
            known, name, ok = heapq.heappop(pending)
            series = self._known.get(name)
            if series is None:
                series = self._known[name] = _Outcomes()
            series.add(known, ok)
        p = self.policy
        out = []
        for name in names:
            series = self._known.get(name)
            if series is None:
                continue
            n, ok = series.window(ts_us, p.window_us)
            rn, rok = series.window(ts_us, p.recover_window_us)
            if skip_rule_one(p, n, ok, rn, rok):
                out.append(name)
            series.trim(ts_us - p.horizon_us)
        return frozenset(out)
