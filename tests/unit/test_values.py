"""Strict values at the boundary: ISO tables, no date rollover, plausible times, ranges."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from cutover import values
from cutover.domain import CURRENCY_EXPONENTS
from cutover.errors import ConfigError, InputError

GOOD = {"txn_id": "T1", "merchant_id": "M1", "mcc": "5411", "customer_id": "C1",
        "card_token": "tok_a", "card_bin": "411111", "amount_minor": 1000, "currency": "USD",
        "card_country": "US", "merchant_country": "GB", "channel": "ecom",
        "ts": datetime(2026, 10, 1, tzinfo=UTC)}


def test_iso_tables_agree_with_the_domain_and_are_complete():
    """Every known currency with the domain's exponent; 249 ISO countries plus ZZ."""
    table = values.currencies()
    assert {code: exp for code, (exp, _) in table.items()} == CURRENCY_EXPONENTS
    assert len(values.countries()) == 250 and {"US", "GB", "ZZ"} <= set(values.countries())


def test_rollover_is_found_and_unpadded_input_is_not():
    """2026-02-30 and 2026-02-29 moved by strptime are flagged; 1/3/2026 is not."""
    text = pa.array(["2026-02-30 10:00:00", "2026-02-29 00:00:00", "2024-02-29 00:00:00"])
    parsed = pc.strptime(text, format="%Y-%m-%d %H:%M:%S", unit="us", error_is_null=True)
    assert values.rolled_over(text, parsed, "%Y-%m-%d %H:%M:%S").tolist() == [True, True, False]
    text = pa.array(["1/3/2026", "31/4/2026"])
    parsed = pc.strptime(text, format="%d/%m/%Y", unit="s", error_is_null=True)
    assert values.rolled_over(text, parsed, "%d/%m/%Y").tolist() == [False, True]


def test_time_range_default_and_override(monkeypatch):
    """Year 1 and 9999 are out by default; the range moves with the environment; a bad
    setting is a ConfigError naming the variable."""
    ts = pa.array([datetime(1, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC),
                   datetime(9999, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC"))
    assert values.ts_out_of_range(ts).tolist() == [True, False, True]
    monkeypatch.setenv(values.TS_MAX_ENV, "2020-01-01")
    assert values.ts_out_of_range(ts).tolist() == [True, True, True]
    monkeypatch.setenv(values.TS_MAX_ENV, "soon")
    with pytest.raises(ConfigError, match=values.TS_MAX_ENV):
        values.ts_range()


def test_amounts_positive_and_under_the_currency_ceiling():
    """0 and -1 are refused, 10^9 USD is the ceiling, one minor unit above is refused."""
    ceiling = values.currencies()["USD"][1]
    found = dict(values.amount_problems(pa.array([0, -1, ceiling, ceiling + 1, 5]),
                                        pa.array(["USD"] * 5)))
    assert found["amount is zero or negative"].tolist() == [True, True, False, False, False]
    assert list(found.values())[1].tolist() == [False, False, False, True, False]


@pytest.mark.parametrize(("change", "fragment"), [
    ({"amount_minor": 10**30}, "is outside 1.."), ({"amount_minor": 0}, "is outside 1.."),
    ({"amount_minor": math.nan}, "is not a number"), ({"amount_minor": "12"}, "whole number"),
    ({"amount_minor": True}, "whole number"), ({"currency": "usd"}, "not an ISO 4217"),
    ({"card_country": "XX"}, "not an ISO 3166-1"), ({"channel": "fax"}, "not one of"),
    ({"ts": datetime(1, 1, 1, tzinfo=UTC)}, "plausible range"),
    ({"merchant_id": ["M1"]}, "merchant_id must be text"), ({"txn_id": None}, "txn_id is missing"),
])
def test_check_txn_refuses_each_bad_field(change, fragment):
    """decide's input check: each bad field is an InputError naming it; a good one passes."""
    values.check_txn(GOOD, "--txn")
    with pytest.raises(InputError, match=fragment):
        values.check_txn(GOOD | change, "--txn")


@pytest.mark.parametrize(("value", "ok"), [(1.0, True), (0.0, False), (math.nan, False),
                                           (math.inf, False), (100_001, False), (None, True)])
def test_number_in_refuses_nan_zero_and_out_of_range(value, ok):
    """(0, 100000]: nan, inf, 0 and too big are InputErrors naming the option."""
    if ok:
        assert values.number_in(value, "--x", 0, 100_000, low_open=True) == value
    else:
        with pytest.raises(InputError, match="--x"):
            values.number_in(value, "--x", 0, 100_000, low_open=True)
