"""Feed health judges every segment by a test fitting its size, under false-discovery control:
a 300-row merchant whose amounts fell a hundredfold is found, noise across 300 merchants is not,
and each kind of finding names the field, the segment and the metric."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from cutover.shadow.feed_changepoint import change_point, locate
from cutover.shadow.feed_health import find
from cutover.shadow.feed_profile import Coder, Profile, value_format

HOUR_US = 3_600_000_000
START_US = int(datetime(2026, 9, 1, tzinfo=UTC).timestamp() * 1_000_000)
CHANNELS = np.array(["ecom", "pos", "moto", "recurring"])
COUNTRIES = np.array(["US", "GB", "FR", "DE"])
CURRENCY = {"US": "USD", "GB": "GBP", "FR": "EUR", "DE": "EUR"}


def feed(rows: int, seed: int, merchants: int = 300, start_us: int = START_US,
         days: int = 10) -> dict[str, np.ndarray]:
    """Columns of a plain feed: merchants with fixed countries, amounts lognormal per merchant,
    daytime hours, devices on ecom rows only."""
    rng = np.random.default_rng(seed)
    merchant = rng.integers(0, merchants, rows)
    country = COUNTRIES[merchant % len(COUNTRIES)]
    day = rng.integers(0, days, rows)
    hour = rng.normal(14, 3, rows).astype(np.int64) % 24
    ts = start_us + day * 24 * HOUR_US + hour * HOUR_US + rng.integers(0, HOUR_US, rows)
    channel = CHANNELS[rng.choice(4, rows, p=[0.5, 0.4, 0.05, 0.05])]
    card = rng.integers(0, 5_000, rows)
    return {
        "ts": np.sort(ts), "merchant_id": np.array([f"M{m:05d}" for m in merchant]),
        "mcc": np.array(["5411", "5812", "5999"])[merchant % 3],
        "card_bin": np.array([f"{400000 + c % 9000}" for c in card]),
        "card_country": np.where(rng.random(rows) < 0.9, country, "US"),
        "amount_minor": np.maximum(1, np.exp(7 + (merchant % 5) * 0.3 +
                                             rng.normal(0, 0.8, rows))).astype(np.int64),
        "currency": np.array([CURRENCY[c] for c in country]), "merchant_country": country,
        "channel": channel, "customer_id": np.array([f"C{c:06d}" for c in card]),
        "card_token": np.array([f"tok_{c:08d}" for c in card]),
        "device_hash": np.where(channel == "ecom", "d" + rng.integers(0, 1 << 40, rows)
                                .astype(str), None),
        "ip_hash": np.where(channel == "ecom", "ip" + rng.integers(0, 1 << 30, rows)
                            .astype(str), None),
    }


def table(cols: dict[str, np.ndarray]) -> pa.Table:
    out = {k: pa.array(v.tolist(), pa.string()) for k, v in cols.items()
           if k not in ("ts", "amount_minor")}
    out["ts"] = pa.array(cols["ts"], pa.timestamp("us", tz="UTC"))
    out["amount_minor"] = pa.array(cols["amount_minor"], pa.int64())
    return pa.table(out)


def judge(ref: dict, rep: dict, quarantined: np.ndarray | None = None, where: bool = False):
    coder = Coder()
    a, b = Profile(coder), Profile(coder)
    a.add(table(ref))
    b.add(table(rep), quarantined)
    found = find(a, b)
    if where:
        locate(found, [(table(rep), quarantined if quarantined is not None
                        else np.zeros(len(rep["ts"]), bool))], coder)
    return found


@pytest.fixture(scope="module")
def windows():
    """A 60,000-row reference and a 30,000-row replay of the same feed (300 merchants)."""
    return feed(60_000, 1), feed(30_000, 2, start_us=START_US + 20 * 24 * HOUR_US)


def test_noise_across_300_merchants_is_no_finding(windows):
    """The same feed twice (different random draws): no finding in any segment or field."""
    ref, rep = windows
    assert judge(ref, rep) == []


def test_units_switch_on_a_300_row_merchant_is_found_with_its_start(windows):
    """M00007 has about 100 rows; from the middle of the replay its amounts fall a hundredfold:
    the top finding is amount_minor in merchant_id=M00007, an amount shift first seen at the
    switch (within the hour)."""
    ref, rep = windows
    rep = {k: v.copy() for k, v in rep.items()}
    switch_us = START_US + 25 * 24 * HOUR_US
    hit = (rep["merchant_id"] == "M00007") & (rep["ts"] >= switch_us)
    rep["amount_minor"][hit] = np.maximum(1, rep["amount_minor"][hit] // 100)
    found = judge(ref, rep, where=True)
    top = [f for f in found if f.dimension == "merchant_id"][0]
    assert (top.field, top.segment, top.metric) == ("amount_minor", "M00007", "amount_shift")
    assert top.rows_replay < 150 and top.q < 1e-6
    first = int(datetime.fromisoformat(top.first_seen.replace("Z", "+00:00")).timestamp() * 1e6)
    assert 0 <= first - switch_us < 24 * HOUR_US


def test_null_spike_in_one_channel_is_found_in_that_channel(windows):
    """device_hash null on 60% of ecom rows: a null_rate finding in channel=ecom (from 0%)."""
    ref, rep = windows
    rep = dict(rep)
    rng = np.random.default_rng(5)
    hit = (rep["channel"] == "ecom") & (rng.random(len(rep["ts"])) < 0.6)
    rep["device_hash"] = np.where(hit, None, rep["device_hash"])
    found = judge(ref, rep)
    spike = [f for f in found if f.dimension == "channel" and f.field == "device_hash"]
    assert spike and spike[0].segment == "ecom" and spike[0].metric in ("null_rate",)
    assert spike[0].before.startswith("null: 0.0%")


def test_recoded_country_is_a_new_value_and_a_format_change(windows):
    """FR merchants' country arrives as "250": new value in merchant_country, digits format."""
    ref, rep = windows
    rep = dict(rep)
    rep["merchant_country"] = np.where(rep["merchant_country"] == "FR", "250",
                                       rep["merchant_country"])
    found = judge(ref, rep)
    metrics = {(f.field, f.metric) for f in found if f.dimension == "currency"
               and f.segment == "EUR"}
    assert ("merchant_country", "new_value") in metrics
    assert any(f.field == "merchant_country" and f.metric == "format" and "9:3" in f.after
               for f in found)


def test_refused_rows_of_one_merchant_are_a_quarantine_finding(windows):
    """Every row of M00003 refused: quarantine_rate 0% -> 100% in merchant_id=M00003."""
    ref, rep = windows
    refused = rep["merchant_id"] == "M00003"
    found = judge(ref, rep, quarantined=refused)
    rows = [f for f in found if f.metric == "quarantine_rate" and f.dimension == "merchant_id"]
    assert [f.segment for f in rows] == ["M00003"] and rows[0].after == "100.0%"


def test_change_point_finds_where_the_rate_rose():
    """Flags at 2% before row 600 and 90% after: the first flagged row at or after 600."""
    rng = np.random.default_rng(1)
    ts = np.arange(1000, dtype=np.int64) * HOUR_US
    flags = np.where(np.arange(1000) < 600, rng.random(1000) < 0.02, rng.random(1000) < 0.9)
    first, hours = change_point(ts, flags)
    assert 600 * HOUR_US <= first <= 605 * HOUR_US and hours > 300


def test_value_format_names_alphabet_and_length():
    """Formats: alpha-2 country, numeric code, mixed id, null and empty."""
    assert [value_format(v) for v in ("US", "840", "M00042", None, "")] == \
        ["A:2", "9:3", "9A:6", "null", "empty"]
