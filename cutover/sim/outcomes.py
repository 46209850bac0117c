"""What follows the legacy decision in the simulated world: settlement at the gateway, the
legacy core's latency, and the labels that arrive weeks later.

Kept apart from the row drawing in ``traffic`` because these are the ground truth a
candidate stack is judged against: gateway success by card region, currency and outage, and
fraud and chargeback labels with the time they become known (``label_ts``).
"""

from __future__ import annotations

import functools
from typing import Final

import numpy as np

from cutover.sim.scenario import DAY_US, Scenario, in_outage
from cutover.sim.world import World

CHARGEBACK_FRAUD: Final = 0.90
DISPUTE_SHARE: Final = 0.002
LABEL_LAG_MIN_US: Final = 3 * DAY_US
LABEL_WINDOW_US: Final = 45 * DAY_US
#: A card paying in a currency other than its country's settles a little less often.
FOREIGN_CURRENCY_SUCCESS: Final = 0.95
#: Inside an outage window a gateway settles only this share.
OUTAGE_SUCCESS: Final = 0.10
OUTAGE_LATENCY_FACTOR: Final = 2.5
LATENCY_MEDIAN_MS: Final = 120.0
LATENCY_SIGMA: Final = 0.35
LATENCY_MS_MAX: Final = 30_000


@functools.lru_cache(maxsize=4)
def _card_lookups(world: World) -> tuple[np.ndarray, np.ndarray]:
    """(region index, home currency) per card."""
    sim = world.gateways
    region = {name: i for i, name in enumerate(sim.regions)}
    card_region = np.array([region[sim.region_of_country[c]] for c in world.card_country])
    home_currency = np.array([sim.currency_of_country.get(c, "") for c in world.card_country])
    return card_region, home_currency


def settlement(world: World, scenario: Scenario, rng: np.random.Generator, card: np.ndarray,
               currency: np.ndarray, route: np.ndarray,
               ts_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gateway_ok, legacy_latency_ms) per row.

    Success is the route's ``sim_success`` for the card's region, lowered for a foreign
    currency and collapsed inside the gateway's outage windows, where latency also grows.
    """
    card_region, home_currency = _card_lookups(world)
    names = world.gateways.names
    gateway = np.select([route == name for name in names], list(range(len(names))), default=0)
    success = world.gateways.success[gateway, card_region[card]]
    success = np.where(currency != home_currency[card], success * FOREIGN_CURRENCY_SUCCESS, success)
    down = in_outage(scenario, gateway, ts_us)
    success = np.where(down, OUTAGE_SUCCESS, success)
    ok = rng.random(len(card)) < success
    latency = rng.lognormal(np.log(LATENCY_MEDIAN_MS), LATENCY_SIGMA, len(card))
    latency = np.where(down, latency * OUTAGE_LATENCY_FACTOR, latency)
    return ok, np.clip(np.rint(latency), 1, LATENCY_MS_MAX).astype(np.int32)


def labels(rng: np.random.Generator, pattern: np.ndarray, approved: np.ndarray,
           ts_us: np.ndarray) -> dict[str, np.ndarray]:
    """is_fraud, chargeback and label_ts (microseconds) per row; see traffic's docstring."""
    n = len(pattern)
    is_fraud = pattern > 0
    draw = rng.random(n)
    chargeback = approved & np.where(is_fraud, draw < CHARGEBACK_FRAUD, draw < DISPUTE_SHARE)
    # Most reports come in the first two weeks; none before 3 days or after 45.
    lag = LABEL_LAG_MIN_US + rng.beta(1.5, 4.0, n) * (LABEL_WINDOW_US - LABEL_LAG_MIN_US)
    known_early = is_fraud | chargeback
    label_ts = ts_us + np.where(known_early, lag.astype(np.int64), LABEL_WINDOW_US)
    return {"is_fraud": is_fraud, "chargeback": chargeback, "label_ts": label_ts}
