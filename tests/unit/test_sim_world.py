"""The simulated world: deterministic actors, real-looking PANs that stay in memory."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from cutover.adapters.tokenize import DEMO_TOKEN_KEY, luhn_ok, tokenize_pan
from cutover.errors import ConfigError, InputError
from cutover.sim.legacy_rules import card_country_of
from cutover.sim.scenario import build_scenario, rows_per_day
from cutover.sim.traffic import generate_table
from cutover.sim.world import (
    CUSTOMERS,
    REQUEST_FIELDS,
    build_world,
    load_gateway_sim,
    luhn_check_digit,
    pans_for,
    sample_requests,
)


def test_same_seed_same_world_other_seed_other_cards():
    """Two builds of a seed agree card for card; another seed issues other tokens."""
    a, b = build_world(5), build_world.__wrapped__(5)
    assert list(a.card_token) == list(b.card_token)
    assert (a.merchant_mcc == b.merchant_mcc).all()
    other = build_world(6)
    assert len(set(a.card_token) & set(other.card_token)) == 0


def test_world_shape_and_card_countries_match_bins():
    """Every customer has 1-2 cards, tokens are unique, and each BIN's range names its country."""
    world = build_world(5)
    assert len(world.customer_id) == CUSTOMERS
    assert set(np.unique(world.customer_cards).tolist()) == {1, 2}
    assert len(set(world.card_token)) == len(world.card_token)
    assert (card_country_of(world.card_bin, world.cfg) == world.card_country).all()
    assert {"JPY", "BHD", "USD", "EUR"} <= set(world.merchant_currency.tolist())


def test_luhn_check_digit_matches_luhn_ok():
    """The vectorised check digit makes every payload pass the scalar Luhn check."""
    payload = np.random.default_rng(0).integers(0, 10, (200, 15))
    digits = luhn_check_digit(payload)
    texts = ["".join(map(str, row)) + str(d) for row, d in zip(payload.tolist(), digits.tolist())]
    assert all(luhn_ok(t) for t in texts)
    assert not luhn_ok(texts[0][:-1] + str((int(texts[0][-1]) + 1) % 10))


def test_pans_are_valid_and_tokenise_to_the_stored_token():
    """A PAN has 16 digits, starts with its BIN, passes Luhn and hashes to the card's token."""
    world = build_world(5)
    tokens = list(world.card_token[:500])
    pans = pans_for(tokens, 5)
    assert len(set(pans)) == 500
    for pan, token, card_bin in zip(pans, tokens, world.card_bin[:500], strict=True):
        assert len(pan) == 16 and pan.isdigit() and luhn_ok(pan)
        assert pan[:6] == card_bin
        assert tokenize_pan(pan, DEMO_TOKEN_KEY.encode()) == token


def test_pans_for_refuses_a_foreign_token():
    """A token of another seed's world is named in the error, not silently skipped."""
    foreign = build_world(6).card_token[0]
    with pytest.raises(InputError, match="not a card of the world of seed 5"):
        pans_for([foreign], 5)


def test_sample_requests_carry_request_fields_and_pan():
    """n requests in time order, with every adapter field and a PAN matching the token."""
    table = generate_table(3_000, 5)
    requests = sample_requests(table, 25, 5)
    assert len(requests) == 25
    assert requests == sample_requests(table, 25, 5)
    assert [r["ts"] for r in requests] == sorted(r["ts"] for r in requests)
    key = DEMO_TOKEN_KEY.encode()
    for r in requests:
        assert set(REQUEST_FIELDS) | {"pan"} == set(r)
        assert tokenize_pan(r["pan"], key) == r["card_token"]
        assert r["pan"].startswith(r["card_bin"])
        assert dt.datetime.fromisoformat(r["ts"]).tzinfo is not None
        assert isinstance(r["amount_minor"], int) and r["amount_minor"] > 0
    assert len(sample_requests(table, 10_000, 5)) == 3_000
    batch = table.combine_chunks().to_batches(max_chunksize=500)[0]
    assert [r["txn_id"] for r in sample_requests(batch, 5, 5)] == \
        [r["txn_id"] for r in sample_requests(table.slice(0, 500), 5, 5)]


def test_rows_per_day_sum_and_weekly_rhythm():
    """Rows split exactly; a Saturday gets more than the Sunday after it."""
    counts = rows_per_day(100_003, dt.date(2026, 9, 1), 14)
    assert sum(counts) == 100_003
    saturday = 4  # 2026-09-05 is a Saturday
    assert counts[saturday] > counts[saturday + 1] * 1.25


def test_scenario_has_outages_for_every_gateway_and_a_merchant_window():
    """Each gateway has at least one 1-4 h outage; the compromised window fits the period."""
    world = build_world(5)
    scenario = build_scenario(world, 150_000, dt.date(2026, 9, 1), 30)
    assert set(scenario.outage_gateway.tolist()) == set(range(len(world.gateways.names)))
    hours = (scenario.outage_end_us - scenario.outage_start_us) / 3.6e9
    assert hours.min() >= 1 and hours.max() <= 4
    assert len(scenario.compromised_days) == 3 and scenario.compromised_days.stop <= 30


def test_gateway_sim_reads_rates_and_refuses_bad_ones(tmp_path):
    """Rates fall back to base per region; a rate above 1 is refused naming its key."""
    sim = load_gateway_sim()
    assert len(sim.names) >= 3 and sim.region_of_country["JP"] == "APAC"
    atlas = sim.names.index("GW_ATLAS")
    assert sim.success[atlas, sim.regions.index("NA")] == 0.97
    bad = tmp_path / "gateways.toml"
    bad.write_text('[regions]\nNA = ["US"]\n[gateways.G]\nsim_success = { base = 0.9, NA = 1.5 }\n')
    with pytest.raises(ConfigError, match=r"gateways\.G\.sim_success\.NA"):
        load_gateway_sim(bad)
