"""Fraud patterns of the simulated world, as drafts of labelled rows for one day.

Each pattern is what a fraud model should learn and what the legacy core's crude rules catch
only in part:

- card testing: one stolen card, one cheap digital merchant, 8-24 tiny amounts in minutes
  (the legacy velocity rule declines from the 6th on);
- account takeover: a customer's card on a device and IP never seen for them, high amounts
  of resellable goods in the customer's own country (legacy rules see nothing odd);
- cross-border spike: for a few hours, many cards of one country buy at merchants of
  another (legacy refers the larger ones to the issuer);
- compromised merchant: over a window of days, one merchant pushes fraudulent charges on
  many cards (legacy rules see ordinary amounts).

A draft holds integer ids into the World plus amounts in USD-equivalent floats; traffic.py
turns amounts into integer minor units of the merchant's currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from cutover.sim.world import MCC_PROFILES, TAKEOVER_MCCS, TESTING_MCCS, World, hash_ids

DAY_US: Final = 86_400_000_000
MINUTE_US: Final = 60_000_000
HOUR_US: Final = 3_600_000_000

#: Pattern ids carried by drafts (0 is ordinary traffic); the names are the public labels.
PATTERNS: Final = ("none", "card_testing", "account_takeover", "cross_border_spike",
                   "compromised_merchant")
CARD_TESTING, ACCOUNT_TAKEOVER, CROSS_BORDER, COMPROMISED = 1, 2, 3, 4
ECOM: Final = 0  # index of "ecom" in world.CHANNEL_NAMES

#: Expected fraud rows per ordinary row, by pattern: about 1% in all.
CARD_TESTING_EVENTS_PER_ROW: Final = 0.00017   # x ~16 rows per burst
TAKEOVER_EVENTS_PER_ROW: Final = 0.0012        # x ~2 rows per takeover
SPIKE_DAY_PROBABILITY: Final = 0.3
SPIKE_ROWS_PER_ROW: Final = 0.009              # on a spike day
#: Over the whole period; concentrated on the days of the merchant's window.
COMPROMISED_ROWS_PER_ROW: Final = 0.0025


@dataclass(frozen=True)
class Draft:
    """Columns of rows before they become TRAFFIC (ids into the World, not strings yet)."""

    card: np.ndarray        # int64
    merchant: np.ndarray    # int64
    ts_us: np.ndarray       # int64
    amount_usd: np.ndarray  # float64
    channel: np.ndarray     # int8, index into CHANNEL_NAMES
    device: np.ndarray      # object: str or None
    ip: np.ndarray          # object: str or None
    pattern: np.ndarray     # int8, index into PATTERNS

    @property
    def rows(self) -> int:
        return len(self.card)


def concat(drafts: list[Draft]) -> Draft:
    """One draft of all rows of ``drafts``, in order."""
    return Draft(*(np.concatenate([getattr(d, f) for d in drafts])
                   for f in Draft.__dataclass_fields__))


def event_count(rng: np.random.Generator, expected: float) -> int:
    """floor(expected) events plus one more with the fractional part's probability."""
    whole = int(expected)
    return whole + int(rng.random() < expected - whole)


def _new_ids(rng: np.random.Generator, prefix: str, n: int, width: int) -> np.ndarray:
    """Fresh device or IP hashes nobody in the world has used (different random stream)."""
    return hash_ids(prefix, rng.integers(0, min(16**width, 2**62), n, dtype=np.int64), width)


def _merchants_with(world: World, mccs: tuple[str, ...], country: str | None = None) -> np.ndarray:
    mask = np.isin(world.merchant_mcc, mccs)
    if country is not None and (mask & (world.merchant_country == country)).any():
        mask &= world.merchant_country == country
    return np.flatnonzero(mask)


def _draft(card, merchant, ts_us, amount_usd, device, ip, pattern: int) -> Draft:
    n = len(card)
    return Draft(np.asarray(card, np.int64), np.asarray(merchant, np.int64),
                 np.asarray(ts_us, np.int64), np.asarray(amount_usd, np.float64),
                 np.full(n, ECOM, np.int8), device, ip, np.full(n, pattern, np.int8))


def card_testing(world: World, rng: np.random.Generator, day_us: int, events: int) -> Draft:
    """Bursts of tiny amounts: one card, one digital merchant, 8-24 tries within 2-10 min."""
    sizes = rng.integers(8, 25, events)
    n = int(sizes.sum())
    event = np.repeat(np.arange(events), sizes)
    testers = _merchants_with(world, TESTING_MCCS)
    card = rng.integers(0, len(world.card_bin), events)[event]
    merchant = testers[rng.integers(0, len(testers), events)][event]
    start = day_us + rng.integers(0, DAY_US - 10 * MINUTE_US, events)
    span = rng.integers(2 * MINUTE_US, 10 * MINUTE_US, events)
    ts = start[event] + (rng.random(n) * span[event]).astype(np.int64)
    amount = np.round(rng.uniform(0.5, 3.0, n), 2)
    device = _new_ids(rng, "dev_", events, 16)[event]
    ip = _new_ids(rng, "ip_", events, 12)[event]
    return _draft(card, merchant, ts, amount, device, ip, CARD_TESTING)


def account_takeover(world: World, rng: np.random.Generator, day_us: int, events: int) -> Draft:
    """A customer's card on a new device and IP buying 1-3 high-value items within an hour."""
    sizes = rng.integers(1, 4, events)
    n = int(sizes.sum())
    event = np.repeat(np.arange(events), sizes)
    customer = rng.integers(0, len(world.customer_id), events)
    card = world.customer_first_card[customer]
    merchant = np.empty(events, np.int64)
    for i, c in enumerate(customer.tolist()):
        choices = _merchants_with(world, TAKEOVER_MCCS, str(world.customer_country[c]))
        merchant[i] = choices[rng.integers(0, len(choices))]
    start = day_us + rng.integers(0, DAY_US - HOUR_US, events)
    ts = start[event] + rng.integers(0, HOUR_US, n)
    amount = np.minimum(rng.lognormal(np.log(900.0), 0.5, n), 4500.0)
    device = _new_ids(rng, "dev_", events, 16)[event]
    ip = _new_ids(rng, "ip_", events, 12)[event]
    return _draft(card[event], merchant[event], ts, amount, device, ip, ACCOUNT_TAKEOVER)


def cross_border_spike(world: World, rng: np.random.Generator, day_us: int, rows: int) -> Draft:
    """For 2-4 hours, cards of one country buying at ecom merchants of another country."""
    countries = sorted(c for c, ids in world.cards_by_country.items() if len(ids) >= 100)
    source = countries[rng.integers(0, len(countries))]
    target = countries[rng.integers(0, len(countries))]
    while target == source or target not in world.merchants_by_country:
        target = countries[rng.integers(0, len(countries))]
    cards = world.cards_by_country[source]
    shops = _merchants_with(world, ("5732", "5651", "5999", "5816"), target)
    start = day_us + int(rng.integers(0, DAY_US - 4 * HOUR_US))
    ts = start + rng.integers(0, int(rng.integers(2, 5)) * HOUR_US, rows)
    amount = rng.lognormal(np.log(250.0), 0.7, rows)
    return _draft(cards[rng.integers(0, len(cards), rows)], shops[rng.integers(0, len(shops), rows)],
                  ts, amount, _new_ids(rng, "dev_", rows, 16), _new_ids(rng, "ip_", rows, 12),
                  CROSS_BORDER)


def compromised_merchant(world: World, rng: np.random.Generator, day_us: int, rows: int,
                         merchant: int) -> Draft:
    """Fraudulent charges on many cards at one merchant, amounts a little above its usual."""
    profile = list(MCC_PROFILES.values())[int(world.merchant_profile[merchant])]
    card = rng.integers(0, len(world.card_bin), rows)
    ts = day_us + rng.integers(0, DAY_US, rows)
    amount = rng.lognormal(np.log(profile.median_usd * 1.5), 0.5, rows)
    return _draft(card, np.full(rows, merchant), ts, amount, _new_ids(rng, "dev_", rows, 16),
                  _new_ids(rng, "ip_", rows, 12), COMPROMISED)
