"""What happens over the simulated period as a whole: rows per day, gateway outages, and which
merchant is compromised when.

Days are generated independently (each from its own random stream), so anything that spans
days is decided here once, from the seed and the period, before any day is drawn.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import numpy as np

from cutover.sim.world import MCC_PROFILES, STREAM_SCENARIO, World, rng_for

DAY_US: Final = 86_400_000_000
HOUR_US: Final = 3_600_000_000
#: Relative volume Monday..Sunday: Friday and Saturday are the busy days.
WEEKDAY_WEIGHTS: Final = (0.96, 0.95, 0.98, 1.0, 1.12, 1.15, 0.84)
#: Days per outage of each gateway (at least one outage per gateway per period).
OUTAGE_EVERY_DAYS: Final = 10
OUTAGE_HOURS_MIN, OUTAGE_HOURS_MAX = 1, 4
_EPOCH: Final = dt.date(1970, 1, 1)


@dataclass(frozen=True, eq=False)
class Scenario:
    """The period-wide plan of one (seed, start, days, rows)."""

    start: dt.date
    rows_per_day: tuple[int, ...]
    #: Per outage: gateway index, start and end (microseconds since the epoch, UTC).
    outage_gateway: np.ndarray
    outage_start_us: np.ndarray
    outage_end_us: np.ndarray
    compromised_merchant: int
    compromised_days: range

    def day(self, index: int) -> dt.date:
        return self.start + dt.timedelta(days=index)

    def day_us(self, index: int) -> int:
        """Microseconds since the epoch at 00:00 UTC of day ``index``."""
        return (self.day(index) - _EPOCH).days * DAY_US


def rows_per_day(rows: int, start: dt.date, days: int) -> tuple[int, ...]:
    """Split ``rows`` over ``days`` by weekday weight; largest remainders get the extra rows."""
    weights = np.array([WEEKDAY_WEIGHTS[(start + dt.timedelta(days=i)).weekday()]
                        for i in range(days)])
    share = rows * weights / weights.sum()
    counts = np.floor(share).astype(np.int64)
    extra = rows - int(counts.sum())
    counts[np.argsort(-(share - counts), kind="stable")[:extra]] += 1
    return tuple(int(c) for c in counts)


def _outages(rng: np.random.Generator, gateways: int, start_us: int,
             days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    per_gateway = max(1, days // OUTAGE_EVERY_DAYS)
    gateway = np.repeat(np.arange(gateways), per_gateway)
    begin = start_us + rng.integers(0, days * DAY_US - OUTAGE_HOURS_MAX * HOUR_US, len(gateway))
    length = rng.integers(OUTAGE_HOURS_MIN * HOUR_US, OUTAGE_HOURS_MAX * HOUR_US + 1, len(gateway))
    return gateway, begin, begin + length


def build_scenario(world: World, rows: int, start: dt.date, days: int) -> Scenario:
    """The plan of the period; deterministic in (world seed, rows, start, days)."""
    rng = rng_for(world.seed, STREAM_SCENARIO, days, (start - _EPOCH).days)
    gateway, begin, end = _outages(rng, len(world.gateways.names), (start - _EPOCH).days * DAY_US,
                                   days)
    ecom_share = np.array([p.channels[0] for p in MCC_PROFILES.values()])
    online = np.flatnonzero(ecom_share[world.merchant_profile] >= 0.5)
    window = min(days, max(3, days // 10))
    first = int(rng.integers(0, max(1, days - window + 1)))
    return Scenario(start, rows_per_day(rows, start, days), gateway, begin, end,
                    int(online[rng.integers(0, len(online))]), range(first, first + window))


def in_outage(scenario: Scenario, gateway: np.ndarray, ts_us: np.ndarray) -> np.ndarray:
    """True where the row's gateway is inside one of its outage windows at ``ts_us``."""
    out = np.zeros(len(ts_us), dtype=bool)
    for g, begin, end in zip(scenario.outage_gateway.tolist(), scenario.outage_start_us.tolist(),
                             scenario.outage_end_us.tolist(), strict=True):
        out |= (gateway == g) & (ts_us >= begin) & (ts_us < end)
    return out
