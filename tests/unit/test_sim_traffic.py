"""The traffic generator: determinism, contracts, fraud patterns, labels, legacy outcomes."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from cutover.adapters.tokenize import find_pans
from cutover.domain import TRAFFIC
from cutover.errors import InputError
from cutover.sim.legacy_rules import DECIDE_INPUTS, decide, velocity_1h
from cutover.sim.scenario import build_scenario, in_outage
from cutover.sim.traffic import default_days, generate, generate_table
from cutover.sim.world import build_world, pans_for
from cutover.store.traffic import open_store, store_files

ROWS = 40_000
SEED = 11
DAYS = 8  # default_days(ROWS)
DAY_US = 86_400_000_000


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return generate_table(ROWS, SEED)


@pytest.fixture(scope="module")
def rows(table) -> dict[str, np.ndarray]:
    return {name: table[name].to_numpy(zero_copy_only=False) for name in table.column_names}


def _ts_us(table: pa.Table, column: str = "ts") -> np.ndarray:
    return table[column].cast(pa.int64()).to_numpy()


def test_same_seed_same_table_other_seed_differs(table):
    """A second run of the seed is identical; another seed gives other rows."""
    assert generate_table(ROWS, SEED).equals(table)
    other = generate_table(ROWS, SEED + 1)
    assert other.num_rows == ROWS
    assert not other["card_token"].equals(table["card_token"])


def test_schema_row_count_ids_and_order(table):
    """TRAFFIC schema exactly, ROWS rows over DAYS days, unique txn_ids, sorted by (ts, txn_id)."""
    assert table.schema.equals(TRAFFIC)
    assert table.num_rows == ROWS
    ids = table["txn_id"].to_pylist()
    assert len(set(ids)) == ROWS
    keys = list(zip(_ts_us(table).tolist(), ids, strict=True))
    assert keys == sorted(keys)
    days = pc.unique(pc.strftime(table["ts"], format="%Y-%m-%d")).to_pylist()
    assert days == [f"2026-09-{d:02d}" for d in range(1, DAYS + 1)]
    assert all(i[1:9] == d.replace("-", "") and len(i) == 17 for i, d in
               zip(ids[::997], pc.strftime(table["ts"], format="%Y-%m-%d").to_pylist()[::997],
                   strict=True))


def test_default_days_and_bad_input():
    """150,000 rows default to 30 days; rows, days, seed and start are checked by name."""
    assert default_days(150_000) == 30 and default_days(1_000) == 7
    with pytest.raises(InputError, match="rows"):
        generate_table(0, 1)
    with pytest.raises(InputError, match="days"):
        generate_table(10, 1, days=0)
    with pytest.raises(InputError, match="seed"):
        generate_table(10, -1)
    with pytest.raises(InputError, match="start"):
        generate_table(10, 1, start="2026-09-01")


def test_fraud_rate_in_range_over_seeds():
    """Fraud is 0.5-1.5% of rows for each of several seeds."""
    for seed in range(4):
        rate = pc.mean(generate_table(20_000, seed)["is_fraud"].cast(pa.int64())).as_py()
        assert 0.005 <= rate <= 0.015, (seed, rate)


def test_card_testing_bursts_are_present_and_labelled(rows):
    """Some card makes >= 8 tiny payments at one merchant within 10 minutes, all fraud,
    and the legacy velocity rule declines part of each burst."""
    small = rows["amount_minor"] < np.array([_small_minor(c) for c in rows["currency"]])
    groups = defaultdict(list)
    for i in np.flatnonzero(small):
        groups[(rows["card_token"][i], rows["merchant_id"][i])].append(i)
    bursts = [idx for idx in groups.values()
              if len(idx) >= 8 and rows["ts"][idx[-1]] - rows["ts"][idx[0]] <= np.timedelta64(10, "m")]
    assert len(bursts) >= 3
    for idx in bursts:
        assert rows["is_fraud"][idx].all()
        assert "65" in set(rows["legacy_code"][idx])


def _small_minor(currency: str) -> int:
    """About 3.5 USD in minor units of ``currency``."""
    from cutover.domain import currency_exponent
    from cutover.sim.world import UNITS_PER_USD

    return int(3.5 * UNITS_PER_USD[currency] * 10 ** currency_exponent(currency))


def test_account_takeover_new_device_high_amount(rows):
    """Fraud on a device the customer never used for ordinary rows, at high amounts."""
    usual = defaultdict(set)
    for cust, dev, fraud in zip(rows["customer_id"], rows["device_hash"], rows["is_fraud"],
                                strict=True):
        if dev is not None and not fraud:
            usual[cust].add(dev)
    takeovers = [i for i in np.flatnonzero(rows["is_fraud"])
                 if rows["mcc"][i] in ("5732", "5944", "4511")
                 and rows["merchant_country"][i] == rows["card_country"][i]
                 and rows["device_hash"][i] not in usual[rows["customer_id"][i]]
                 and rows["amount_minor"][i] > 200 * _small_minor(rows["currency"][i])]
    assert len(takeovers) >= 20


def test_cross_border_spike_and_compromised_merchant(rows):
    """Some hour holds >= 10 foreign-card frauds; one merchant has a day with >= 20% fraud."""
    foreign = rows["is_fraud"] & (rows["card_country"] != rows["merchant_country"])
    hours = Counter(rows["ts"][foreign].astype("datetime64[h]").tolist())
    assert max(hours.values()) >= 10
    day_merchant = Counter(zip(rows["ts"].astype("datetime64[D]").tolist(), rows["merchant_id"],
                               strict=True))
    fraud_day_merchant = Counter(zip(rows["ts"][rows["is_fraud"]].astype("datetime64[D]").tolist(),
                                     rows["merchant_id"][rows["is_fraud"]], strict=True))
    shares = [k / day_merchant[key] for key, k in fraud_day_merchant.items() if k >= 10]
    assert shares and max(shares) >= 0.2


def test_labels_arrive_after_the_transaction(table, rows):
    """label_ts > ts; fraud and chargebacks are known 3-45 days later, others at 45 days."""
    lag_days = (_ts_us(table, "label_ts") - _ts_us(table)) / DAY_US
    assert (lag_days > 0).all()
    early = rows["is_fraud"] | rows["chargeback"]
    assert lag_days[early].min() >= 3 and lag_days[early].max() <= 45
    assert (lag_days[~early] == 45).all()
    approved = rows["legacy_decision"] == "approve"
    assert not rows["chargeback"][~approved].any()
    fraud_approved = rows["is_fraud"] & approved
    assert rows["chargeback"][fraud_approved].mean() > 0.8
    disputes = rows["chargeback"] & ~rows["is_fraud"]
    assert 0 < disputes.sum() < 0.01 * ROWS


def test_legacy_columns_equal_decide_recomputed(table, rows):
    """Legacy outcomes are exactly legacy_rules.decide with velocity over the whole table."""
    velocity = velocity_1h(rows["card_token"], _ts_us(table))
    again = decide({name: rows[name] for name in DECIDE_INPUTS}, velocity, build_world(SEED).cfg)
    for name, values in again.items():
        assert (np.asarray(values) == rows[name]).all(), name
    assert {"00", "01", "59", "61", "62", "65"} <= set(rows["legacy_code"])
    approved = rows["legacy_decision"] == "approve"
    assert (rows["legacy_fee_minor"][approved] > 0).all()
    assert (rows["legacy_fee_minor"][~approved] == 0).all()


def test_velocity_fed_to_decide_crosses_midnight(table, monkeypatch):
    """The velocity each day hands to decide equals velocity over the whole store, and
    differs from a day-by-day count: the previous day's last hour is carried."""
    from cutover.sim import traffic

    seen = []

    def spy(cols, velocity, cfg):
        seen.append(np.asarray(velocity))
        return decide(cols, velocity, cfg)

    monkeypatch.setattr(traffic, "decide", spy)
    assert generate_table(ROWS, SEED).equals(table)
    fed = np.concatenate(seen)
    ts = _ts_us(table)
    tokens = table["card_token"].to_numpy(zero_copy_only=False)
    assert (fed == velocity_1h(tokens, ts)).all()
    day = ts // DAY_US
    per_day = np.concatenate([velocity_1h(tokens[day == d], ts[day == d]) for d in np.unique(day)])
    assert int((fed != per_day).sum()) > 0


def test_gateway_success_differs_by_region_and_outages(table, rows):
    """Measured success: GW_ATLAS settles NA cards far more often than MEA cards;
    inside outage windows success collapses; gateway_ok is null off approvals."""
    world = build_world(SEED)
    approved = rows["legacy_decision"] == "approve"
    assert table["gateway_ok"].null_count == int((~approved).sum())
    region = np.array([world.gateways.region_of_country[c] for c in rows["card_country"]])
    ok = rows["gateway_ok"]

    def rate(mask):
        return ok[mask & approved].astype(bool).mean(), int((mask & approved).sum())

    na, n_na = rate((rows["legacy_route"] == "GW_ATLAS") & (region == "NA"))
    mea, n_mea = rate((rows["legacy_route"] == "GW_ATLAS") & (region == "MEA"))
    assert n_na > 1000 and n_mea > 300
    assert na - mea > 0.1
    scenario = build_scenario(world, ROWS, dt.date(2026, 9, 1), default_days(ROWS))
    gateway = np.select([rows["legacy_route"] == g for g in world.gateways.names], [0, 1, 2])
    down = in_outage(scenario, gateway, _ts_us(table)) & approved
    assert down.sum() > 50
    assert ok[down].astype(bool).mean() < 0.3 < ok[~down & approved].astype(bool).mean()


def test_currencies_and_daily_rhythm(rows):
    """JPY (exponent 0) and BHD (exponent 3) are present with plausible minor amounts;
    US merchants sell far less at 3-5 am local than at 6-8 pm."""
    for currency, low, high in (("JPY", 1_000, 20_000), ("BHD", 3_000, 60_000),
                                ("USD", 1_000, 12_000)):
        amounts = rows["amount_minor"][rows["currency"] == currency]
        assert len(amounts) > 300
        assert low <= np.median(amounts) <= high, (currency, np.median(amounts))
    us = rows["merchant_country"] == "US"
    local_hour = (rows["ts"][us].astype("datetime64[h]").astype(np.int64) - 5) % 24
    night = np.isin(local_hour, (3, 4)).sum()
    evening = np.isin(local_hour, (18, 19)).sum()
    assert evening > 10 * night


def test_generate_writes_the_same_rows_and_reruns_identically(tmp_path, table):
    """The store equals generate_table; a rerun gives byte-identical files and progress ends
    at the row count; rows are partitioned by day."""
    seen = []
    summary = generate(tmp_path / "store", ROWS, SEED, on_progress=seen.append)
    assert summary.rows == ROWS and seen[-1] == ROWS and seen == sorted(seen)
    assert len(summary.days) == DAYS and summary.days[0] == "2026-09-01"
    assert summary.fraud_rows == pc.sum(table["is_fraud"].cast(pa.int64())).as_py()
    assert summary.fraud_rows == sum(summary.fraud_by_pattern.values())
    assert summary.legacy_approved + summary.legacy_declined + summary.legacy_review == ROWS
    assert sum(summary.currencies.values()) == ROWS
    stored = open_store(tmp_path / "store").to_table()
    assert stored.equals(table)
    files = store_files(tmp_path / "store")
    assert [f.parent.name for f in files] == [f"day={d}" for d in summary.days]
    first = {f.name + f.parent.name: f.read_bytes() for f in files}
    generate(tmp_path / "store", ROWS, SEED)
    assert {f.name + f.parent.name: f.read_bytes() for f in store_files(tmp_path / "store")} == first


def test_generate_replaces_a_previous_store_but_refuses_other_folders(tmp_path):
    """A previous store of more days is replaced without stale days; a foreign folder is refused."""
    out = tmp_path / "store"
    generate(out, 800, 1, days=9)
    summary = generate(out, 700, 1, days=7)
    assert sorted(p.name for p in out.iterdir()) == [f"day={d}" for d in summary.days]
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in store_files(out)) == 700
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a traffic store"):
        generate(foreign, 100, 1)
    assert (foreign / "todo.txt").read_text() == "keep me"


def test_no_card_number_in_the_store(tmp_path):
    """No Luhn-valid digit run in the Parquet bytes or in the decoded rows; no world PAN at all."""
    out = tmp_path / "store"
    generate(out, 5_000, 2)
    raw = b"".join(f.read_bytes() for f in store_files(out))
    assert find_pans(raw.decode("latin-1")) == []
    stored = open_store(out).to_table()
    text = "\n".join(",".join(map(str, r.values())) for r in stored.to_pylist())
    assert find_pans(text) == []
    for pan in pans_for(sorted(set(stored["card_token"].to_pylist()))[:200], 2):
        assert pan not in text and pan.encode() not in raw
