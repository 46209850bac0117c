"""Routing: per transaction, the allowed gateway with the best expected value, and its fee.

Policy (documented here because it decides where money goes):

    expected value of gateway g = p_success(g) * amount_minor - fee_minor(g)

among the gateways allowed for the card: the card's region (from its issuing country, in
cutover/fixtures/gateways.toml ``[regions]``) must be in the gateway's ``regions`` (data residency),
and the gateway must price the transaction's currency. Ties go to the gateway first in name
order, so a route never depends on dict order. No allowed gateway: no route (rule ``no_route``).

``p_success`` comes from ``SuccessTable``, learned from recorded gateway outcomes
(``gateway_ok`` of the route the legacy core took), never from the simulator's ``sim_success``.

Gateway health (``cutover.stack.health``) comes after residency: an allowed gateway that is
skipped for health is left out, unless every allowed gateway is skipped, in which case none is
(residency is a law, health a preference: a degraded gateway still settles some payments,
while no route declines them all). When the gateway that would have won was skipped, the row
carries its name in ``skipped``, which becomes the reason code ``route:skipped_unhealthy:<gw>``.

Fees are exact integers: ``floor((amount_minor * fee_bps + 5000) / 10000) + fixed_minor``,
i.e. basis points rounded half up to a whole minor unit, the same rounding as the legacy core.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.config import load
from cutover.paths import fixtures_dir
from cutover.stack.settings import GatewaysFile

BPS_DENOMINATOR: Final = 10_000
HALF_UP: Final = BPS_DENOMINATOR // 2
#: How many recorded outcomes a cell's own rate is worth against its parent's (smoothing).
SMOOTHING_N: Final = 20.0
HOURS: Final = 24
OTHER: Final = "OTHER"
HOUR_US: Final = 3_600_000_000


@dataclass(frozen=True)
class Gateways:
    """Gateways (sorted by name) with their prices and the regions they may carry."""

    names: tuple[str, ...]
    fee_bps: dict[str, int]
    fixed_minor: dict[str, dict[str, int]]
    regions: dict[str, frozenset[str]]
    country_region: dict[str, str]
    source: str = ""


def load_gateways(path: Path | None = None) -> Gateways:
    """Read cutover/fixtures/gateways.toml (prices, residency); ``sim_success`` is ignored."""
    path = Path(path) if path else fixtures_dir() / "gateways.toml"
    doc = load(GatewaysFile, path)
    names = tuple(sorted(doc.gateways))
    return Gateways(
        names=names,
        fee_bps={g: doc.gateways[g].fee_bps for g in names},
        fixed_minor={g: dict(doc.gateways[g].fixed_minor) for g in names},
        regions={g: frozenset(doc.gateways[g].regions) for g in names},
        country_region={c: r for r, cs in doc.regions.items() for c in cs},
        source=str(path),
    )


def fee_minor(amount_minor: np.ndarray, fee_bps: int, fixed_minor: np.ndarray) -> np.ndarray:
    """Exact fee in minor units (int64): bps rounded half up, plus the fixed part."""
    amount = np.asarray(amount_minor, dtype=np.int64)
    return (amount * fee_bps + HALF_UP) // BPS_DENOMINATOR + np.asarray(fixed_minor, np.int64)


def vocab_index(values: pa.Array, vocab: list[str]) -> np.ndarray:
    """Index of each value in ``vocab``; anything unknown maps to the last entry (OTHER)."""
    idx = pc.index_in(values, value_set=pa.array(vocab[:-1], pa.string()))
    return idx.fill_null(len(vocab) - 1).to_numpy(zero_copy_only=False).astype(np.int64)


@dataclass
class SuccessTable:
    """p(gateway accepts) by gateway x card region x currency x hour of day, smoothed upward."""

    gateways: list[str]
    regions: list[str]
    currencies: list[str]
    p: np.ndarray  # shape (gateways, regions, currencies, HOURS)
    rows: int = 0

    def lookup(self, gateway: int, region: np.ndarray, currency: np.ndarray,
               hour: np.ndarray) -> np.ndarray:
        return self.p[gateway, region, currency, hour]

    def index_of(self, vocab: list[str], value: str | None) -> int:
        """The scalar twin of ``vocab_index``: position in ``vocab``, else the last entry (OTHER)."""
        try:
            return vocab.index(value, 0, len(vocab) - 1)
        except ValueError:
            return len(vocab) - 1

    def to_json(self) -> dict[str, Any]:
        return {"gateways": self.gateways, "regions": self.regions, "currencies": self.currencies,
                "rows": self.rows, "p": np.round(self.p, 6).tolist()}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> SuccessTable:
        return cls(list(doc["gateways"]), list(doc["regions"]), list(doc["currencies"]),
                   np.asarray(doc["p"], dtype=np.float64), int(doc.get("rows", 0)))


def fit_success(gw: Gateways, route: pa.Array, card_country: pa.Array, currency: pa.Array,
                ts_us: np.ndarray, ok: pa.Array) -> SuccessTable:
    """Learn the table from recorded outcomes (rows with a route and a known ``gateway_ok``)."""
    regions = sorted(set(gw.country_region.values())) + [OTHER]
    currencies = sorted({c for fx in gw.fixed_minor.values() for c in fx}) + [OTHER]
    keep = pc.and_(pc.is_valid(route), pc.is_valid(ok)).to_numpy(zero_copy_only=False)
    g = vocab_index(route, list(gw.names) + [OTHER])[keep]
    r = vocab_index(region_of(gw, card_country), regions)[keep]
    c = vocab_index(currency, currencies)[keep]
    h = ((ts_us // HOUR_US) % HOURS)[keep]
    y = ok.to_numpy(zero_copy_only=False)[keep].astype(np.float64)
    shape = (len(gw.names) + 1, len(regions), len(currencies), HOURS)
    n, s = np.zeros(shape), np.zeros(shape)
    np.add.at(n, (g, r, c, h), 1.0)
    np.add.at(s, (g, r, c, h), y)
    p0 = (s.sum() + 1.0) / (n.sum() + 1.0) if n.sum() else 0.9
    # Smooth each level towards its parent: gateway, then region, then currency, then hour.
    p = np.full(shape, p0)
    for axes in ((1, 2, 3), (2, 3), (3,), ()):
        ns = n.sum(axis=axes, keepdims=True) if axes else n
        ss = s.sum(axis=axes, keepdims=True) if axes else s
        p = (ss + SMOOTHING_N * p) / (ns + SMOOTHING_N)
    return SuccessTable(list(gw.names), regions, currencies, p[:-1], rows=int(keep.sum()))


def region_of(gw: Gateways, card_country: pa.Array) -> pa.Array:
    """The residency region of each card country (null when in no region)."""
    countries = list(gw.country_region)
    idx = pc.index_in(card_country, value_set=pa.array(countries, pa.string()))
    return pc.take(pa.array([gw.country_region[c] for c in countries], pa.string()), idx)


@dataclass
class Routes:
    """Per row: chosen gateway (None: no allowed gateway), its fee, p_success, next best."""

    route: np.ndarray
    fee_minor: np.ndarray
    p_success: np.ndarray
    alt_route: np.ndarray
    #: The gateway that would have won but was skipped for health, else None.
    skipped: np.ndarray | None = None


def choose_routes(gw: Gateways, table: SuccessTable, card_country: pa.Array, currency: pa.Array,
                  amount_minor: np.ndarray, ts_us: np.ndarray,
                  skip: np.ndarray | None = None) -> Routes:
    """Best and second-best allowed gateway per row by expected value (vectorised).

    ``skip`` (gateways x rows, from ``GatewayHealth.skip_matrix``) marks gateways skipped for
    health at each row's time.
    """
    n = len(amount_minor)
    region = region_of(gw, card_country)
    r = vocab_index(region, table.regions)
    c = vocab_index(currency, table.currencies)
    h = (ts_us // HOUR_US) % HOURS
    amount = np.asarray(amount_minor, dtype=np.int64)
    ev = np.full((len(gw.names), n), -np.inf)
    fees = np.zeros((len(gw.names), n), np.int64)
    ps = np.zeros((len(gw.names), n))
    for i, name in enumerate(gw.names):
        fixed_map = gw.fixed_minor[name]
        fixed_idx = pc.index_in(currency, value_set=pa.array(list(fixed_map), pa.string()))
        priced = pc.is_valid(fixed_idx).to_numpy(zero_copy_only=False)
        fixed = np.array(list(fixed_map.values()) + [0], np.int64)[
            fixed_idx.fill_null(len(fixed_map)).to_numpy(zero_copy_only=False)]
        allowed = priced & pc.is_in(region, value_set=pa.array(sorted(gw.regions[name]),
                                                               pa.string())).to_numpy(zero_copy_only=False)
        fees[i] = fee_minor(amount, gw.fee_bps[name], fixed)
        ps[i] = table.lookup(table.gateways.index(name), r, c, h)
        ev[i] = np.where(allowed, ps[i] * amount - fees[i], -np.inf)
    if skip is None or not skip.any():
        return _pick(gw.names, ev, fees, ps)
    return _pick_healthy(gw.names, ev, fees, ps, skip)


def _pick_healthy(names: tuple[str, ...], ev: np.ndarray, fees: np.ndarray, ps: np.ndarray,
                  skip: np.ndarray) -> Routes:
    """``_pick`` without the skipped gateways, on rows where an allowed one remains."""
    healthy = np.where(skip, -np.inf, ev)
    applies = np.isfinite(healthy).any(axis=0)
    cols = np.arange(ev.shape[1])
    # argmax takes the first of equal values: the same name-order tie-break as _pick.
    would = np.argmax(ev, axis=0)
    lost = applies & skip[would, cols] & np.isfinite(ev[would, cols])
    routes = _pick(names, np.where(applies, healthy, ev), fees, ps)
    names_arr = np.array(list(names), dtype=object)
    routes.skipped = np.where(lost, names_arr[would], None).astype(object)
    return routes


def _pick(names: tuple[str, ...], ev: np.ndarray, fees: np.ndarray, ps: np.ndarray) -> Routes:
    n = ev.shape[1]
    cols = np.arange(n)
    # A stable sort on -ev keeps name order among equal values: deterministic ties.
    ranked = np.argsort(-ev, axis=0, kind="stable")
    best = ranked[0] if n else np.zeros(0, np.int64)
    has = np.isfinite(ev[best, cols]) if n else np.zeros(0, bool)
    names_arr = np.array(list(names) + [None], dtype=object)
    route = np.where(has, names_arr[best], None)
    if len(names) > 1:
        second = ranked[1]
        alt = np.where(np.isfinite(ev[second, cols]), names_arr[second], None)
    else:
        alt = np.full(n, None, dtype=object)
    return Routes(route=route.astype(object), fee_minor=np.where(has, fees[best, cols], 0),
                  p_success=np.where(has, ps[best, cols], np.nan), alt_route=alt.astype(object))


def choose_route_one(gw: Gateways, table: SuccessTable, card_country: str | None,
                     currency: str | None, amount_minor: int, ts_us: int,
                     skip: frozenset[str] = frozenset()
                     ) -> tuple[str | None, int, float, str | None, str | None]:
    """The scalar twin of ``choose_routes`` for one online decision:
    (route, fee, p, alt, gateway skipped for health or None).

    Same arithmetic in the same order (so the same floats), same tie-break (name order).
    """
    region = gw.country_region.get(card_country) if card_country is not None else None
    r = table.index_of(table.regions, region)
    c = table.index_of(table.currencies, currency)
    h = (ts_us // HOUR_US) % HOURS
    ranked = []
    for i, name in enumerate(gw.names):
        fixed = gw.fixed_minor[name].get(currency) if currency is not None else None
        if fixed is None or region not in gw.regions[name]:
            continue
        fee = (int(amount_minor) * gw.fee_bps[name] + HALF_UP) // BPS_DENOMINATOR + fixed
        p = table.p[table.gateways.index(name), r, c, h]
        ranked.append((-(p * np.int64(amount_minor) - np.int64(fee)), i, name, fee, float(p)))
    if not ranked:
        return None, 0, float("nan"), None, None
    ranked.sort(key=lambda x: (x[0], x[1]))
    skipped = None
    healthy = [r for r in ranked if r[2] not in skip]
    if healthy and len(healthy) < len(ranked):
        skipped = ranked[0][2] if ranked[0][2] in skip else None
        ranked = healthy
    _, _, name, fee, p = ranked[0]
    return name, int(fee), p, ranked[1][2] if len(ranked) > 1 else None, skipped
