"""Drift of the replay window against a reference window: PSI, new category values, null spikes.

The reference is the candidate's training window when run.json names one (from the model
card), else the store's rows in the ``REFERENCE_DAYS`` before ``--since``, else the first
quarter of the replay window itself (compared with the rest). The choice is made before the
replay starts (``plan_drift``), so the replayed rows are folded in flight (``DriftState``) and
the reference can be scanned on another thread. Everything is accumulated from
fixed-bin histograms and value counts over Arrow batches, so memory does not grow with rows.
Per-merchant amount PSI is kept too: one merchant's feed changing units is a small share of
all traffic, and would hide in the overall figure.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from cutover.domain import TRAFFIC, TS
from cutover.shadow.feed_profile import COLUMNS as FEED_COLUMNS
from cutover.shadow.feed_profile import Coder, Profile
from cutover.store.stream import file_groups

REFERENCE_DAYS: Final = 28
HEAD_SHARE: Final = 0.25
#: log10(amount_minor) from 0 to 12 in fine bins; coarse PSI bins are built from these.
AMOUNT_EDGES: Final = np.linspace(0.0, 12.0, 241)
PSI_BINS: Final = 10
PSI_EPS: Final = 1e-4
PSI_WATCH: Final = 0.10
PSI_DRIFT: Final = 0.25
CATEGORICAL: Final = ("channel", "merchant_country", "currency", "mcc", "card_country")
NULLABLE: Final = ("device_hash", "ip_hash")
NULL_SPIKE_MIN: Final = 0.05
MERCHANT_MIN_ROWS: Final = 200
MERCHANTS_SHOWN: Final = 5
NEW_VALUES_MAX: Final = 50
COLUMNS: Final = tuple(dict.fromkeys(("ts", "merchant_id", "amount_minor", *CATEGORICAL,
                                       *NULLABLE, *FEED_COLUMNS)))


class Window:
    """Histograms and counts of one window's rows."""

    def __init__(self, coder: Coder | None = None) -> None:
        self.rows = 0
        #: The feed-health profile of the same rows (``feed_profile``), when a coder is given.
        self.feed = Profile(coder) if coder is not None else None
        self.amount = np.zeros(len(AMOUNT_EDGES) - 1, np.int64)
        self.values: dict[str, Counter[str]] = {c: Counter() for c in CATEGORICAL}
        self.nulls: Counter[str] = Counter()
        self.merchant_index: dict[str, int] = {}
        self.merchant_amount = np.zeros((0, len(AMOUNT_EDGES) - 1), np.int64)

    @property
    def by_merchant(self) -> dict[str, np.ndarray]:
        """Amount histogram per merchant."""
        return {m: self.merchant_amount[i] for m, i in self.merchant_index.items()}

    def add(self, table: pa.Table, quarantined: np.ndarray | None = None) -> None:
        """Fold one batch of traffic rows in (``quarantined``: the rows replay refused)."""
        if table.num_rows == 0:
            return
        if self.feed is not None:
            self.feed.add(table, quarantined)
        self.rows += table.num_rows
        bins = _amount_bins(table["amount_minor"])
        self.amount += np.bincount(bins, minlength=len(self.amount))
        for column in CATEGORICAL:
            counts = pc.value_counts(pc.fill_null(table[column], "<null>"))
            for value, count in zip(counts.field("values").to_pylist(),
                                    counts.field("counts").to_pylist(), strict=True):
                self.values[column][value] += count
        for column in NULLABLE:
            self.nulls[column] += table[column].null_count
        self._add_merchants(table, bins)

    def _add_merchants(self, table: pa.Table, bins: np.ndarray) -> None:
        encoded = pc.dictionary_encode(pc.fill_null(table["merchant_id"], "<null>"))
        encoded = encoded.combine_chunks() if isinstance(encoded, pa.ChunkedArray) else encoded
        names = encoded.dictionary.to_pylist()
        for name in names:
            if name not in self.merchant_index:
                self.merchant_index[name] = len(self.merchant_index)
        grow = len(self.merchant_index) - len(self.merchant_amount)
        if grow > 0:
            self.merchant_amount = np.vstack(
                [self.merchant_amount, np.zeros((grow, self.amount.size), np.int64)])
        local = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        width = self.amount.size
        flat = np.bincount(local * width + bins, minlength=len(names) * width)
        rows = np.array([self.merchant_index[n] for n in names], np.int64)
        self.merchant_amount[rows] += flat.reshape(len(names), width)


def _amount_bins(amount: pa.ChunkedArray | pa.Array) -> np.ndarray:
    values = pc.fill_null(amount, 1).to_numpy(zero_copy_only=False).astype(np.float64)
    logs = np.log10(np.maximum(values, 1.0))
    return np.clip(np.searchsorted(AMOUNT_EDGES, logs, side="right") - 1, 0, len(AMOUNT_EDGES) - 2)


def psi_from_counts(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    ref_total, cur_total = reference.sum(), current.sum()
    if ref_total == 0 or cur_total == 0:
        return 0.0
    p = np.maximum(reference / ref_total, PSI_EPS)
    q = np.maximum(current / cur_total, PSI_EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def psi_numeric(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """PSI over about ``bins`` bins of equal reference mass, merged from fine histograms."""
    total = reference.sum()
    if total == 0:
        return 0.0
    cut = np.searchsorted(np.cumsum(reference), np.arange(1, bins) * total / bins, side="left")
    edges = np.unique(np.concatenate([[0], cut + 1, [len(reference)]]))
    return psi_from_counts(np.add.reduceat(reference, edges[:-1]),
                           np.add.reduceat(current, edges[:-1]))


def psi_categorical(reference: Counter[str], current: Counter[str]) -> float:
    """PSI over the union of categories."""
    keys = sorted(set(reference) | set(current))
    return psi_from_counts(np.array([reference[k] for k in keys], np.float64),
                           np.array([current[k] for k in keys], np.float64))


def _status(psi: float) -> str:
    return "drift" if psi >= PSI_DRIFT else "watch" if psi >= PSI_WATCH else "ok"


def compare(reference: Window, replay: Window) -> dict[str, Any]:
    """The drift section of report.json from two windows."""
    # Hour of day is left out on purpose: windows of different lengths or a head-of-window
    # reference differ in hours by construction, which would read as drift.
    features = [{"name": "amount_minor", "psi": psi_numeric(reference.amount, replay.amount)}]
    features += [{"name": c, "psi": psi_categorical(reference.values[c], replay.values[c])}
                 for c in CATEGORICAL]
    for f in features:
        f["psi"] = round(f["psi"], 6)
        f["status"] = _status(f["psi"])
    new_values = {c: sorted(set(replay.values[c]) - set(reference.values[c]))[:NEW_VALUES_MAX]
                  for c in CATEGORICAL}
    return {"features": features, "new_values": {c: v for c, v in new_values.items() if v},
            "null_spikes": _null_spikes(reference, replay), "segments": _merchants(reference, replay),
            "rows": {"reference": reference.rows, "replay": replay.rows}}


def _null_spikes(reference: Window, replay: Window) -> list[dict[str, Any]]:
    spikes = []
    for column in NULLABLE:
        ref_rate = reference.nulls[column] / reference.rows if reference.rows else 0.0
        rate = replay.nulls[column] / replay.rows if replay.rows else 0.0
        if rate - ref_rate >= NULL_SPIKE_MIN and rate >= 2 * ref_rate:
            spikes.append({"column": column, "train_null_rate": round(ref_rate, 6),
                           "replay_null_rate": round(rate, 6)})
    return spikes


def _merchants(reference: Window, replay: Window) -> list[dict[str, Any]]:
    rows = []
    references = reference.by_merchant
    for merchant, counts in replay.by_merchant.items():
        ref = references.get(merchant)
        if ref is None or ref.sum() < MERCHANT_MIN_ROWS or counts.sum() < MERCHANT_MIN_ROWS:
            continue
        psi = round(psi_numeric(ref, counts), 6)
        rows.append({"dimension": "merchant_id", "value": merchant, "feature": "amount_minor",
                     "psi": psi, "status": _status(psi), "n": int(counts.sum())})
    rows.sort(key=lambda r: (-r["psi"], r["value"]))
    return rows[:MERCHANTS_SHOWN]


_FORMAT: Final = ds.ParquetFileFormat(
    default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False))
SCAN_ROWS: Final = 262_144


def _scan(files: list[Path], expr: ds.Expression | None, sink: Any) -> None:
    """Feed ``sink`` the filtered rows of ``files`` in tables of about SCAN_ROWS rows (small
    day files make small batches; folding each alone would cost more than reading them)."""
    if not files:
        return
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    # Scanned a group of files at a time: a dataset scanner reads ahead without bound.
    for group in file_groups(files):
        dataset = ds.dataset([str(f) for f in group], schema=TRAFFIC, format=_FORMAT)
        for batch in dataset.to_batches(columns=list(COLUMNS), filter=expr, use_threads=True,
                                        fragment_readahead=8):
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= SCAN_ROWS:
                sink(pa.Table.from_batches(pending))
                pending, pending_rows = [], 0
    if pending_rows:
        sink(pa.Table.from_batches(pending))


def _between(start: datetime | None, end: datetime | None) -> ds.Expression | None:
    expr = None
    if start is not None:
        expr = ds.field("ts") >= pa.scalar(start, TS)
    if end is not None:
        upper = ds.field("ts") < pa.scalar(end, TS)
        expr = upper if expr is None else expr & upper
    return expr


def store_ts_bounds(files: list[Path]) -> tuple[datetime, datetime] | None:
    """The store's first and last ``ts`` from the Parquet footers' statistics (no data read)."""
    low = high = None
    for path in files:
        meta = pq.ParquetFile(path).metadata
        column = meta.schema.names.index("ts") if "ts" in meta.schema.names else None
        if column is None:
            continue
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(column).statistics
            if stats is None or not stats.has_min_max:
                return None
            low = stats.min if low is None else min(low, stats.min)
            high = stats.max if high is None else max(high, stats.max)
    if low is None or high is None:
        return None
    return _aware(low), _aware(high)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(frozen=True)
class DriftPlan:
    """Which rows are the reference: a scanned window, or the head of the replay itself."""

    kind: str
    ref_from: datetime
    ref_until: datetime
    files: tuple[Path, ...] = ()
    #: For ``replay_window_head``: replayed rows with ts before this are the reference.
    split: datetime | None = None
    #: Value codes shared by the reference and the replay feed profiles.
    coder: Coder = field(default_factory=Coder, compare=False)


def plan_drift(store_files: list[Path], since: datetime | None, until: datetime | None,
               training: tuple[list[Path], datetime, datetime] | None) -> DriftPlan:
    """Decide the reference before the replay starts, so its stats can be folded in flight."""
    if training is not None:
        files, t_from, t_until = training
        return DriftPlan("training_window", t_from, t_until, tuple(files))
    bounds = store_ts_bounds(store_files)
    start = since or (bounds[0] if bounds else None)
    end = until or (bounds[1] if bounds else None)
    if since is not None and bounds is not None and bounds[0] < since:
        return DriftPlan("before_replay_window", since - timedelta(days=REFERENCE_DAYS), since,
                         tuple(store_files))
    if start is None or end is None:
        now = datetime.now(UTC)
        return DriftPlan("none", now, now)
    split = start + (end - start) * HEAD_SHARE
    return DriftPlan("replay_window_head", start, split, split=split)


def scan_reference(plan: DriftPlan) -> Window:
    """The reference window's stats (empty for the head kind: those come from the replay)."""
    window = Window(plan.coder)
    if plan.files:
        _scan(list(plan.files), _between(plan.ref_from, plan.ref_until + timedelta(
            microseconds=1) if plan.kind == "training_window" else plan.ref_until), window.add)
    return window


class DriftState:
    """The replayed rows' stats, folded batch by batch while the replay runs."""

    def __init__(self, plan: DriftPlan) -> None:
        self.plan = plan
        self.head = Window(plan.coder)
        self.replay = Window(plan.coder)

    def add(self, traffic: pa.Table, quarantined: np.ndarray | None = None) -> None:
        """Fold a batch of replayed TRAFFIC rows (``quarantined``: the rows replay refused)."""
        table = traffic.select(list(COLUMNS))
        if self.plan.split is None:
            self.replay.add(table, quarantined)
            return
        before = pc.fill_null(pc.less(table["ts"], pa.scalar(self.plan.split, TS)), False)
        mask = np.asarray(before.to_numpy(zero_copy_only=False), bool)
        part = (None, None) if quarantined is None else (quarantined[mask], quarantined[~mask])
        self.head.add(table.filter(before), part[0])
        self.replay.add(table.filter(pc.invert(before)), part[1])

    def finish(self, reference: Window | None) -> dict[str, Any]:
        """The drift section, given the scanned reference (ignored for the head kind)."""
        if self.plan.kind == "none":
            return {"features": [], "new_values": {}, "null_spikes": [],
                    "note": "the replay window could not be placed in time; drift not computed"}
        ref = self.head if self.plan.split is not None else (reference or Window())
        out = compare(ref, self.replay)
        out["reference"] = {"kind": self.plan.kind, "from": self.plan.ref_from.isoformat(),
                            "until": self.plan.ref_until.isoformat()}
        return out
