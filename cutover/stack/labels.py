"""Fraud labels as the stack may know them: a label counts at time ``t`` only if ``label_ts <= t``.

Chargebacks arrive days after the payment. A feature that used a label before its
``label_ts`` would look brilliant in replay and fail in production, so labels live here in two
parts: counts already in the past of every future decision (``base``), and labels still in the
future of the last decision (``pending``), which count row by row only from their ``label_ts``.
Counts are integers, so the batch path and the online path (``OnlineLabels``) agree exactly.
"""

from __future__ import annotations

import heapq
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Smoothing of the merchant fraud rate: a prior of PRIOR_RATE worth PRIOR_LABELS labels, so a
#: merchant with two labels, one of them fraud, does not read as 50 % fraud.
PRIOR_RATE: Final = 0.01
PRIOR_LABELS: Final = 20.0

_PENDING_SCHEMA: Final = pa.schema([("merch", pa.string()), ("label_ts", pa.int64()),
                                    ("fraud", pa.bool_())])


def fraud_rate(n_labels: np.ndarray | int, n_fraud: np.ndarray | int) -> np.ndarray | float:
    """The smoothed fraud rate from label counts (same formula on both paths)."""
    return (n_fraud + PRIOR_RATE * PRIOR_LABELS) / (n_labels + PRIOR_LABELS)


def _arrow(values: pa.Array | np.ndarray, type_: pa.DataType) -> pa.Array:
    """Arrow array of ``type_``; NaN in a numpy input (a null that went through numpy) is null."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    array = values if isinstance(values, pa.Array) else pa.array(values, from_pandas=True)
    return array.cast(type_)


def _valid_labels(merchants: pa.Array, label_ts_us: pa.Array | np.ndarray,
                  fraud: pa.Array | np.ndarray) -> pa.Table:
    """Labels as a table; rows without a label time or a fraud flag are not labels yet."""
    table = pa.table({"merch": _arrow(merchants, pa.string()),
                      "label_ts": _arrow(label_ts_us, pa.int64()),
                      "fraud": _arrow(fraud, pa.bool_())}, schema=_PENDING_SCHEMA)
    ok = pc.and_(pc.is_valid(table["label_ts"]), pc.is_valid(table["fraud"]))
    return table.filter(ok)


class LabelBook:
    """Merchant label counts for the batch path, folded forward as decisions move in time.

    Pending labels are kept as chunks sorted by ``label_ts`` (one per ``add``), so the labels
    due by a time are a prefix of each chunk: no full scan of months of pending labels per
    batch. Chunks are merged when there are more than ``CHUNKS_MAX``.
    """

    CHUNKS_MAX: Final = 32

    def __init__(self) -> None:
        self.base: dict[str, list[int]] = {}  # merchant -> [labels, frauds], all in the past
        self.chunks: list[tuple[np.ndarray, pa.Table]] = []  # (sorted label_ts, labels)
        self.now_us: int | None = None

    @property
    def pending_rows(self) -> int:
        return sum(len(ts) for ts, _ in self.chunks)

    def add(self, merchants: pa.Array, label_ts_us: pa.Array | np.ndarray,
            fraud: pa.Array | np.ndarray) -> None:
        """Remember labels (nulls in ``label_ts_us``/``fraud`` mean "not labelled": skipped)."""
        table = _valid_labels(merchants, label_ts_us, fraud)
        if table.num_rows == 0:
            return
        self.chunks.append(_sorted_chunk(table))
        if len(self.chunks) > self.CHUNKS_MAX:
            self.chunks = [_sorted_chunk(pa.concat_tables([t for _, t in self.chunks]))]
        if self.now_us is not None:
            self.advance(self.now_us)

    def _due(self, until_us: int) -> tuple[pa.Table, list[int]]:
        """Pending labels with ``label_ts <= until_us`` and, per chunk, how many they are."""
        cuts = [int(np.searchsorted(ts, until_us, side="right")) for ts, _ in self.chunks]
        parts = [t.slice(0, k) for (_, t), k in zip(self.chunks, cuts, strict=True) if k]
        due = pa.concat_tables(parts) if parts else _PENDING_SCHEMA.empty_table()
        return due, cuts

    def advance(self, now_us: int) -> None:
        """Fold every label with ``label_ts <= now_us`` into the base counts."""
        self.now_us = now_us if self.now_us is None else max(self.now_us, now_us)
        folded, cuts = self._due(self.now_us)
        if folded.num_rows == 0:
            return
        self.chunks = [(ts[k:], t.slice(k)) for (ts, t), k in zip(self.chunks, cuts, strict=True)
                       if k < len(ts)]
        grouped = folded.group_by("merch").aggregate([("fraud", "count"), ("fraud", "sum")])
        for m, n, f in zip(grouped["merch"].to_pylist(), grouped["fraud_count"].to_pylist(),
                           grouped["fraud_sum"].to_pylist(), strict=True):
            counts = self.base.setdefault(m, [0, 0])
            counts[0] += int(n)
            counts[1] += int(f or 0)

    def counts(self, merchants: pa.Array, ts_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row: (labels, frauds) of its merchant with ``label_ts <= ts`` (ts sorted)."""
        n = len(ts_us)
        enc = pc.dictionary_encode(merchants.cast(pa.string()))
        uniq = enc.dictionary.to_pylist()
        idx = enc.indices.to_numpy(zero_copy_only=False)
        base = np.array([self.base.get(m, (0, 0)) for m in uniq], dtype=np.int64).reshape(-1, 2)
        n_lab, n_fraud = base[idx, 0].copy(), base[idx, 1].copy()
        if n == 0 or not self.chunks:
            return n_lab, n_fraud
        due, _ = self._due(int(ts_us[-1]))
        if due.num_rows:
            d_lab, d_fraud = _due_counts(enc.dictionary, idx, ts_us, due)
            n_lab += d_lab
            n_fraud += d_fraud
        return n_lab, n_fraud


def _sorted_chunk(table: pa.Table) -> tuple[np.ndarray, pa.Table]:
    table = table.sort_by("label_ts").combine_chunks()
    return table["label_ts"].to_numpy(), table


def _due_counts(uniq: pa.Array, idx: np.ndarray, ts_us: np.ndarray,
                due: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Counts of ``due`` labels with ``label_ts <= ts`` per row, by one sort over both sets."""
    n = len(ts_us)
    lab_idx = pc.index_in(due["merch"], value_set=uniq).fill_null(-1).to_numpy(zero_copy_only=False)
    mine = lab_idx >= 0
    lab_idx = lab_idx[mine]
    lab_ts = due["label_ts"].to_numpy()[mine]
    lab_f = due["fraud"].to_numpy(zero_copy_only=False)[mine].astype(np.int64)
    m = len(lab_ts)
    codes = np.concatenate([lab_idx, idx])
    t = np.concatenate([lab_ts, ts_us])
    kind = np.concatenate([np.zeros(m, np.int8), np.ones(n, np.int8)])  # labels first on ties
    order = np.lexsort((kind, t, codes))
    c_n = np.cumsum(kind[order] == 0)
    c_f = np.cumsum(np.concatenate([lab_f, np.zeros(n, np.int64)])[order])
    sc = codes[order]
    first = np.searchsorted(sc, sc, side="left")
    base_n = np.where(first > 0, c_n[first - 1], 0)
    base_f = np.where(first > 0, c_f[first - 1], 0)
    res_n, res_f = np.empty(n + m, np.int64), np.empty(n + m, np.int64)
    res_n[order] = c_n - base_n
    res_f[order] = c_f - base_f
    return res_n[m:], res_f[m:]


class OnlineLabels:
    """The online twin of ``LabelBook``: base counts and a heap of labels still to come."""

    def __init__(self) -> None:
        self.base: dict[str, list[int]] = {}
        self._pending: list[tuple[int, str, bool]] = []

    def add(self, merchant: str, label_ts_us: int, fraud: bool) -> None:
        """Remember one label."""
        heapq.heappush(self._pending, (int(label_ts_us), str(merchant), bool(fraud)))

    def rate(self, merchant: str, ts_us: int) -> float:
        """Fold labels up to ``ts_us``, then the merchant's smoothed fraud rate."""
        pending = self._pending
        while pending and pending[0][0] <= ts_us:
            _, m, fraud = heapq.heappop(pending)
            counts = self.base.setdefault(m, [0, 0])
            counts[0] += 1
            counts[1] += int(fraud)
        n_lab, n_fraud = self.base.get(merchant, (0, 0))
        return float(fraud_rate(n_lab, n_fraud))
