"""The simulated world's cast, built from a seed: merchants, customers, cards, devices, gateways.

The traffic generator draws transactions between these; the demo needs the same cards again
to send real-looking requests to the SOAP legacy core. So the world is a pure function of the
seed (cached, read-only arrays) and every card's number (PAN) can be re-derived on demand,
in memory only: the world keeps BINs and account digits, never a PAN, and the traffic store
sees only ``card_token = tokenize_pan(pan, DEMO_TOKEN_KEY)``.

The world's size does not depend on how many rows are generated, so a 1,000-row table and a
1,000,000-row store of one seed share their customers and cards.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa

from cutover.adapters.tokenize import DEMO_TOKEN_KEY, tokenize_pan
from cutover.config import load
from cutover.errors import ConfigError, InputError
from cutover.paths import fixtures_dir
from cutover.sim.legacy_config import BIN_DIGITS, CoreConfig, load_core_config
from cutover.stack.settings import GatewaysFile

CUSTOMERS: Final = 40_000
MERCHANTS: Final = 2_000
#: Each seed stream is tagged so that world, scenario and days never share random numbers.
STREAM_WORLD: Final = 1
STREAM_SCENARIO: Final = 2
STREAM_DAY: Final = 3
SEED_MAX: Final = 2**63 - 1

#: Share of customers and merchants per country (the merchant's country sets its currency).
COUNTRY_WEIGHTS: Final[dict[str, float]] = {
    "US": 28, "GB": 10, "DE": 9, "FR": 6, "NL": 4, "ES": 4, "IT": 4, "IE": 2, "CA": 4,
    "JP": 8, "SG": 3, "AU": 4, "BR": 5, "MX": 3, "NG": 1.5, "AE": 3, "BH": 1.5,
}
#: Hours between local time and UTC per merchant country (whole hours are enough here).
UTC_OFFSET_H: Final[dict[str, int]] = {
    "US": -5, "CA": -5, "GB": 0, "IE": 0, "DE": 1, "FR": 1, "NL": 1, "ES": 1, "IT": 1,
    "JP": 9, "SG": 8, "AU": 10, "BR": -3, "MX": -6, "NG": 1, "AE": 4, "BH": 3,
}
#: Units of each settlement currency per US dollar. Floats only shape simulated amounts; the
#: amounts themselves are rounded to integer minor units before anything sees them.
UNITS_PER_USD: Final[dict[str, float]] = {
    "USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 150.0, "BHD": 0.376, "CAD": 1.36,
    "SGD": 1.35, "AUD": 1.52, "BRL": 5.0, "MXN": 17.0, "NGN": 1500.0, "AED": 3.67,
}
CHANNEL_NAMES: Final = ("ecom", "pos", "moto", "recurring")


@dataclass(frozen=True, slots=True)
class MccProfile:
    """How a merchant category spends: median amount in USD, spread, channel mix, share."""

    median_usd: float
    sigma: float
    channels: tuple[float, float, float, float]  # ecom, pos, moto, recurring
    share: float


MCC_PROFILES: Final[dict[str, MccProfile]] = {
    "5411": MccProfile(40, 0.7, (0.15, 0.85, 0.0, 0.0), 16),   # grocery
    "5812": MccProfile(35, 0.6, (0.20, 0.80, 0.0, 0.0), 12),   # restaurants
    "5541": MccProfile(45, 0.4, (0.0, 1.0, 0.0, 0.0), 8),      # fuel
    "5651": MccProfile(80, 0.7, (0.55, 0.45, 0.0, 0.0), 10),   # apparel
    "5732": MccProfile(250, 0.8, (0.60, 0.35, 0.05, 0.0), 6),  # electronics
    "5816": MccProfile(10, 0.8, (0.95, 0.0, 0.0, 0.05), 8),    # digital goods
    "5734": MccProfile(30, 0.8, (0.70, 0.0, 0.0, 0.30), 5),    # software
    "4899": MccProfile(15, 0.4, (0.15, 0.0, 0.0, 0.85), 6),    # streaming, cable
    "4511": MccProfile(400, 0.6, (0.80, 0.10, 0.10, 0.0), 4),  # airlines
    "7011": MccProfile(300, 0.6, (0.50, 0.40, 0.10, 0.0), 5),  # hotels
    "7995": MccProfile(60, 1.0, (0.90, 0.10, 0.0, 0.0), 3),    # gambling
    "4829": MccProfile(200, 0.9, (0.85, 0.05, 0.10, 0.0), 3),  # money transfer
    "5944": MccProfile(500, 0.8, (0.40, 0.50, 0.10, 0.0), 2),  # jewelry
    "5999": MccProfile(60, 0.9, (0.50, 0.50, 0.0, 0.0), 12),   # misc retail
}
#: Where fraudsters test stolen cards: cheap digital goods, no shipping address needed.
TESTING_MCCS: Final = ("5816", "5734")
#: What an account taker buys: resellable, high-value goods.
TAKEOVER_MCCS: Final = ("5732", "5944", "4511")

_PAN_STRIDE: Final = 387_420_489  # 3**18: coprime with 10**9, so account digits never repeat
_ACCOUNT_SPACE: Final = 10**9


@dataclass(frozen=True, eq=False)
class GatewaySim:
    """The gateways' true behaviour (gateways.toml ``sim_success``); the stack never sees it."""

    names: tuple[str, ...]
    #: success[g, r]: probability that gateway g settles a card of region r (REGIONS order).
    success: np.ndarray
    regions: tuple[str, ...]
    region_of_country: Mapping[str, str]
    currency_of_country: Mapping[str, str]


@dataclass(frozen=True, eq=False)
class World:
    """Every actor of one seed; arrays are read-only and indexed by integer ids."""

    seed: int
    cfg: CoreConfig
    gateways: GatewaySim
    merchant_id: np.ndarray        # U6
    merchant_mcc: np.ndarray       # U4
    merchant_country: np.ndarray   # U2
    merchant_currency: np.ndarray  # U3
    merchant_profile: np.ndarray   # int: index into MCC_PROFILES
    merchants_by_country: Mapping[str, tuple[np.ndarray, np.ndarray]]  # ids, cumulative weight
    customer_id: np.ndarray        # U8
    customer_country: np.ndarray   # U2
    customer_cum_weight: np.ndarray
    customer_first_card: np.ndarray
    customer_cards: np.ndarray     # 1 or 2
    customer_first_device: np.ndarray
    customer_devices: np.ndarray   # 1 to 3
    customer_ip: np.ndarray        # object (str)
    device_hash: np.ndarray        # object (str)
    card_customer: np.ndarray
    card_bin: np.ndarray           # U6
    card_country: np.ndarray       # U2
    card_account: np.ndarray       # int64, 9 digits of the PAN after the BIN
    card_token: np.ndarray         # object (str)
    cards_by_country: Mapping[str, np.ndarray]

    @functools.cached_property
    def card_of_token(self) -> dict[str, int]:
        """Token -> card id, for turning stored rows back into cards (demo requests)."""
        return {token: i for i, token in enumerate(self.card_token)}



#: Hex digits 0-9 spelled g-p: a 16-digit all-decimal hash is Luhn-valid one time in ten, and
#: the importer's PAN scan would rightly quarantine it; simulated ids must never look like cards.
_NO_DIGITS: Final = str.maketrans("0123456789", "ghijklmnop")


def hash_ids(prefix: str, values: np.ndarray, width: int) -> np.ndarray:
    """Device or IP hashes as the legacy core logs them, spelled without decimal digits."""
    return np.array([prefix + f"{v:0{width}x}".translate(_NO_DIGITS) for v in values.tolist()],
                    dtype=object)

def _readonly(**arrays: np.ndarray) -> dict[str, np.ndarray]:
    for array in arrays.values():
        array.setflags(write=False)
    return arrays


def load_gateway_sim(path: Path | None = None) -> GatewaySim:
    """Read regions, settlement currencies and ``sim_success`` from gateways.toml."""
    source = fixtures_dir() / "gateways.toml" if path is None else Path(path)
    doc = load(GatewaysFile, source)
    regions = tuple(doc.regions)
    region_of_country = {c: r for r, countries in doc.regions.items() for c in countries}
    names = tuple(doc.gateways)
    if not regions:
        raise ConfigError(f"{source}: need [regions] and at least one [gateways.*]")
    success = np.zeros((len(names), len(regions)), dtype=np.float64)
    for g, name in enumerate(names):
        table = doc.gateways[name].sim_success
        if "base" not in table:
            raise ConfigError(f"{source}: key 'gateways.{name}.sim_success' needs at least 'base'")
        for r, region in enumerate(regions):
            success[g, r] = table.get(region, table["base"])
    success.setflags(write=False)
    return GatewaySim(names, success, regions, region_of_country, dict(doc.currencies))


def _weights(keys: Iterable[str], table: Mapping[str, float]) -> np.ndarray:
    w = np.array([table[k] for k in keys], dtype=np.float64)
    return w / w.sum()


def _build_merchants(rng: np.random.Generator, sim: GatewaySim) -> dict[str, np.ndarray]:
    countries = list(COUNTRY_WEIGHTS)
    mccs = list(MCC_PROFILES)
    country = np.array(countries)[rng.choice(len(countries), MERCHANTS,
                                             p=_weights(countries, COUNTRY_WEIGHTS))]
    shares = {k: p.share for k, p in MCC_PROFILES.items()}
    profile = rng.choice(len(mccs), MERCHANTS, p=_weights(mccs, shares))
    missing = sorted(set(countries) - set(sim.currency_of_country))
    if missing:
        raise ConfigError(f"gateways.toml: [currencies] has no settlement currency for {missing}")
    currency = np.array([sim.currency_of_country[c] for c in country])
    return _readonly(merchant_id=np.array([f"M{i:05d}" for i in range(MERCHANTS)]),
                     merchant_mcc=np.array(mccs)[profile], merchant_country=country,
                     merchant_currency=currency, merchant_profile=profile,
                     merchant_popularity=rng.pareto(1.3, MERCHANTS) + 1.0)


def _by_group(keys: np.ndarray, weight: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Group ids by key with cumulative normalised weights, for searchsorted sampling."""
    out = {}
    for key in np.unique(keys):
        ids = np.flatnonzero(keys == key)
        cum = np.cumsum(weight[ids])
        out[str(key)] = (ids, cum / cum[-1])
    return out


def _issue_bins(rng: np.random.Generator, country: np.ndarray, cfg: CoreConfig) -> np.ndarray:
    """A BIN per card, uniform over one of the issuing ranges of the card's country."""
    numbers = np.zeros(len(country), dtype=np.int64)
    for code in np.unique(country):
        rows = np.flatnonzero(country == code)
        ranges = np.flatnonzero(cfg.bin_countries == code)
        if len(ranges) == 0:
            raise ConfigError(f"bins.toml: no BIN range issues cards of {code}")
        pick = ranges[rng.integers(0, len(ranges), len(rows))]
        span = cfg.bin_ends[pick] - cfg.bin_starts[pick] + 1
        numbers[rows] = cfg.bin_starts[pick] + (rng.random(len(rows)) * span).astype(np.int64)
    return np.char.zfill(numbers.astype(str), BIN_DIGITS)


def luhn_check_digit(payload: np.ndarray) -> np.ndarray:
    """Luhn check digit for each row of ``payload`` (n, k) digits, vectorised."""
    k = payload.shape[1]
    doubled = (k - np.arange(k)) % 2 == 1  # every second digit from the right of the payload
    d = np.where(doubled, payload * 2, payload)
    d = np.where(d > 9, d - 9, d)
    return (10 - d.sum(axis=1) % 10) % 10


def _pans(card_bin: np.ndarray, card_account: np.ndarray) -> list[str]:
    """16-digit PANs: BIN, nine account digits, Luhn digit. Callers must not persist them."""
    payload_text = np.char.add(card_bin.astype(str), np.char.zfill(card_account.astype(str), 9))
    digits = payload_text.astype("U15").view(np.uint32).reshape(len(payload_text), 15) - ord("0")
    check = luhn_check_digit(digits.astype(np.int64))
    return [f"{p}{c}" for p, c in zip(payload_text.tolist(), check.tolist(), strict=True)]


def _build_customers(rng: np.random.Generator, cfg: CoreConfig) -> dict[str, np.ndarray]:
    countries = list(COUNTRY_WEIGHTS)
    home = np.array(countries)[rng.choice(len(countries), CUSTOMERS,
                                          p=_weights(countries, COUNTRY_WEIGHTS))]
    cards = 1 + (rng.random(CUSTOMERS) < 0.3)
    devices = rng.integers(1, 4, CUSTOMERS)
    first_card = np.concatenate([[0], np.cumsum(cards)[:-1]])
    first_device = np.concatenate([[0], np.cumsum(devices)[:-1]])
    card_customer = np.repeat(np.arange(CUSTOMERS), cards)
    abroad = rng.random(len(card_customer)) < 0.04
    card_country = np.where(abroad, np.unique(cfg.bin_countries)[
        rng.integers(0, len(np.unique(cfg.bin_countries)), len(card_customer))],
        home[card_customer]).astype("U2")
    activity = rng.lognormal(0.0, 0.9, CUSTOMERS)
    return _readonly(
        customer_id=np.array([f"C{i:07d}" for i in range(CUSTOMERS)]), customer_country=home,
        customer_cum_weight=np.cumsum(activity) / activity.sum(),
        customer_first_card=first_card, customer_cards=cards,
        customer_first_device=first_device, customer_devices=devices,
        customer_ip=hash_ids("ip_", rng.integers(0, 2**48, CUSTOMERS), 12),
        device_hash=hash_ids("dev_", rng.integers(0, 2**62, int(devices.sum())), 16),
        card_customer=card_customer, card_country=card_country,
        card_bin=_issue_bins(rng, card_country, cfg),
    )


def _seed_sequence(seed: int, *stream: int) -> np.random.SeedSequence:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise InputError(f"seed must be an integer in [0, {SEED_MAX}], got {seed!r}")
    return np.random.SeedSequence([seed, *stream])


def rng_for(seed: int, *stream: int) -> np.random.Generator:
    """The generator of one named stream of ``seed`` (world, scenario, or one day)."""
    return np.random.Generator(np.random.PCG64(_seed_sequence(seed, *stream)))


@functools.lru_cache(maxsize=4)
def build_world(seed: int) -> World:
    """The world of ``seed``; the same seed always gives the same actors and card tokens."""
    rng = rng_for(seed, STREAM_WORLD)
    cfg = load_core_config()
    sim = load_gateway_sim()
    unplaced = sorted(set(cfg.bin_countries.tolist()) - set(sim.region_of_country))
    if unplaced:
        raise ConfigError(f"gateways.toml: [regions] places no region on card countries {unplaced}")
    merchants = _build_merchants(rng, sim)
    customers = _build_customers(rng, cfg)
    n_cards = len(customers["card_customer"])
    offset = int(rng.integers(0, _ACCOUNT_SPACE))
    account = (np.arange(n_cards, dtype=np.int64) * _PAN_STRIDE + offset) % _ACCOUNT_SPACE
    key = DEMO_TOKEN_KEY.encode()
    tokens = np.array([tokenize_pan(p, key) for p in _pans(customers["card_bin"], account)],
                      dtype=object)
    popularity = merchants.pop("merchant_popularity")
    return World(
        seed=seed, cfg=cfg, gateways=sim, **merchants,
        merchants_by_country=_by_group(merchants["merchant_country"], popularity),
        **customers, **_readonly(card_account=account, card_token=tokens),
        cards_by_country={str(c): np.flatnonzero(customers["card_country"] == c)
                          for c in np.unique(customers["card_country"])},
    )


def pans_for(card_tokens: Iterable[str], seed: int) -> list[str]:
    """The PAN behind each token of the world of ``seed``, in memory only: never persist it.

    Raises InputError naming a token that is no card of this world (another seed, or a
    token made with another key).
    """
    world = build_world(seed)
    ids = []
    for token in card_tokens:
        if token not in world.card_of_token:
            raise InputError(f"card_token {token!r} is not a card of the world of seed {seed}")
        ids.append(world.card_of_token[token])
    index = np.array(ids, dtype=np.int64)
    return _pans(world.card_bin[index], world.card_account[index]) if ids else []


#: The canonical request fields the SOAP adapter maps (cutover/fixtures/mappings/legacy_auth.toml).
REQUEST_FIELDS: Final = ("txn_id", "ts", "merchant_id", "mcc", "customer_id", "card_token",
                         "card_bin", "amount_minor", "currency", "merchant_country", "channel")
STREAM_SAMPLE: Final = 4


def sample_requests(table: pa.Table | pa.RecordBatch, n: int, seed: int) -> list[dict]:
    """``n`` rows of generated traffic (time order) as request dicts, each with its ``pan``.

    ``seed`` is the seed the table was generated with: it names the world whose cards the
    tokens belong to, and also picks the sample. The dicts carry REQUEST_FIELDS plus ``pan``
    (what `cassette.record_calls` puts on the wire); ``ts`` is ISO 8601 text in UTC. They
    live in memory only: never write them out.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InputError(f"n must be a non-negative integer, got {n!r}")
    missing = [f for f in REQUEST_FIELDS if f not in table.column_names]
    if missing:
        raise InputError(f"table lacks request columns {missing}")
    k = min(n, table.num_rows)
    picked = np.sort(rng_for(seed, STREAM_SAMPLE).choice(table.num_rows, k, replace=False))
    rows = table.select(list(REQUEST_FIELDS)).take(picked).to_pylist()
    for row, pan in zip(rows, pans_for([r["card_token"] for r in rows], seed), strict=True):
        row["ts"] = row["ts"].isoformat()
        row["pan"] = pan
    return rows
