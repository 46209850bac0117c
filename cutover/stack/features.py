"""Look-back features of the reference stack, computed in bulk over time-sorted Arrow data.

Replay and training compute features per batch here (per entity: stable sort, cumulative sums,
``np.searchsorted`` on timestamps); one online decision computes the same values from
``cutover.stack.online.OnlineFeatures``. A test compares both on every row of a sample, so the
two paths share every constant and the exact arithmetic below:

- log amounts are held as integer micro-units (``log_amount_q``), so window sums are exact
  integer sums whatever the order of additions or the batch boundaries;
- a look-back uses earlier rows only (in store order: ``ts`` then ``txn_id``), inclusive of a
  row exactly one window old, and never more than ``HISTORY_US`` (7 days) back;
- a label counts for a transaction at ``t`` only once ``label_ts <= t`` (``cutover.stack.labels``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.domain import CHANNELS, CURRENCY_EXPONENTS
from cutover.errors import InputError
from cutover.stack.labels import LabelBook, fraud_rate

US_PER_S: Final = 1_000_000
WINDOW_10M_US: Final = 600 * US_PER_S
WINDOW_1H_US: Final = 3_600 * US_PER_S
WINDOW_24H_US: Final = 86_400 * US_PER_S
WINDOW_7D_US: Final = 7 * WINDOW_24H_US
#: The longest look-back; state older than this is dropped, which bounds memory (7 days of
#: rows: at the simulated 5,000 rows a day, 35,000 rows of two int64 and six int32 columns).
HISTORY_US: Final = WINDOW_7D_US
#: Time since a card's previous payment reads at most this (also when there was none), so a
#: card idle for two days and one never seen look alike: what matters is "not recently".
GAP_CAP_US: Final = WINDOW_24H_US
#: Distinct merchants / countries of a card count over at most this many of its latest earlier
#: payments in 24 h: bounded work per row on both paths, and a card-testing burst saturates it.
DISTINCT_LAST_N: Final = 16
#: Log amounts in integer units of 1e-6, so sums over windows are exact.
LOG_SCALE: Final = 1_000_000
#: The exponent assumed for a currency cutover does not know (features only, never money).
DEFAULT_EXPONENT: Final = 2

FEATURES: Final = (
    "log_amount", "cross_border", "channel_code",
    "card_n_10m", "card_n_1h", "card_n_24h", "card_logsum_24h", "card_secs_since_prev",
    "card_merchants_24h", "card_countries_24h",
    "cust_n_24h", "cust_amount_dev", "cust_new_device", "merchant_n_1h", "merchant_fraud_rate",
    "mcc_code",
    # Longer and wider look-backs: a card or customer against its own week, a device shared by
    # many cards (one fraudster, many stolen cards), a merchant's money flow, not just count.
    "card_n_7d", "card_logsum_7d", "cust_n_7d", "cust_logsum_7d",
    "device_n_24h", "device_logsum_24h", "merchant_logsum_1h", "merchant_logsum_24h",
)
CARD_N_1H: Final = FEATURES.index("card_n_1h")
#: Columns of a transaction the stack reads (a subset of TRAFFIC without legacy or labels);
#: a batch without one of them is refused with its name.
INPUT_COLUMNS: Final = ("txn_id", "ts", "merchant_id", "mcc", "customer_id", "card_token",
                        "card_bin", "card_country", "amount_minor", "currency",
                        "merchant_country", "channel", "device_hash")
#: The feature value of an MCC that is missing or not a 4-digit code.
MCC_UNKNOWN: Final = -1
#: Columns of earlier transactions kept between batches (``lam_q`` is the log amount). Entity
#: columns hold int32 codes of a ``KeyCodes`` mapping (-1: null, no entity), not the strings:
#: hashing 7 days of strings again for every batch made a batch's cost grow with the history.
HISTORY_SCHEMA: Final = pa.schema([("ts", pa.int64()), ("card", pa.int32()), ("cust", pa.int32()),
                                   ("pair", pa.int32()), ("merch", pa.int32()),
                                   ("mcountry", pa.int32()), ("dev", pa.int32()),
                                   ("lam_q", pa.int64())])
#: History column -> the batch column whose strings it codes (``pair`` is built per batch).
KEY_COLUMNS: Final = {"card": "card_token", "cust": "customer_id", "pair": "pair",
                      "merch": "merchant_id", "mcountry": "merchant_country", "dev": "device_hash"}
#: A code mapping is rebuilt from the codes still in history once it holds more than this many
#: times the entities it held live at its last rebuild: entities seen once and aged out would
#: otherwise grow it without bound. Each rebuild costs one pass over the history and follows at
#: least (factor - 1) x live new entities, so its cost per row stays constant.
MAPPING_REBUILD_FACTOR: Final = 4
#: Below this many entries a mapping is never rebuilt (small streams skip the pass altogether).
MAPPING_MIN_ENTRIES: Final = 1 << 16

_EXP_KEYS: Final = list(CURRENCY_EXPONENTS)
_EXP_VALUES: Final = np.array([CURRENCY_EXPONENTS[c] for c in _EXP_KEYS] + [DEFAULT_EXPONENT],
                              dtype=np.float64)


def log_amount_q(amount_minor: int, currency: str) -> int:
    """One row's log1p(major units) as integer micro-units; the scalar twin of ``_log_q``."""
    exp = CURRENCY_EXPONENTS.get(currency, DEFAULT_EXPONENT)
    return round(math.log1p(max(int(amount_minor), 0) / 10.0**exp) * LOG_SCALE)


def _log_q(amount_minor: pa.Array, currency: pa.Array) -> np.ndarray:
    idx = pc.index_in(currency, value_set=pa.array(_EXP_KEYS)).fill_null(len(_EXP_KEYS))
    exp = _EXP_VALUES[idx.to_numpy(zero_copy_only=False)]
    amount = np.asarray(amount_minor.to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.rint(np.log1p(np.maximum(amount, 0.0) / np.power(10.0, exp)) * LOG_SCALE).astype(np.int64)


def mcc_code(mcc: str | None) -> int:
    """The merchant category code as its number (the scalar twin of ``_mcc_codes``).

    The number, not an arbitrary category index: MCCs are grouped in ranges (5xxx retail,
    7xxx services), so trees can split on them, and the value cannot depend on which MCCs a
    batch happens to contain. Measured on the demo (100k training rows): test PR-AUC 0.56 ->
    0.67 with it, as fraud concentrates in resellable goods and digital merchants.
    """
    if isinstance(mcc, str) and len(mcc) == 4 and mcc.isascii() and mcc.isdigit():
        return int(mcc)
    return MCC_UNKNOWN


def _mcc_codes(mcc: pa.Array) -> np.ndarray:
    mcc = mcc.cast(pa.string())
    valid = pc.fill_null(pc.and_(pc.equal(pc.utf8_length(mcc), 4),
                                 pc.and_(pc.string_is_ascii(mcc), pc.utf8_is_digit(mcc))), False)
    digits = pc.if_else(valid, mcc, pa.scalar("-1"))
    return pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False)


class KeyCodes:
    """A persistent string -> integer code mapping of one history column (null -> -1).

    Codes are dense and in insertion order: ``keys`` (Arrow string chunks) holds code -> key.
    A batch's keys are looked up one of two ways, whichever is cheaper for the sizes at hand
    (measured here: Arrow hashes about 10x faster per key than a Python dict probes one, so at
    the replay's 65k-row batches over a stable population of ~50k cards the dict path alone
    cost ~5 ms per column):

    - while the mapping holds at most ``ARROW_LOOKUP_RATIO`` x the batch's rows: ``index_in``
      of the rows against all keys, in C, O(mapping + batch), no Python per key; only the rows
      not found are hashed again to code the new keys;
    - beyond that (a dense week of traffic, millions of keys): the batch's distinct keys by one
      C hash pass (``dictionary_encode``), each probed in a Python dict, O(batch distinct
      keys) at ~200 ns each, whatever the mapping's size. Building it costs about ten Arrow
      passes, so it is built only after ``DICT_AFTER`` batches in a row found the mapping that
      large (one small batch, a stream's last or a drill-down's single row, does not pay for
      it); from then on it is kept up to date until a rebuild drops it.
    """

    #: Arrow lookup while len(mapping) <= this x the batch's rows (a batch's distinct keys are
    #: about half its rows in replay, so this is the 8x distinct keys measured before).
    ARROW_LOOKUP_RATIO: Final = 4
    #: Consecutive batches beyond that ratio before the dict is built.
    DICT_AFTER: Final = 4

    def __init__(self, min_entries: int = MAPPING_MIN_ENTRIES) -> None:
        self.min_entries = min_entries
        self.limit = min_entries
        self.size = 0
        self.chunks: list[pa.Array] = []
        self.index: dict[str, int] | None = None  # built when the dict path is first taken
        self.strain = 0  # consecutive batches for which the Arrow lookup was the costlier

    def __len__(self) -> int:
        return self.size

    def keys(self) -> pa.Array:
        """Every key, at its code's position (one chunk from then on)."""
        if len(self.chunks) != 1:
            self.chunks = [pa.concat_arrays(self.chunks) if self.chunks else pa.array([], pa.string())]
        return self.chunks[0]

    def encode(self, values: pa.Array) -> np.ndarray:
        if pa.types.is_null(values.type):  # an all-null column of no type: no entities
            return np.full(len(values), -1, np.int64)
        if values.type != pa.string():
            values = values.cast(pa.string())
        if self.index is None:
            self.strain = self.strain + 1 if self.size > self.ARROW_LOOKUP_RATIO * len(values) else 0
        if self.index is None and self.strain <= self.DICT_AFTER:
            return self._encode_arrow(values)
        enc = pc.dictionary_encode(values)
        uniq = enc.dictionary
        # One slot more for nulls: their index is filled with -1, which reads the last slot.
        lut = np.empty(len(uniq) + 1, np.int64)
        lut[-1] = -1
        index = self._index()
        # A key not yet in the dict gets the next code: its default is the dict's length.
        lut[:-1] = np.fromiter(map(index.__getitem__, uniq.to_pylist()), np.int64, len(uniq))
        new = lut[:-1] >= self.size
        if new.any():
            self._add(uniq.filter(pa.array(new)))
        return lut[enc.indices.fill_null(-1).to_numpy(zero_copy_only=False)]

    def _encode_arrow(self, values: pa.Array) -> np.ndarray:
        """Look every row up among the known keys in one C pass, then code only the rows not
        found. Hashing the batch's distinct keys first (``dictionary_encode``) cost a third
        more: most keys of a batch are known, so the second pass over them found nothing new.
        New keys take the next codes in order of first appearance, as in the dict path.
        """
        found = pc.index_in(values, value_set=self.keys())
        codes = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        unknown = found.is_null().to_numpy(zero_copy_only=False)
        if values.null_count:
            unknown &= values.is_valid().to_numpy(zero_copy_only=False)
        missing = np.flatnonzero(unknown)
        if len(missing):
            enc = pc.dictionary_encode(values.take(pa.array(missing)))
            codes[missing] = self.size + enc.indices.to_numpy(zero_copy_only=False)
            self._add(enc.dictionary)
        return codes

    def _add(self, new_keys: pa.Array) -> None:
        self.chunks.append(new_keys)
        self.size += len(new_keys)
        if self.size >= 2**31:  # the history stores codes as int32
            raise OverflowError("KeyCodes: more than 2**31 distinct keys")

    def _index(self) -> dict[str, int]:
        if self.index is None:
            index: defaultdict[str, int] = defaultdict()
            index.update(zip(self.keys().to_pylist(), range(self.size), strict=True))
            index.default_factory = index.__len__
            self.index = index
        return self.index

    def due(self) -> bool:
        return self.size > self.limit

    def rebuild(self, live: np.ndarray) -> np.ndarray:
        """Keep only the keys whose codes occur in ``live``; return ``live`` recoded.

        A mark array instead of ``np.unique``: no sort, one pass over the history column. Old
        codes keep their order, so codes stay dense and in insertion order. The dict, if any,
        is dropped and rebuilt only if the dict path is needed again.
        """
        mark = np.zeros(self.size + 1, bool)
        mark[live + 1] = True  # +1: a null (-1) marks slot 0, which is not a key
        kept = np.flatnonzero(mark[1:])
        remap = np.full(self.size + 1, -1, np.int64)
        remap[kept + 1] = np.arange(len(kept), dtype=np.int64)
        self.chunks = [self.keys().take(pa.array(kept))]
        self.size = len(kept)
        self.index, self.strain = None, 0
        self.limit = max(MAPPING_REBUILD_FACTOR * len(kept), self.min_entries)
        return remap[live + 1]


def window_stats(codes: np.ndarray, ts_us: np.ndarray, values: np.ndarray,
                 windows_us: tuple[int, ...],
                 distinct: tuple[np.ndarray, ...] = (),
                 first_query: int = 0) -> dict[str, np.ndarray]:
    """Per row: count and integer value sum of EARLIER rows of the same entity in each window.

    Rows must be in time order; "earlier" is input order, and a row exactly ``w`` old counts.
    Returns, in input order, ``n_<w>`` and ``sum_<w>`` per window and ``gap_us``: the time
    since the entity's previous row, ``GAP_CAP_US`` when there is none, capped at
    ``GAP_CAP_US`` so the value cannot depend on how much history a batch carried.
    For each array in ``distinct`` (codes of another column), ``distinct_<k>`` counts the
    distinct values among the entity's last ``DISTINCT_LAST_N`` earlier rows in 24 h.
    Only rows from ``first_query`` on are computed and returned; the rows before it count as
    earlier rows only. The batch path puts the history there: its own results would be thrown
    away, and the searches per row are most of the cost once an entity has a dense week.
    """
    n = len(codes)
    m = max(n - first_query, 0)
    out: dict[str, np.ndarray] = {}
    if m == 0:
        for w in windows_us:
            out[f"n_{w}"], out[f"sum_{w}"] = np.zeros(0, np.int64), np.zeros(0, np.int64)
        out["gap_us"] = np.zeros(0, np.int64)
        for k in range(len(distinct)):
            out[f"distinct_{k}"] = np.zeros(0, np.int64)
        return out
    low = int(codes.min())
    if int(codes.max()) - low < 2**16:
        # The same stable order, but numpy radix-sorts 16-bit keys (8x faster than a merge
        # sort of int64 here); the batch path's codes are below the batch size.
        order = np.argsort((codes - low).astype(np.uint16), kind="stable")
    else:
        order = np.argsort(codes, kind="stable")
    sc, st = codes[order], ts_us[order]
    rel = st - st.min()
    span = int(rel.max()) + max(windows_us) + 1
    if (int(sc.max()) + 2) * span >= 2**62:
        raise OverflowError("window_stats: time span too long for the composite key")
    key = (sc + 1) * span + rel
    # Sorted positions of the rows asked for, and where each goes in the output.
    qpos = np.flatnonzero(order >= first_query)
    dest = order[qpos] - first_query
    qkey = key[qpos]
    cs = np.concatenate([[0], np.cumsum(values[order])])
    for w in windows_us:
        start = np.searchsorted(key, qkey - w, side="left")
        res_n, res_s = np.empty(m, np.int64), np.empty(m, np.int64)
        res_n[dest] = qpos - start
        res_s[dest] = cs[qpos] - cs[start]
        out[f"n_{w}"], out[f"sum_{w}"] = res_n, res_s
    prev = np.maximum(qpos - 1, 0)
    same = (qpos > 0) & (sc[prev] == sc[qpos])
    gap = np.empty(m, np.int64)
    gap[dest] = np.where(same, np.minimum(st[qpos] - st[prev], GAP_CAP_US), GAP_CAP_US)
    out["gap_us"] = gap
    if distinct:
        lo = np.maximum(np.searchsorted(key, qkey - WINDOW_24H_US, side="left"),
                        qpos - DISTINCT_LAST_N)
        for k, other in enumerate(distinct):
            res = np.empty(m, np.int64)
            res[dest] = _distinct_recent(sc, other[order], qpos, lo)
            out[f"distinct_{k}"] = res
    return out


def _distinct_recent(sc: np.ndarray, so: np.ndarray, qpos: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Per sorted row i in ``qpos``: distinct ``so`` values among rows [lo_i, i) (same entity).

    A value counts once: at its last occurrence before i, i.e. the rows j whose next row with
    the same (entity, value) is at i or later. Next rows are found among the rows of some
    [lo_i, i] only: if j's true next row is before i it lies in (j, i) and so among them, and
    otherwise the next one found is at i or later too, so the count is the same. One vectorised
    pass per lag, over only the rows that still have that many candidates (most cards have one
    or two), at most DISTINCT_LAST_N passes.
    """
    n = len(sc)
    # Rows covered by some [lo_i, i]: +1 where a range opens, -1 after it closes.
    edge = np.bincount(lo, minlength=n + 1) - np.bincount(qpos + 1, minlength=n + 1)
    rows = np.flatnonzero(np.cumsum(edge[:n]) > 0)
    r_so = so[rows]
    pair = sc[rows] * (int(r_so.max()) + 2) + (r_so + 1)  # codes >= -1; both < 2**31
    by_pair = np.argsort(pair, kind="stable")
    nxt = np.full(n, n, dtype=np.int64)
    same = pair[by_pair][1:] == pair[by_pair][:-1]
    nxt[rows[by_pair[:-1][same]]] = rows[by_pair[1:][same]]
    count = np.zeros(len(qpos), np.int64)
    depth = qpos - lo
    active = np.flatnonzero(depth >= 1)
    for lag in range(1, DISTINCT_LAST_N + 1):
        if lag > 1:
            active = active[depth[active] >= lag]
        if len(active) == 0:
            break
        i = qpos[active]
        count[active] += nxt[i - lag] >= i
    return count


def _entity_stats(h_ts: np.ndarray, h_codes: np.ndarray, h_lam: np.ndarray, n_codes: int,
                  codes: np.ndarray, ts: np.ndarray, lam: np.ndarray, windows_us: tuple[int, ...],
                  distinct: tuple[tuple[np.ndarray, np.ndarray], ...] = ()) -> dict[str, np.ndarray]:
    """window_stats of the batch rows, with only the history rows that can matter to them.

    ``h_*`` are the history columns (entity codes of one ``KeyCodes`` mapping, ``n_codes``
    entries); ``codes`` the batch's codes from the same mapping. History rows too old for the
    longest window are cut by a binary search on their sorted times; of the rest, only rows
    whose entity occurs in the batch are kept, found by a lookup table indexed by code (integer
    work, no hashing), so the sort works on the rows that matter. ``distinct`` pairs a history
    code column with the batch's codes of the same column.
    """
    first = int(np.searchsorted(h_ts, int(ts[0]) - max(windows_us), side="left"))
    # Renumber the batch's entities below the batch size through a table indexed by code: each
    # entity takes the position of one of its batch rows (whichever write lands; all later reads
    # see the same one). Any consistent numbering gives the same groups, and small codes keep
    # window_stats' composite key (code x time span) far from overflow however many entities
    # the mapping holds. np.empty/np.zeros of a large table touch only the pages written here.
    slot = codes + 1  # +1: a null key (-1) takes slot 0
    local_of = np.empty(n_codes + 1, np.int64)
    local_of[slot] = np.arange(len(codes), dtype=np.int64)
    local = local_of[slot]
    keep = np.zeros(0, np.int64)
    if first < len(h_ts):
        in_batch = np.zeros(n_codes + 1, dtype=bool)
        in_batch[slot] = True
        keep = first + np.flatnonzero(in_batch[h_codes[first:] + 1])
    k = len(keep)
    if k:
        all_codes = np.concatenate([local_of[h_codes[keep] + 1], local])
        all_ts = np.concatenate([h_ts[keep], ts])
        values = np.concatenate([h_lam[keep], lam])
        others = tuple(np.concatenate([h_other[keep], other]) for h_other, other in distinct)
    else:
        all_codes, all_ts, values = local, ts, lam
        others = tuple(other for _, other in distinct)
    return window_stats(all_codes, all_ts, values, windows_us, others, first_query=k)


def _float32_matrix(columns: list[np.ndarray]) -> np.ndarray:
    """``np.column_stack(columns).astype(np.float32)`` without the float64 matrix in between:
    each column goes through float64 (exact for the integer counts) and is rounded to float32
    as it is written, so every value is the same, and a batch allocates one matrix, not two."""
    out = np.empty((len(columns[0]), len(columns)), np.float32)
    for j, column in enumerate(columns):
        out[:, j] = np.asarray(column, dtype=np.float64)
    return out


def _batch_columns(batch: pa.Table | pa.RecordBatch) -> dict[str, pa.Array]:
    missing = [c for c in INPUT_COLUMNS if c not in batch.schema.names]
    if missing:
        raise InputError(f"transaction batch: missing columns {missing}")
    cols = {}
    for c in INPUT_COLUMNS:
        col = batch.column(c)
        cols[c] = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return cols


class FeatureState:
    """The rolling state of the batch path: 7 days of earlier rows and the labels seen so far.

    ``features`` must be called with batches in time order; it computes each row's features
    from earlier rows only, then adds the batch to the history and drops what has aged out, so
    the result does not depend on where batch boundaries fall.

    The history is a set of integer column buffers (HISTORY_SCHEMA) with entity keys held as
    codes of one ``KeyCodes`` mapping per column, so a batch hashes only its own keys. Rows
    live in ``[start, stop)``: a batch is appended after ``stop`` and aged-out rows are dropped
    by moving ``start``; the buffers are compacted or grown only when full, so appending
    costs O(batch) amortised instead of copying the whole history every batch.
    """

    def __init__(self, min_mapping_entries: int = MAPPING_MIN_ENTRIES) -> None:
        self.labels = LabelBook()
        self.last_ts_us: int | None = None
        self.keys = {col: KeyCodes(min_mapping_entries) for col in KEY_COLUMNS}
        self._buf = {f.name: np.zeros(0, np.int64 if f.type == pa.int64() else np.int32)
                     for f in HISTORY_SCHEMA}
        self._start = self._stop = 0

    def _hist(self, name: str) -> np.ndarray:
        return self._buf[name][self._start:self._stop]

    @property
    def history(self) -> pa.Table:
        """A copy of the kept rows (HISTORY_SCHEMA; entity columns as codes), to inspect."""
        return pa.table([pa.array(self._hist(n).copy()) for n in HISTORY_SCHEMA.names],
                        schema=HISTORY_SCHEMA)

    def observe_labels(self, merchants: pa.Array, label_ts_us: pa.Array | np.ndarray,
                       fraud: pa.Array | np.ndarray) -> None:
        """Remember labels; each counts only for transactions at or after its ``label_ts``."""
        self.labels.add(merchants, label_ts_us, fraud)

    def warm(self, batch: pa.Table | pa.RecordBatch) -> None:
        """Add earlier traffic to the look-back state without computing anything for it."""
        self.features(batch)

    def features(self, batch: pa.Table | pa.RecordBatch) -> np.ndarray:
        """Feature matrix (rows x FEATURES, float32) of ``batch``; then remember the batch."""
        cols = _batch_columns(batch)
        ts = cols["ts"].cast(pa.int64()).to_numpy(zero_copy_only=False)
        self._check_order(ts)
        if len(ts) == 0:
            return np.zeros((0, len(FEATURES)), np.float32)
        lam = _log_q(cols["amount_minor"], cols["currency"])
        cols["pair"] = pc.binary_join_element_wise(cols["customer_id"], cols["device_hash"], "|")
        codes = {col: self.keys[col].encode(cols[src]) for col, src in KEY_COLUMNS.items()}
        mat = self._matrix(cols, ts, lam, codes)
        self._remember(ts, lam, codes)
        return mat

    def _check_order(self, ts: np.ndarray) -> None:
        if len(ts) and (np.any(ts[1:] < ts[:-1]) or (self.last_ts_us is not None
                                                        and ts[0] < self.last_ts_us)):
            raise InputError("transaction batch: rows are not in time order (ts); the look-back "
                             "features need batches sorted by ts, then txn_id")

    def _matrix(self, cols: dict[str, pa.Array], ts: np.ndarray, lam: np.ndarray,
                codes: dict[str, np.ndarray]) -> np.ndarray:
        h_ts, h_lam = self._hist("ts"), self._hist("lam_q")

        def stats(col: str, windows_us: tuple[int, ...],
                  distinct: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
            return _entity_stats(h_ts, self._hist(col), h_lam, len(self.keys[col]), codes[col],
                                 ts, lam, windows_us,
                                 tuple((self._hist(o), codes[o]) for o in distinct))

        card = stats("card", (WINDOW_10M_US, WINDOW_1H_US, WINDOW_24H_US, WINDOW_7D_US),
                     ("merch", "mcountry"))
        cust = stats("cust", (WINDOW_24H_US, WINDOW_7D_US))
        dev = stats("pair", (WINDOW_24H_US,))
        device = stats("dev", (WINDOW_24H_US,))
        merch = stats("merch", (WINDOW_1H_US, WINDOW_24H_US))
        cust_n, cust_s = cust[f"n_{WINDOW_24H_US}"], cust[f"sum_{WINDOW_24H_US}"]
        # (lam * n - sum) / (n * scale): one rounding, the same in the online path.
        dev_num = (lam * cust_n - cust_s).astype(np.float64)
        amount_dev = np.divide(dev_num, cust_n * float(LOG_SCALE), out=np.zeros(len(ts)),
                               where=cust_n > 0)
        has_dev = pc.is_valid(cols["device_hash"]).to_numpy(zero_copy_only=False)
        # Rows without a device share the null key; they have no device history to count.
        device_n = np.where(has_dev, device[f"n_{WINDOW_24H_US}"], 0)
        device_s = np.where(has_dev, device[f"sum_{WINDOW_24H_US}"], 0)
        channel = pc.index_in(cols["channel"], value_set=pa.array(CHANNELS)).fill_null(-1)
        cross = pc.not_equal(cols["card_country"], cols["merchant_country"]).fill_null(False)
        n_lab, n_fraud = self.labels.counts(cols["merchant_id"], ts)
        return _float32_matrix([
            lam / float(LOG_SCALE), cross.to_numpy(zero_copy_only=False).astype(np.float64),
            channel.to_numpy(zero_copy_only=False).astype(np.float64),
            card[f"n_{WINDOW_10M_US}"], card[f"n_{WINDOW_1H_US}"], card[f"n_{WINDOW_24H_US}"],
            card[f"sum_{WINDOW_24H_US}"] / float(LOG_SCALE), card["gap_us"] / float(US_PER_S),
            card["distinct_0"], card["distinct_1"],
            cust_n, amount_dev, (has_dev & (dev[f"n_{WINDOW_24H_US}"] == 0)).astype(np.float64),
            merch[f"n_{WINDOW_1H_US}"], fraud_rate(n_lab, n_fraud), _mcc_codes(cols["mcc"]),
            card[f"n_{WINDOW_7D_US}"], card[f"sum_{WINDOW_7D_US}"] / float(LOG_SCALE),
            cust[f"n_{WINDOW_7D_US}"], cust[f"sum_{WINDOW_7D_US}"] / float(LOG_SCALE),
            device_n, device_s / float(LOG_SCALE),
            merch[f"sum_{WINDOW_1H_US}"] / float(LOG_SCALE),
            merch[f"sum_{WINDOW_24H_US}"] / float(LOG_SCALE),
        ])

    def _remember(self, ts: np.ndarray, lam: np.ndarray, codes: dict[str, np.ndarray]) -> None:
        now = int(ts[-1])
        self._append({"ts": ts, "lam_q": lam, **codes})
        # Rows are in time order: the aged-out ones are a prefix (kept: ts >= now - HISTORY_US).
        self._start += int(np.searchsorted(self._hist("ts"), now - HISTORY_US, side="left"))
        self.rebuild_keys()
        self.labels.advance(now)
        self.last_ts_us = now

    def rebuild_keys(self, force: bool = False) -> None:
        """Rebuild the code mappings that are due (all with ``force``) from the history's codes.

        Keys of entities no longer in the history are dropped and the rest renumbered, in the
        mapping and in the history column alike; features do not change, as only which rows
        share a code matters.
        """
        for col, mapping in self.keys.items():
            if force or mapping.due():
                self._buf[col][self._start:self._stop] = mapping.rebuild(self._hist(col))

    def _append(self, rows: dict[str, np.ndarray]) -> None:
        n = len(rows["ts"])
        live, cap = self._stop - self._start, len(self._buf["ts"])
        if self._stop + n > cap:
            # Compact in place while the live rows and the batch fill at most 2/3 of the
            # buffer, else grow it to 1.5x that: either way at least a third of the buffer is
            # appended before the next copy, so copying costs O(1) per row, and the slack
            # stays at half the live rows (memory, not just speed, is a target of replay).
            new_cap = cap if 3 * (live + n) <= 2 * cap else max(3 * (live + n) // 2, 1 << 16)
            for name, buf in self._buf.items():
                out = buf if new_cap == cap else np.empty(new_cap, buf.dtype)
                out[:live] = buf[self._start:self._stop]  # numpy copes with the overlap
                self._buf[name] = out
            self._start, self._stop = 0, live
        for name, buf in self._buf.items():
            buf[self._stop:self._stop + n] = rows[name]
        self._stop += n
