"""Look-back features of the reference stack, computed two ways that must agree.

Replay and training compute features in bulk over time-sorted Arrow data (per entity: stable
sort, cumulative sums, ``np.searchsorted`` on timestamps). One online decision computes the
same values incrementally from ``OnlineFeatures`` (per-entity deques). A test compares both on
every row of a sample. Every look-back uses only earlier rows (in store order), and a label is
used only once ``label_ts <= ts``, so the features never see the future.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.domain import CHANNELS, CURRENCY_EXPONENTS

US_PER_S: Final = 1_000_000
WINDOW_10M_US: Final = 600 * US_PER_S
WINDOW_1H_US: Final = 3_600 * US_PER_S
WINDOW_24H_US: Final = 86_400 * US_PER_S
#: The longest look-back; state older than this is dropped, which bounds memory.
HISTORY_US: Final = WINDOW_24H_US
#: Seconds-since-previous for a card never seen in the window (a long, finite gap).
NO_PREVIOUS_S: Final = float(HISTORY_US // US_PER_S)
#: Smoothing of the merchant fraud rate: a prior of PRIOR_RATE worth PRIOR_LABELS labels.
PRIOR_RATE: Final = 0.01
PRIOR_LABELS: Final = 20.0

FEATURES: Final = (
    "log_amount", "cross_border", "channel_code",
    "card_n_10m", "card_n_1h", "card_n_24h", "card_logsum_24h", "card_secs_since_prev",
    "cust_amount_dev", "cust_new_device", "merchant_n_1h", "merchant_fraud_rate",
)
#: Columns of earlier transactions the rolling state keeps between batches.
HISTORY_COLUMNS: Final = ("ts", "card_token", "customer_id", "merchant_id", "device_hash",
                          "amount_minor", "currency")

_EXP_KEYS = list(CURRENCY_EXPONENTS)
_EXP_VALUES = np.array([CURRENCY_EXPONENTS[c] for c in _EXP_KEYS], dtype=np.float64)


def log_major(amount_minor: pa.Array, currency: pa.Array) -> np.ndarray:
    """log1p of the amount in major units: a currency-comparable scale (a feature, not money)."""
    idx = pc.index_in(currency, value_set=pa.array(_EXP_KEYS)).fill_null(
        _EXP_KEYS.index("USD")).to_numpy(zero_copy_only=False)
    amount = np.asarray(amount_minor.to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.log1p(np.maximum(amount, 0.0) / np.power(10.0, _EXP_VALUES[idx]))


def _codes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Integer codes of a string column (nulls get -1)."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    enc = pc.dictionary_encode(arr)
    return enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def window_stats(codes: np.ndarray, ts_us: np.ndarray, values: np.ndarray,
                 windows_us: tuple[int, ...]) -> dict:
    """Per row: counts and value sums of EARLIER rows of the same entity within each window.

    Rows are in time order; "earlier" means before in that order. Returns arrays in the input
    order: ``n_<w>``, ``sum_<w>`` per window and ``gap_us`` (-1 when no earlier row).
    """
    n = len(codes)
    order = np.lexsort((np.arange(n), codes))
    sc, st = codes[order], ts_us[order]
    rel = st - (st.min() if n else 0)
    span = int(rel.max() if n else 0) + max(windows_us) + 1
    if n and (int(sc.max()) + 1) * span >= 2**62:
        raise OverflowError("window_stats: time span too long for the composite key")
    key = sc * span + rel
    pos = np.arange(n)
    cs = np.concatenate([[0.0], np.cumsum(values[order])])
    out: dict[str, np.ndarray] = {}
    for w in windows_us:
        start = np.searchsorted(key, key - w, side="left")
        res_n, res_s = np.empty(n), np.empty(n)
        res_n[order] = pos - start
        res_s[order] = cs[pos] - cs[start]
        out[f"n_{w}"], out[f"sum_{w}"] = res_n, res_s
    gap = np.full(n, -1, dtype=np.int64)
    same = np.zeros(n, dtype=bool)
    same[1:] = sc[1:] == sc[:-1]
    gap_sorted = np.where(same, st - np.concatenate([[0], st[:-1]]), -1)
    gap[order] = gap_sorted
    out["gap_us"] = gap
    return out


def merchant_fraud_rate(merchants: pa.Array, ts_us: np.ndarray, label_merchants: pa.Array,
                        label_ts_us: np.ndarray, label_fraud: np.ndarray) -> np.ndarray:
    """Smoothed fraud rate per row from labels with ``label_ts <= ts`` of the same merchant."""
    n, m = len(ts_us), len(label_ts_us)
    codes = _codes(pa.concat_arrays([label_merchants.cast(pa.string()),
                                     merchants.cast(pa.string())]))
    t = np.concatenate([label_ts_us, ts_us])
    kind = np.concatenate([np.zeros(m, np.int8), np.ones(n, np.int8)])  # labels first on ties
    order = np.lexsort((kind, t, codes))
    is_label = (kind[order] == 0).astype(np.float64)
    fraud = np.concatenate([label_fraud.astype(np.float64), np.zeros(n)])[order]
    c_n, c_f = np.cumsum(is_label), np.cumsum(fraud)
    sc = codes[order]
    first = np.searchsorted(sc, sc, side="left")
    base_n = np.where(first > 0, c_n[first - 1], 0.0)
    base_f = np.where(first > 0, c_f[first - 1], 0.0)
    rate_sorted = (c_f - base_f + PRIOR_RATE * PRIOR_LABELS) / (c_n - base_n + PRIOR_LABELS)
    rate = np.empty(n + m)
    rate[order] = rate_sorted
    return rate[m:]


def compute_features(history: pa.Table, batch: pa.Table | pa.RecordBatch,
                     labels: tuple[pa.Array, np.ndarray, np.ndarray]) -> np.ndarray:
    """Feature matrix (rows x FEATURES, float32) of ``batch`` given earlier ``history`` rows."""
    if isinstance(batch, pa.RecordBatch):
        batch = pa.Table.from_batches([batch])
    k = history.num_rows
    cols = [c for c in HISTORY_COLUMNS]
    both = pa.concat_tables([history.select(cols).cast(batch.select(cols).schema),
                             batch.select(cols)])
    ts = both["ts"].combine_chunks().cast(pa.int64()).to_numpy()
    lam = log_major(both["amount_minor"].combine_chunks(), both["currency"].combine_chunks())
    card = window_stats(_codes(both["card_token"]), ts, lam,
                        (WINDOW_10M_US, WINDOW_1H_US, WINDOW_24H_US))
    cust = window_stats(_codes(both["customer_id"]), ts, lam, (WINDOW_24H_US,))
    pair = pc.binary_join_element_wise(both["customer_id"], both["device_hash"], "|")
    dev = window_stats(_codes(pair), ts, lam, (WINDOW_24H_US,))
    merch = window_stats(_codes(both["merchant_id"]), ts, lam, (WINDOW_1H_US,))
    s = slice(k, None)
    cust_n = cust[f"n_{WINDOW_24H_US}"][s]
    cust_mean = np.divide(cust[f"sum_{WINDOW_24H_US}"][s], cust_n, out=np.zeros_like(cust_n),
                          where=cust_n > 0)
    gap = card["gap_us"][s]
    has_dev = pc.is_valid(batch["device_hash"]).to_numpy(zero_copy_only=False)
    ch = pc.index_in(batch["channel"], value_set=pa.array(CHANNELS)).fill_null(-1)
    cross = pc.not_equal(batch["card_country"], batch["merchant_country"])
    lab_m, lab_ts, lab_f = labels
    mfr = merchant_fraud_rate(batch["merchant_id"].combine_chunks(), ts[s], lab_m, lab_ts, lab_f)
    mat = np.column_stack([
        lam[s], cross.to_numpy(zero_copy_only=False).astype(np.float64),
        ch.to_numpy(zero_copy_only=False).astype(np.float64),
        card[f"n_{WINDOW_10M_US}"][s], card[f"n_{WINDOW_1H_US}"][s], card[f"n_{WINDOW_24H_US}"][s],
        card[f"sum_{WINDOW_24H_US}"][s],
        np.where(gap >= 0, gap / US_PER_S, NO_PREVIOUS_S),
        np.where(cust_n > 0, lam[s] - cust_mean, 0.0),
        (has_dev & (dev[f"n_{WINDOW_24H_US}"][s] == 0)).astype(np.float64),
        merch[f"n_{WINDOW_1H_US}"][s], mfr,
    ])
    return mat.astype(np.float32)


def trim_history(history: pa.Table, now_us: int) -> pa.Table:
    """Keep only rows young enough to matter for any look-back window."""
    ts = history["ts"].cast(pa.int64())
    return history.filter(pc.greater_equal(ts, now_us - HISTORY_US))


# ---------------------------------------------------------------------------------------------
# The online path: the same features for one transaction, from per-entity state.
# ---------------------------------------------------------------------------------------------

class OnlineFeatures:
    """Per-entity rolling state for one decision at a time; same values as compute_features."""

    def __init__(self) -> None:
        self.card: dict[str, deque] = {}
        self.cust: dict[str, deque] = {}
        self.pair: dict[str, deque] = {}
        self.merch: dict[str, deque] = {}
        self.labels: dict[str, tuple[list[int], list[float]]] = {}

    def observe_label(self, merchant: str, label_ts_us: int, fraud: bool) -> None:
        """Record one label; it counts only for transactions at or after ``label_ts_us``."""
        times, cum = self.labels.setdefault(merchant, ([], []))
        i = bisect.bisect_right(times, label_ts_us)
        times.insert(i, label_ts_us)
        cum.insert(i, 1.0 if fraud else 0.0)

    def _fraud_rate(self, merchant: str, ts_us: int) -> float:
        times, flags = self.labels.get(merchant, ([], []))
        k = bisect.bisect_right(times, ts_us)
        return (sum(flags[:k]) + PRIOR_RATE * PRIOR_LABELS) / (k + PRIOR_LABELS)

    @staticmethod
    def _window(dq: deque | None, ts_us: int, w: int) -> tuple[int, float]:
        if not dq:
            return 0, 0.0
        n, s = 0, 0.0
        for t, v in reversed(dq):
            if t < ts_us - w:
                break
            n, s = n + 1, s + v
        return n, s

    def features(self, txn: dict) -> list[float]:
        """Features of ``txn`` from earlier events, then add ``txn`` to the state."""
        ts = int(txn["ts_us"])
        exp = CURRENCY_EXPONENTS.get(txn["currency"], 2)
        lam = math.log1p(max(int(txn["amount_minor"]), 0) / 10.0**exp)
        card_dq = self.card.get(txn["card_token"])
        c10, _ = self._window(card_dq, ts, WINDOW_10M_US)
        c1h, _ = self._window(card_dq, ts, WINDOW_1H_US)
        c24, s24 = self._window(card_dq, ts, WINDOW_24H_US)
        gap = (ts - card_dq[-1][0]) / US_PER_S if card_dq else NO_PREVIOUS_S
        cn, cs = self._window(self.cust.get(txn["customer_id"]), ts, WINDOW_24H_US)
        dev = txn.get("device_hash")
        pkey = f"{txn['customer_id']}|{dev}" if dev is not None else None
        pn, _ = self._window(self.pair.get(pkey), ts, WINDOW_24H_US) if pkey else (0, 0.0)
        mn, _ = self._window(self.merch.get(txn["merchant_id"]), ts, WINDOW_1H_US)
        ch = CHANNELS.index(txn["channel"]) if txn["channel"] in CHANNELS else -1
        row = [lam, float(txn["card_country"] != txn["merchant_country"]), float(ch),
               float(c10), float(c1h), float(c24), s24, gap,
               lam - cs / cn if cn else 0.0, float(dev is not None and pn == 0), float(mn),
               self._fraud_rate(txn["merchant_id"], ts)]
        for store, key in ((self.card, txn["card_token"]), (self.cust, txn["customer_id"]),
                           (self.pair, pkey), (self.merch, txn["merchant_id"])):
            if key is not None:
                dq = store.setdefault(key, deque())
                dq.append((ts, lam))
                while dq and dq[0][0] < ts - HISTORY_US:
                    dq.popleft()
        return row
