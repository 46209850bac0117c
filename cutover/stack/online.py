"""The online path of the features: one transaction at a time from per-entity state.

``cutover.stack.features`` computes features for a whole batch; a single online decision
cannot afford that, so ``OnlineFeatures`` keeps per entity the times and running sums of its
earlier transactions and answers each window with a binary search: O(log n) per window,
whatever the traffic of a busy merchant. Values equal the batch path's exactly (same integer
log amounts, same caps, same label rule); a test checks every row of a sample.
"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np

from cutover.domain import CHANNELS
from cutover.errors import InputError
from cutover.stack.features import (
    DISTINCT_LAST_N,
    FEATURES,
    GAP_CAP_US,
    HISTORY_US,
    LOG_SCALE,
    US_PER_S,
    WINDOW_1H_US,
    WINDOW_7D_US,
    WINDOW_10M_US,
    WINDOW_24H_US,
    log_amount_q,
    mcc_code,
)
from cutover.stack.labels import OnlineLabels

#: Old entries of an entity are cut once this many have aged out (amortised trimming).
TRIM_EVERY: Final = 64
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
REQUIRED: Final = ("txn_id", "ts", "merchant_id", "customer_id", "card_token", "card_country",
                   "amount_minor", "currency", "merchant_country", "channel")


class _Series:
    """Times and prefix sums of one entity's earlier transactions (and, for a card, the
    merchants and merchant countries it paid, for the distinct counts)."""

    __slots__ = ("times", "cum", "tags")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.cum: list[int] = [0]
        self.tags: list[tuple[str, str]] = []

    def distinct(self, ts_us: int) -> tuple[int, int]:
        """Distinct merchants and countries among the last DISTINCT_LAST_N entries in 24 h."""
        i = len(self.times)
        lo = max(bisect.bisect_left(self.times, ts_us - WINDOW_24H_US), i - DISTINCT_LAST_N)
        recent = self.tags[lo:i]
        return len({m for m, _ in recent}), len({c for _, c in recent})

    def window(self, ts_us: int, w_us: int) -> tuple[int, int]:
        """(count, sum) of entries with ``ts - w <= t``; all entries are earlier than ``ts``."""
        i = bisect.bisect_left(self.times, ts_us - w_us)
        return len(self.times) - i, self.cum[-1] - self.cum[i]

    def add(self, ts_us: int, value: int, tag: tuple[str, str] = ("", "")) -> None:
        self.times.append(ts_us)
        self.cum.append(self.cum[-1] + value)
        self.tags.append(tag)
        old = bisect.bisect_left(self.times, ts_us - HISTORY_US)
        if old >= TRIM_EVERY:
            del self.times[:old]
            del self.cum[:old]
            del self.tags[:old]


def ts_us_of(value: Any) -> int:
    """A transaction time as integer µs since the epoch (datetime must be timezone-aware)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InputError("txn field 'ts': a datetime must carry a timezone (UTC)")
        delta = value - EPOCH
        return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    raise InputError(f"txn field 'ts': expected a datetime or int µs, got {type(value).__name__}")


class OnlineFeatures:
    """Per-entity rolling state for one decision at a time; same values as FeatureState."""

    def __init__(self) -> None:
        self.card: dict[str, _Series] = {}
        self.cust: dict[str, _Series] = {}
        self.pair: dict[str, _Series] = {}
        self.merch: dict[str, _Series] = {}
        self.device: dict[str, _Series] = {}
        self.labels = OnlineLabels()
        self.last_ts_us: int | None = None

    def observe_label(self, merchant: str, label_ts_us: int, fraud: bool) -> None:
        """Record one label; it counts only for transactions at or after ``label_ts_us``."""
        self.labels.add(merchant, label_ts_us, fraud)

    @staticmethod
    def _get(store: dict[str, _Series], key: str | None) -> _Series | None:
        return store.get(key) if key is not None else None

    def features(self, txn: dict[str, Any]) -> list[float]:
        """Features of ``txn`` (FEATURES order) from earlier events, then add ``txn`` to the state."""
        missing = [k for k in REQUIRED if txn.get(k) is None]
        if missing:
            raise InputError(f"txn: missing fields {missing}")
        ts = ts_us_of(txn["ts"])
        if self.last_ts_us is not None and ts < self.last_ts_us:
            raise InputError("txn field 'ts': earlier than the previous decision; online "
                             "decisions must come in time order")
        lam = log_amount_q(txn["amount_minor"], txn["currency"])
        card = self._get(self.card, txn["card_token"])
        c10, _ = card.window(ts, WINDOW_10M_US) if card else (0, 0)
        c1h, _ = card.window(ts, WINDOW_1H_US) if card else (0, 0)
        c24, s24 = card.window(ts, WINDOW_24H_US) if card else (0, 0)
        gap = min(ts - card.times[-1], GAP_CAP_US) if card and card.times else GAP_CAP_US
        n_merch, n_country = card.distinct(ts) if card else (0, 0)
        cust = self._get(self.cust, txn["customer_id"])
        cn, cs = cust.window(ts, WINDOW_24H_US) if cust else (0, 0)
        dev = txn.get("device_hash")
        pkey = f"{txn['customer_id']}|{dev}" if dev is not None else None
        pair = self._get(self.pair, pkey)
        pn, _ = pair.window(ts, WINDOW_24H_US) if pair else (0, 0)
        merch = self._get(self.merch, txn["merchant_id"])
        mn, _ = merch.window(ts, WINDOW_1H_US) if merch else (0, 0)
        channel = CHANNELS.index(txn["channel"]) if txn["channel"] in CHANNELS else -1
        row = [lam / float(LOG_SCALE), float(txn["card_country"] != txn["merchant_country"]),
               float(channel), float(c10), float(c1h), float(c24), s24 / float(LOG_SCALE),
               gap / float(US_PER_S), float(n_merch), float(n_country), float(cn),
               float(lam * cn - cs) / (cn * float(LOG_SCALE)) if cn else 0.0,
               float(dev is not None and pn == 0), float(mn),
               self.labels.rate(txn["merchant_id"], ts), float(mcc_code(txn.get("mcc")))]
        row.extend(self._wide(txn, ts, card, cust, merch))
        self._remember(ts, lam, txn, pkey)
        return row

    def _wide(self, txn: dict[str, Any], ts: int, card: _Series | None, cust: _Series | None,
              merch: _Series | None) -> list[float]:
        """The 7-day, device and merchant-sum features (the tail of FEATURES)."""
        c7, cs7 = card.window(ts, WINDOW_7D_US) if card else (0, 0)
        u7, us7 = cust.window(ts, WINDOW_7D_US) if cust else (0, 0)
        device = self._get(self.device, txn.get("device_hash"))
        dn, ds = device.window(ts, WINDOW_24H_US) if device else (0, 0)
        _, ms1 = merch.window(ts, WINDOW_1H_US) if merch else (0, 0)
        _, ms24 = merch.window(ts, WINDOW_24H_US) if merch else (0, 0)
        scale = float(LOG_SCALE)
        return [float(c7), cs7 / scale, float(u7), us7 / scale, float(dn), ds / scale,
                ms1 / scale, ms24 / scale]

    def _remember(self, ts: int, lam: int, txn: dict[str, Any], pkey: str | None) -> None:
        tag = (txn["merchant_id"], txn["merchant_country"])
        for store, key in ((self.card, txn["card_token"]), (self.cust, txn["customer_id"]),
                           (self.pair, pkey), (self.merch, txn["merchant_id"]),
                           (self.device, txn.get("device_hash"))):
            if key is not None:
                series = store.get(key)
                if series is None:
                    series = store[key] = _Series()
                series.add(ts, lam, tag)
        self.last_ts_us = ts


assert len(FEATURES) == 24, "OnlineFeatures.features builds the FEATURES row by hand"
