"""Unit tests of the simulated legacy core's pure decision logic (cutover.sim.legacy_rules)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cutover.errors import BadRecord, ConfigError
from cutover.paths import fixtures_dir
from cutover.sim.legacy_rules import (
    HOUR_US,
    VelocityCounter,
    card_country_of,
    decide,
    decide_one,
    load_core_config,
    velocity_1h,
)

CFG = load_core_config()
BASE = dict(amount_minor=1000, currency="USD", mcc="5999", card_bin="400000", card_country="US",
            merchant_country="US", channel="ecom")


def one(velocity: int = 0, **changes: object) -> dict:
    """Decide BASE with ``changes``; card_country follows card_bin unless given."""
    txn = {**BASE, **changes}
    if "card_bin" in changes and "card_country" not in changes:
        txn["card_country"] = str(card_country_of(np.array([txn["card_bin"]]), CFG)[0])
    return decide_one(txn, velocity, CFG)


@pytest.mark.parametrize(
    ("changes", "velocity", "code", "reason"),
    [
        ({}, 0, "00", "approved"),
        ({"card_bin": "999999"}, 0, "14", "invalid_card"),
        ({"card_bin": "550000"}, 0, "62", "restricted_card"),
        ({"currency": "CHF"}, 0, "57", "not_permitted"),
        ({"amount_minor": 0}, 0, "57", "not_permitted"),
        ({}, 5, "65", "exceeds_frequency_limit"),
        ({"amount_minor": 500_001}, 0, "61", "exceeds_amount_limit"),
        ({"mcc": "7995", "amount_minor": 50_001}, 0, "61", "exceeds_amount_limit"),
        ({"channel": "moto", "amount_minor": 100_001}, 0, "59", "suspected_fraud"),
        ({"card_bin": "410000", "amount_minor": 50_001}, 0, "01", "refer_to_issuer"),
    ],
)
def test_each_rule_fires_with_its_code(changes, velocity, code, reason) -> None:
    """Each rule on a crafted row gives its legacy code and canonical reason."""
    out = one(velocity, **changes)
    assert (out["legacy_code"], out["legacy_reason"]) == (code, reason)
    assert out["legacy_fee_minor"] == (43 if code == "00" else 0)


def test_thresholds_are_inclusive_where_documented() -> None:
    """Amount equal to a limit or threshold still approves; velocity 4 (5th txn) approves."""
    assert one(amount_minor=500_000)["legacy_code"] == "00"
    assert one(channel="moto", amount_minor=100_000)["legacy_code"] == "00"
    assert one(card_bin="410000", amount_minor=50_000)["legacy_code"] == "00"
    assert one(velocity=4)["legacy_code"] == "00"


@pytest.mark.parametrize(
    ("changes", "velocity", "code"),
    [
        ({"card_bin": "999999", "currency": "CHF"}, 9, "14"),
        ({"card_bin": "550000", "currency": "CHF"}, 9, "62"),
        ({"currency": "CHF"}, 9, "57"),
        ({"amount_minor": 900_000, "channel": "moto"}, 9, "65"),
        ({"amount_minor": 900_000, "channel": "moto", "card_bin": "410000"}, 0, "61"),
        ({"amount_minor": 200_000, "channel": "moto", "card_bin": "410000"}, 0, "59"),
    ],
)
def test_precedence_first_rule_wins(changes, velocity, code) -> None:
    """When several rules fire, the documented precedence picks the code."""
    assert one(velocity, **changes)["legacy_code"] == code


@pytest.mark.parametrize(
    ("changes", "route", "fee_minor"),
    [
        ({"amount_minor": 1000}, "GW_ATLAS", 18 + 25),
        ({"amount_minor": 25}, "GW_ATLAS", 0 + 25),          # 0.45 rounds down
        ({"amount_minor": 28}, "GW_ATLAS", 1 + 25),          # 0.504 rounds up
        ({"card_bin": "510000", "amount_minor": 125}, "GW_CORAL", 2 + 20),  # 1.5 rounds up
        ({"card_bin": "415000", "currency": "GBP", "merchant_country": "GB",
          "amount_minor": 10_000}, "GW_BOREAL", 150 + 20),
        ({"card_bin": "525000", "currency": "JPY", "merchant_country": "JP",
          "amount_minor": 10_000}, "GW_CORAL", 120 + 20),
        ({"card_bin": "554000", "currency": "BHD", "merchant_country": "BH",
          "amount_minor": 123_456}, "GW_ATLAS", 2222 + 100),
    ],
)
def test_route_and_fee_exact(changes, route, fee_minor) -> None:
    """Route from the static table; fee = bps rounded half up + fixed, exact in minor units."""
    out = one(**changes)
    assert out["legacy_code"] == "00"
    assert (out["legacy_route"], out["legacy_fee_minor"]) == (route, fee_minor)


def test_decline_keeps_route_and_has_no_fee() -> None:
    """A declined row still reports the table's route, with fee 0."""
    out = one(velocity=7, card_bin="510000")
    got = (out["legacy_code"], out["legacy_route"], out["legacy_fee_minor"])
    assert got == ("65", "GW_CORAL", 0)


def test_card_country_boundaries_and_malformed_bins() -> None:
    """BIN range edges map to their countries; unknown or malformed BINs are ZZ."""
    bins = np.array(["409999", "410000", "555999", "556000", "000000", "12345", "abcdef", ""])
    assert list(card_country_of(bins, CFG)) == ["US", "CA", "BH", "ZZ", "ZZ", "ZZ", "ZZ", "ZZ"]


def test_velocity_window_is_half_open() -> None:
    """A row exactly one hour earlier is outside the window; one microsecond later is inside."""
    cards = np.array(["a", "a", "b", "a", "a"])
    ts = np.array([0, 10, 10, HOUR_US, HOUR_US + 10], dtype=np.int64)
    assert list(velocity_1h(cards, ts)) == [0, 1, 0, 1, 1]
    assert len(velocity_1h(np.array([], dtype=str), np.array([], dtype=np.int64))) == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, HOUR_US // 2)),
                min_size=1, max_size=60))
def test_velocity_vectorised_equals_online_counter(steps) -> None:
    """velocity_1h over a sorted sequence equals VelocityCounter fed the same rows in order."""
    cards = np.array([card for card, _ in steps])
    ts = np.cumsum([gap for _, gap in steps]).astype(np.int64)
    counter = VelocityCounter()
    online = [counter.count(str(c), int(t), f"T{i}") for i, (c, t) in enumerate(zip(cards, ts))]
    assert list(velocity_1h(cards, ts)) == online


def test_velocity_counter_idempotent_on_txn_id() -> None:
    """A repeated txn_id returns its first count and is not counted twice."""
    counter = VelocityCounter()
    assert counter.count("card", 100, "T1") == 0
    assert counter.count("card", 200, "T2") == 1
    assert counter.count("card", 200, "T2") == 1
    assert counter.count("card", 300, "T3") == 2


def test_velocity_counter_memory_is_bounded() -> None:
    """The counter keeps at most cards_max cards and txns_max txn ids, and evicts old times."""
    counter = VelocityCounter(cards_max=3, txns_max=5)
    for i in range(10):
        counter.count(f"card{i}", i, f"T{i}")
    assert len(counter._by_card) == 3 and len(counter._seen) == 5
    counter.count("card9", 3 * HOUR_US, "late")
    assert counter._by_card["card9"] == [3 * HOUR_US]
    sweeping = VelocityCounter()
    for i in range(VelocityCounter.SWEEP_EVERY_CALLS):
        sweeping.count(f"c{i}", i * HOUR_US // 100, f"S{i}")
    assert len(sweeping._by_card) <= 101


ROWS = st.fixed_dictionaries({
    "amount_minor": st.integers(-5, 1_200_000),
    "currency": st.sampled_from(["USD", "EUR", "GBP", "JPY", "BHD", "CHF"]),
    "mcc": st.sampled_from(["5999", "7995", "4829", "5411"]),
    "card_bin": st.sampled_from(["400000", "410000", "415000", "510000", "525000", "550000",
                                 "554000", "999999", "12x"]),
    "merchant_country": st.sampled_from(["US", "GB", "JP", "BH"]),
    "channel": st.sampled_from(["ecom", "pos", "moto", "recurring"]),
    "velocity": st.integers(0, 8),
})


@settings(max_examples=30, deadline=None)
@given(st.lists(ROWS, min_size=1, max_size=40))
def test_decide_one_equals_decide_row_wise(rows) -> None:
    """decide_one on each row gives exactly the batch decide's row."""
    for row in rows:
        row["card_country"] = str(card_country_of(np.array([row["card_bin"]]), CFG)[0])
    cols = {k: np.array([r[k] for r in rows], dtype=object) for k in BASE}
    cols["amount_minor"] = np.array([r["amount_minor"] for r in rows], dtype=np.int64)
    batch = decide(cols, np.array([r["velocity"] for r in rows]), CFG)
    for i, row in enumerate(rows):
        single = decide_one(row, row["velocity"], CFG)
        assert single == {k: (int(v[i]) if k == "legacy_fee_minor" else str(v[i]))
                          for k, v in batch.items()}
        assert single["legacy_fee_minor"] == 0 or single["legacy_code"] == "00"


def test_decide_is_deterministic_and_names_missing_columns() -> None:
    """Two runs give identical output; a missing column, bad length or float is BadRecord."""
    cols = {k: np.array([v] * 3, dtype=object) for k, v in BASE.items()}
    first, second = decide(cols, np.zeros(3), CFG), decide(cols, np.zeros(3), CFG)
    assert all(list(first[k]) == list(second[k]) for k in first)
    with pytest.raises(BadRecord, match="channel"):
        decide({k: v for k, v in cols.items() if k != "channel"}, np.zeros(3), CFG)
    with pytest.raises(BadRecord, match="differ in length"):
        decide(cols, np.zeros(2), CFG)
    with pytest.raises(BadRecord, match="amount_minor must be an int, got float"):
        decide_one({**BASE, "amount_minor": 10.5}, 0, CFG)
    with pytest.raises(BadRecord, match="lacks fields"):
        decide_one({"amount_minor": 1}, 0, CFG)


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ('"5000.00 USD", "5000.00 EUR"', '"5000.001 USD", "5000.00 EUR"', "limits.default"),
        ('default = "GW_ATLAS"', 'default = "GW_NOPE"', "GW_NOPE"),
        ("txn_per_hour_max = 5", "txn_per_hour_max = 0", "velocity.txn_per_hour_max"),
        ('moto_over = ["1000.00 USD", ', "moto_over = [", "suspicion.moto_over"),
        ('bin_start = "400000"', 'bin_start = "4000"', "routing.routes[0].bin_start"),
    ],
)
def test_bad_core_config_names_file_and_key(tmp_path, old, new, needle) -> None:
    """A bad core.toml raises ConfigError naming the file and the key."""
    text = (fixtures_dir() / "legacy" / "core.toml").read_text()
    assert old in text
    path = tmp_path / "core.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_core_config(path)
    assert str(path) in str(info.value) and needle in str(info.value)
