"""Loading the simulated legacy core's static rules into one frozen, validated object.

The decision logic in ``legacy_rules`` is pure; this module is the only place that reads its
four files (core.toml, bins.toml, gateways.toml, legacy_codes.toml). Every bad value raises a
ConfigError naming the file and the key, so a typo in a limit never becomes a wrong decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final

import numpy as np
from pydantic import Field

from cutover.adapters.codes import CodeTable
from cutover.config import StrictModel, config_model, load
from cutover.domain import MoneyError, currency_exponent, parse_money
from cutover.errors import ConfigError
from cutover.paths import fixtures_dir
from cutover.stack.settings import GatewaysFile

CORE_RELPATH: Final = Path("legacy") / "core.toml"
BINS_RELPATH: Final = Path("bins.toml")
GATEWAYS_RELPATH: Final = Path("gateways.toml")
#: A BIN is exactly this many digits.
BIN_DIGITS: Final = 6
#: Limits and thresholds above this are refused: fee arithmetic (amount * bps) must fit int64.
AMOUNT_MINOR_MAX: Final = 10**14

Bin = Annotated[str, Field(pattern=r"^[0-9]{6}$", description="exactly six digits")]
MoneyList = Annotated[list[str], Field(min_length=1, description='money strings, e.g. "500.00 USD"')]


class BinRange(StrictModel):
    """One issuer range: inclusive BINs, the issuing country and the scheme."""

    start: Bin
    end: Bin
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166 alpha-2")
    scheme: str | None = None


@config_model("simulated BIN table", "cutover/fixtures/bins.toml")
class BinsFile(StrictModel):
    """BIN ranges of the simulated card issuers (inclusive, not overlapping)."""

    ranges: list[BinRange] = Field(min_length=1)


class CoreBlocklist(StrictModel):
    """Cards the legacy core declines outright."""

    card_countries: list[str] = Field(default_factory=list, description="ISO 3166 alpha-2")


class CoreVelocity(StrictModel):
    """The legacy core's velocity cap."""

    txn_per_hour_max: int = Field(ge=1, description="payments per card per hour")


class CoreSuspicion(StrictModel):
    """Amounts above which the legacy core reviews."""

    moto_over: MoneyList
    foreign_review_over: MoneyList


class CoreRoute(StrictModel):
    """One static route."""

    bin_start: Bin
    bin_end: Bin
    currencies: list[str] | None = Field(None, description="any currency when absent")
    gateway: str


class CoreRouting(StrictModel):
    """The legacy core's static routing table."""

    default: str = Field(description="gateway when no route matches")
    routes: list[CoreRoute] = Field(default_factory=list)


@config_model("simulated legacy core", "cutover/fixtures/legacy/core.toml; `sim legacy --core FILE`")
class CoreFile(StrictModel):
    """The simulated legacy core's static rules: limits, blocklist, velocity, suspicion, routes."""

    limits: dict[str, MoneyList] = Field(description='"default" and MCC -> amount caps')
    blocklist: CoreBlocklist = CoreBlocklist()
    velocity: CoreVelocity
    suspicion: CoreSuspicion
    routing: CoreRouting


@dataclass(frozen=True, slots=True)
class Route:
    """One static route: BINs in [bin_start, bin_end] and a currency in ``currencies``."""

    bin_start: int
    bin_end: int
    currencies: frozenset[str] | None
    gateway: str


@dataclass(frozen=True, slots=True)
class Gateway:
    """A gateway's price: basis points of the amount plus a fixed part per currency."""

    fee_bps: int
    fixed_minor: Mapping[str, int]


@dataclass(frozen=True, eq=False)
class CoreConfig:
    """Everything the legacy core decides with; built by ``load_core_config``."""

    bin_starts: np.ndarray            # int64, sorted
    bin_ends: np.ndarray              # int64
    bin_countries: np.ndarray         # str
    limits_default: Mapping[str, int]             # currency -> amount_minor
    limits_by_mcc: Mapping[tuple[str, str], int]  # (mcc, currency) -> amount_minor
    blocked_countries: frozenset[str]
    velocity_txn_per_hour_max: int
    moto_over: Mapping[str, int]
    foreign_review_over: Mapping[str, int]
    routes: tuple[Route, ...]
    default_gateway: str
    gateways: Mapping[str, Gateway]
    codes: CodeTable
    sources: tuple[str, ...] = field(default=())

    @property
    def currencies(self) -> frozenset[str]:
        """The currencies this core processes (the keys of the default limits)."""
        return frozenset(self.limits_default)


def _money_list(values: Any, key: str, path: Path) -> dict[str, int]:
    """``["5000.00 USD", ...]`` -> {"USD": 500000}; one amount per currency, positive."""
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{path}: key {key!r} must be a non-empty list of money strings")
    out: dict[str, int] = {}
    for text in values:
        try:
            money = parse_money(text)
        except MoneyError as exc:
            raise ConfigError(f"{path}: key {key!r}: {exc}") from exc
        if money.currency in out:
            raise ConfigError(f"{path}: key {key!r} lists {money.currency} twice")
        if not 0 < money.amount_minor <= AMOUNT_MINOR_MAX:
            raise ConfigError(f"{path}: key {key!r}: {text!r} must be positive and at most "
                              f"{AMOUNT_MINOR_MAX} minor units")
        out[money.currency] = money.amount_minor
    return out


def _load_bins(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = []
    for i, item in enumerate(load(BinsFile, path).ranges):
        if item.end < item.start:
            raise ConfigError(f"{path}: key 'ranges[{i}]': need start <= end")
        rows.append((int(item.start), int(item.end), item.country))
    rows.sort()
    for (_, end_a, _), (start_b, _, _) in zip(rows, rows[1:], strict=False):
        if start_b <= end_a:
            raise ConfigError(f"{path}: BIN ranges overlap at {start_b:06d}")
    starts = np.array([r[0] for r in rows], dtype=np.int64)
    ends = np.array([r[1] for r in rows], dtype=np.int64)
    return starts, ends, np.array([r[2] for r in rows], dtype=str)


def _load_gateways(path: Path) -> dict[str, Gateway]:
    out = {}
    for name, spec in load(GatewaysFile, path).gateways.items():
        for currency in spec.fixed_minor:
            try:
                currency_exponent(currency)
            except MoneyError as exc:
                raise ConfigError(f"{path}: key 'gateways.{name}.fixed_minor': {exc}") from exc
        out[name] = Gateway(fee_bps=spec.fee_bps, fixed_minor=dict(spec.fixed_minor))
    return out


def _load_routes(routing: CoreRouting, gateways: Mapping[str, Gateway],
                 path: Path) -> tuple[tuple[Route, ...], str]:
    routes = tuple(Route(int(r.bin_start), int(r.bin_end),
                         frozenset(r.currencies) if r.currencies is not None else None, r.gateway)
                   for r in routing.routes)
    for name in [routing.default, *(r.gateway for r in routes)]:
        if name not in gateways:
            raise ConfigError(f"{path}: key 'routing': unknown gateway {name!r}")
    return routes, routing.default


def _check_coverage(cfg: CoreConfig, path: Path) -> None:
    """Every processed currency needs every threshold and every gateway's fixed fee."""
    for key, table in (("suspicion.moto_over", cfg.moto_over),
                       ("suspicion.foreign_review_over", cfg.foreign_review_over)):
        missing = sorted(cfg.currencies - set(table))
        if missing:
            raise ConfigError(f"{path}: key {key!r} has no amount for {missing}")
    for name, gateway in cfg.gateways.items():
        missing = sorted(cfg.currencies - set(gateway.fixed_minor))
        if missing:
            raise ConfigError(f"gateways.toml: key 'gateways.{name}.fixed_minor' has no fee "
                              f"for {missing}, which {path} processes")


def load_core_config(path: str | Path | None = None) -> CoreConfig:
    """Read core.toml (default cutover/fixtures/legacy/core.toml) and the tables it relies on."""
    base = fixtures_dir()
    core_path = Path(path) if path is not None else base / CORE_RELPATH
    core = load(CoreFile, core_path)
    if "default" not in core.limits:
        raise ConfigError(f"{core_path}: key 'limits.default' is required (the limits of every"
                          " MCC not listed)")
    by_mcc = {}
    for mcc, values in core.limits.items():
        if mcc != "default":
            for currency, amount in _money_list(values, f"limits.{mcc}", core_path).items():
                by_mcc[(mcc, currency)] = amount
    gateways = _load_gateways(base / GATEWAYS_RELPATH)
    routes, default_gateway = _load_routes(core.routing, gateways, core_path)
    starts, ends, countries = _load_bins(base / BINS_RELPATH)
    suspicion = core.suspicion
    cfg = CoreConfig(
        bin_starts=starts, bin_ends=ends, bin_countries=countries,
        limits_default=_money_list(core.limits["default"], "limits.default", core_path),
        limits_by_mcc=by_mcc, blocked_countries=frozenset(core.blocklist.card_countries),
        velocity_txn_per_hour_max=core.velocity.txn_per_hour_max,
        moto_over=_money_list(suspicion.moto_over, "suspicion.moto_over", core_path),
        foreign_review_over=_money_list(suspicion.foreign_review_over,
                                        "suspicion.foreign_review_over", core_path),
        routes=routes, default_gateway=default_gateway, gateways=gateways,
        codes=CodeTable.load(),
        sources=(str(core_path), str(base / BINS_RELPATH), str(base / GATEWAYS_RELPATH)),
    )
    _check_coverage(cfg, core_path)
    return cfg
