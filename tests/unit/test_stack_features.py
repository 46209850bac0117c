"""The stack's look-back features: batch and online paths agree, and never see the future."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from cutover.errors import InputError
from cutover.stack.features import (
    FEATURES,
    GAP_CAP_US,
    HISTORY_US,
    WINDOW_24H_US,
    FeatureState,
    window_stats,
)
from cutover.stack.online import OnlineFeatures
from tests.stack_support import START, US, candidate_view, make_traffic

F = {name: i for i, name in enumerate(FEATURES)}


@pytest.fixture(scope="module")
def traffic():
    return make_traffic(6_000, seed=5, days=4)


def _labels(table):
    return (table["merchant_id"].combine_chunks(), table["label_ts"].cast(pa.int64()).to_numpy(),
            table["is_fraud"].to_numpy(zero_copy_only=False))


def batch_features(table, chunk=None, labels=None):
    state = FeatureState()
    state.observe_labels(*(labels or _labels(table)))
    view = candidate_view(table)
    if chunk is None:
        return state.features(view)
    return np.vstack([state.features(b) for b in view.to_batches(max_chunksize=chunk)])


def online_features(table, labels=None):
    online = OnlineFeatures()
    for m, t, f in zip(*(x.tolist() if hasattr(x, "tolist") else x.to_pylist()
                         for x in (labels or _labels(table))), strict=True):
        online.observe_label(m, t, f)
    rows = candidate_view(table).to_pylist()
    return np.asarray([online.features(r) for r in rows], dtype=np.float32)


def test_online_features_equal_batch_features_on_every_row(traffic):
    """Every feature of every row: the online path equals the batch path within 1e-6."""
    batch = batch_features(traffic)
    online = online_features(traffic)
    assert batch.shape == (traffic.num_rows, len(FEATURES))
    np.testing.assert_allclose(online, batch, rtol=0, atol=1e-6)
    assert np.array_equal(online, batch)  # the arithmetic is shared, so even bit-equal
    assert batch[:, F["card_n_10m"]].max() >= 5  # the sample does exercise the windows
    assert batch[:, F["card_merchants_24h"]].max() >= 5 and batch[:, F["card_countries_24h"]].max() >= 2


def test_the_wider_look_backs_see_what_24_hours_and_the_card_cannot(traffic):
    """4 days of traffic: on 3,834 of 6,000 rows the card's and the customer's 7-day windows
    hold more than their 24 h ones; a device's count is zero exactly where there is no device;
    a merchant's 24 h amount sum exceeds its 1 h sum on 5,814 rows. Online equals batch (above)."""
    batch = batch_features(traffic)
    col = {name: batch[:, F[name]] for name in FEATURES}
    assert int((col["card_n_7d"] > col["card_n_24h"]).sum()) == 3_834
    assert int((col["cust_logsum_7d"] > 0).sum()) >= int((col["cust_n_24h"] > 0).sum())
    assert (col["card_n_7d"] >= col["card_n_24h"]).all()
    assert (col["card_logsum_7d"] >= col["card_logsum_24h"] - 1e-6).all()
    no_device = ~np.asarray(traffic["device_hash"].is_valid())
    assert int(no_device.sum()) == 856 and not col["device_n_24h"][no_device].any()
    assert int((col["device_n_24h"] > 0).sum()) == 4_121
    assert int((col["merchant_logsum_24h"] > col["merchant_logsum_1h"]).sum()) == 5_814
    assert HISTORY_US == 7 * WINDOW_24H_US


@pytest.mark.parametrize("chunk", [1, 7, 997])
def test_batch_boundaries_do_not_change_features(traffic, chunk):
    """One batch or many small ones: identical features (the rolling history is exact)."""
    # Tiny batches cost a few ms each, so they run on a prefix that still spans bursts.
    small = traffic.slice(0, {1: 300, 7: 1_500}.get(chunk, traffic.num_rows))
    assert np.array_equal(batch_features(small), batch_features(small, chunk=chunk))


def test_a_label_from_the_future_does_not_change_features(traffic):
    """Flipping labels whose label_ts is after a row leaves that row's features unchanged."""
    merchants, label_ts, fraud = _labels(traffic)
    ts = traffic["ts"].cast(pa.int64()).to_numpy()
    cut = ts[len(ts) // 2]
    base = batch_features(traffic)
    future = label_ts > cut
    flipped = np.where(future, ~fraud, fraud)
    changed = batch_features(traffic, labels=(merchants, label_ts, flipped))
    before = ts <= cut
    assert np.array_equal(base[before], changed[before])
    assert not np.array_equal(base[~before], changed[~before])  # the test can fail
    online = online_features(traffic, labels=(merchants, label_ts, flipped))
    assert np.array_equal(online, changed)


def test_merchant_rate_counts_a_label_exactly_from_its_label_ts():
    """A label at label_ts counts for a row at ts == label_ts, not for one 1 µs earlier."""
    t0 = int(START.timestamp()) * US
    rows = pa.table({"txn_id": ["a", "b", "c"], "ts": pa.array([t0, t0 + 99, t0 + 100], pa.int64())
                     .cast(pa.timestamp("us", tz="UTC")), "merchant_id": ["M", "M", "M"],
                     "mcc": ["5411"] * 3, "customer_id": ["c1", "c2", "c3"], "card_token": ["k1", "k2", "k3"],
                     "card_bin": ["400100"] * 3,
                     "card_country": ["US"] * 3, "amount_minor": pa.array([100] * 3, pa.int64()),
                     "currency": ["USD"] * 3, "merchant_country": ["US"] * 3, "channel": ["pos"] * 3,
                     "device_hash": pa.nulls(3, pa.string())})
    state = FeatureState()
    state.observe_labels(pa.array(["M"]), np.array([t0 + 100]), np.array([True]))
    rate = state.features(rows)[:, F["merchant_fraud_rate"]]
    assert rate[0] == rate[1] == pytest.approx(0.2 / 20) and rate[2] == pytest.approx(1.2 / 21)


def test_window_stats_counts_earlier_rows_inclusive_of_the_window_edge():
    """Counts/sums of earlier rows of the same entity; a row exactly w old counts; gap capped."""
    codes = np.array([0, 1, 0, 0, 0])
    ts = np.array([0, 5, 10, 20, 20 + HISTORY_US * 2])
    vals = np.array([1, 100, 2, 4, 8])
    out = window_stats(codes, ts, vals, (10,))
    assert out["n_10"].tolist() == [0, 0, 1, 1, 0]
    assert out["sum_10"].tolist() == [0, 0, 1, 2, 0]
    assert out["gap_us"].tolist() == [GAP_CAP_US, GAP_CAP_US, 10, 10, GAP_CAP_US]


def test_distinct_counts_use_the_last_payments_of_the_card_in_24_hours():
    """Distinct merchants among the card's last DISTINCT_LAST_N earlier payments within 24 h."""
    from cutover.stack.features import DISTINCT_LAST_N

    n = DISTINCT_LAST_N + 4
    codes = np.zeros(n + 2, np.int64)
    codes[-2] = 1  # another card in between changes nothing
    ts = np.arange(n + 2, dtype=np.int64)
    ts[-1] = WINDOW_24H_US + n  # a day later: the window holds only the latest rows
    merchants = np.array([i % 3 for i in range(n - 4)] + [10, 11, 12, 13, 99, 14])
    out = window_stats(codes, ts, np.zeros(n + 2, np.int64), (10,), (merchants,))["distinct_0"]
    assert out[:4].tolist() == [0, 1, 2, 3] and out[5] == 3
    # Row n-1 sees the last 16 rows: merchants 0,1,2 (13 rows incl. wraps) + 10,11,12.
    assert out[n - 1] == 6
    assert out[n] == 1  # the other card: nothing earlier
    # The last row is 24 h + n µs after the start: rows at ts >= n (none of card 0) count.
    assert out[n + 1] == 0


def test_time_since_previous_is_capped_whatever_the_batch_boundaries():
    """A card seen 30 h earlier reads 24 h whether the earlier row is in the batch or trimmed."""
    t = make_traffic(400, seed=9, days=3)
    one = batch_features(t)
    many = batch_features(t, chunk=50)
    assert one[:, F["card_secs_since_prev"]].max() == GAP_CAP_US / US
    assert np.array_equal(one, many)


def test_rows_out_of_time_order_are_refused(traffic):
    """A batch whose ts goes backwards is an InputError, not silently wrong features."""
    view = candidate_view(traffic.slice(0, 10))
    state = FeatureState()
    state.features(view.slice(5, 5))
    with pytest.raises(InputError, match="time order"):
        state.features(view.slice(0, 5))


def test_labels_observed_batch_by_batch_equal_labels_observed_up_front(traffic):
    """Replay's pattern (each batch's labels just before it, 60 batches, so pending chunks are
    merged) gives the same features as knowing every label from the start."""
    merchants, label_ts, fraud = _labels(traffic)
    state = FeatureState()
    parts, start = [], 0
    for batch in candidate_view(traffic).to_batches(max_chunksize=100):
        end = start + batch.num_rows
        state.observe_labels(merchants[start:end], label_ts[start:end], fraud[start:end])
        parts.append(state.features(batch))
        start = end
    assert len(parts) == 60 and len(state.labels.chunks) <= state.labels.CHUNKS_MAX
    assert np.array_equal(np.vstack(parts), batch_features(traffic))


def test_mcc_code_is_the_same_number_on_both_paths_and_unknown_for_junk():
    """A 4-digit ASCII MCC is its number; null, short, long, non-ASCII digits or letters are -1,
    in the batch path and the scalar (online) twin alike."""
    from cutover.stack.features import MCC_UNKNOWN, _mcc_codes, mcc_code

    values = ["5411", "0742", None, "541", "54111", "54a1", "\u0665\u0664\u0661\u0661", ""]
    expected = [5411, 742] + [MCC_UNKNOWN] * 6
    assert _mcc_codes(pa.array(values, pa.string())).tolist() == expected
    assert [mcc_code(v) for v in values] == expected


def _one_off_rows(start: int, n: int, t0: int, step_us: int) -> pa.Table:
    """n transactions, each by a card, customer and device never seen before or after."""
    ids = [f"{i:08d}" for i in range(start, start + n)]
    ts = pa.array(t0 + np.arange(start, start + n, dtype=np.int64) * step_us, pa.int64())
    return pa.table({"txn_id": [f"t{i}" for i in ids], "ts": ts.cast(pa.timestamp("us", tz="UTC")),
                     "merchant_id": [f"M{i % 5}" for i in range(start, start + n)],
                     "mcc": ["5411"] * n, "customer_id": [f"c{i}" for i in ids],
                     "card_token": [f"k{i}" for i in ids], "card_bin": ["400100"] * n,
                     "card_country": ["US"] * n, "amount_minor": pa.array([100] * n, pa.int64()),
                     "currency": ["USD"] * n, "merchant_country": ["US"] * n,
                     "channel": ["pos"] * n, "device_hash": [f"d{i}" for i in ids]})


def test_key_mappings_stay_bounded_over_a_long_stream_of_one_off_entities():
    """60 days at 2,000 rows a day, every card, customer and device seen once: 120,000 of each
    go through the code mappings, but a mapping is rebuilt from the codes still in the 7-day
    history once it holds 4x what it held live at its last rebuild. The history holds 14,001
    rows (7 days and the row exactly 7 days old), so a mapping never holds more than
    4 x 14,001 + one batch = 58,004 keys (56,001 at most here, against 120,000 unbounded)."""
    per_day, days = 2_000, 60
    t0 = int(START.timestamp()) * US
    state = FeatureState(min_mapping_entries=1_000)
    largest = 0
    for day in range(days):
        state.features(_one_off_rows(day * per_day, per_day, t0, WINDOW_24H_US // per_day))
        largest = max(largest, max(len(m) for m in state.keys.values()))
    assert largest <= 4 * (7 * per_day + 1) + per_day
    assert largest == 56_001
    live = state.history.num_rows
    assert live == 7 * per_day + 1  # the rows at or after now - 7 days
    for col in ("card", "cust", "pair", "dev"):
        assert len(state.keys[col]) <= 4 * live + per_day
        codes = state.history[col].to_numpy()
        assert codes.min() >= 0 and codes.max() < len(state.keys[col])
    assert len(state.keys["merch"]) == 5 and len(state.keys["mcountry"]) == 1
    assert state.keys["merch"].index is None  # 5 merchants: always the Arrow lookup


def test_a_mapping_rebuild_mid_stream_leaves_features_unchanged():
    """12 days of traffic whose cards, customers and devices of the first 4 days are renamed
    (so they age out of the 7-day history), in 40 batches, with every mapping rebuilt after
    each batch: rebuilds drop and renumber keys, and the features are bit-identical to the
    same stream whose mappings are never rebuilt, and to one batch."""
    table = make_traffic(5_000, seed=11, days=12)
    ts = table["ts"].cast(pa.int64())
    early = pc.less(ts, int(START.timestamp()) * US + 4 * WINDOW_24H_US)
    for col in ("card_token", "customer_id", "device_hash"):
        renamed = pc.if_else(early, pc.binary_join_element_wise(
            "old-", table[col], ""), table[col])
        table = table.set_column(table.schema.get_field_index(col), col, renamed)
    labels = _labels(table)
    view = candidate_view(table)

    def run(rebuild: bool) -> tuple[np.ndarray, FeatureState]:
        state = FeatureState(min_mapping_entries=10**9)  # no automatic rebuild
        state.observe_labels(*labels)
        parts = []
        for batch in view.to_batches(max_chunksize=125):
            parts.append(state.features(batch))
            if rebuild:
                state.rebuild_keys(force=True)
        return np.vstack(parts), state

    rebuilt, small = run(rebuild=True)
    kept, large = run(rebuild=False)
    n_cards = len(pc.unique(table["card_token"]))
    assert n_cards == 980 and len(large.keys["card"]) == n_cards  # every card seen
    # Past 4x a batch's rows the lookup moves from Arrow to the dict: both paths ran here.
    assert large.keys["card"].index is not None
    assert len(small.keys["card"]) == len(np.unique(small.history["card"].to_numpy())) < 520
    assert np.array_equal(rebuilt, kept)
    assert np.array_equal(rebuilt, batch_features(table, labels=labels))
