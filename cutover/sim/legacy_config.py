"""Loading the simulated legacy core's static rules into one frozen, validated object.

The decision logic in ``legacy_rules`` is pure; this module is the only place that reads its
four files (core.toml, bins.toml, gateways.toml, legacy_codes.toml). Every bad value raises a
ConfigError naming the file and the key, so a typo in a limit never becomes a wrong decision.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from cutover.adapters.codes import CodeTable
from cutover.domain import MoneyError, currency_exponent, parse_money
from cutover.errors import ConfigError
from cutover.paths import fixtures_dir

CORE_RELPATH: Final = Path("legacy") / "core.toml"
BINS_RELPATH: Final = Path("bins.toml")
GATEWAYS_RELPATH: Final = Path("gateways.toml")
#: A BIN is exactly this many digits.
BIN_DIGITS: Final = 6
#: Limits and thresholds above this are refused: fee arithmetic (amount * bps) must fit int64.
AMOUNT_MINOR_MAX: Final = 10**14


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


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def _need(data: Mapping[str, Any], key: str, kind: type, path: Path) -> Any:
    value = data.get(key.rsplit(".", 1)[-1]) if isinstance(data, Mapping) else None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{path}: key {key!r} missing or not a {kind.__name__}")
    return value


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


def _bin(text: Any, key: str, path: Path) -> int:
    if not isinstance(text, str) or len(text) != BIN_DIGITS or not text.isdigit():
        raise ConfigError(f"{path}: key {key!r}: BIN {text!r} is not {BIN_DIGITS} digits")
    return int(text)


def _load_bins(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ranges = _need(_read(path), "ranges", list, path)
    rows = []
    for i, item in enumerate(ranges):
        key = f"ranges[{i}]"
        start = _bin(item.get("start"), f"{key}.start", path)
        end = _bin(item.get("end"), f"{key}.end", path)
        country = item.get("country")
        if end < start or not isinstance(country, str) or len(country) != 2:
            raise ConfigError(f"{path}: key {key!r}: need start <= end and a 2-letter country")
        rows.append((start, end, country))
    rows.sort()
    for (_, end_a, _), (start_b, _, _) in zip(rows, rows[1:], strict=False):
        if start_b <= end_a:
            raise ConfigError(f"{path}: BIN ranges overlap at {start_b:06d}")
    starts = np.array([r[0] for r in rows], dtype=np.int64)
    ends = np.array([r[1] for r in rows], dtype=np.int64)
    return starts, ends, np.array([r[2] for r in rows], dtype=str)


def _load_gateways(path: Path) -> dict[str, Gateway]:
    table = _need(_read(path), "gateways", dict, path)
    out = {}
    for name, raw in table.items():
        bps = _need(raw, f"gateways.{name}.fee_bps", int, path)
        fixed = _need(raw, f"gateways.{name}.fixed_minor", dict, path)
        if bps < 0 or any(not isinstance(v, int) or v < 0 for v in fixed.values()):
            raise ConfigError(f"{path}: key 'gateways.{name}': fees must be non-negative ints")
        for currency in fixed:
            try:
                currency_exponent(currency)
            except MoneyError as exc:
                raise ConfigError(f"{path}: key 'gateways.{name}.fixed_minor': {exc}") from exc
        out[name] = Gateway(fee_bps=bps, fixed_minor=dict(fixed))
    return out


def _load_routes(routing: Mapping[str, Any], gateways: Mapping[str, Gateway],
                 path: Path) -> tuple[tuple[Route, ...], str]:
    default = _need(routing, "routing.default", str, path)
    routes = []
    for i, raw in enumerate(_need(routing, "routing.routes", list, path)):
        key = f"routing.routes[{i}]"
        currencies = raw.get("currencies")
        if currencies is not None and not isinstance(currencies, list):
            raise ConfigError(f"{path}: key '{key}.currencies' must be a list")
        routes.append(Route(_bin(raw.get("bin_start"), f"{key}.bin_start", path),
                            _bin(raw.get("bin_end"), f"{key}.bin_end", path),
                            frozenset(currencies) if currencies is not None else None,
                            _need(raw, f"{key}.gateway", str, path)))
    for name in [default, *(r.gateway for r in routes)]:
        if name not in gateways:
            raise ConfigError(f"{path}: key 'routing': unknown gateway {name!r}")
    return tuple(routes), default


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
    core = _read(core_path)
    limits = _need(core, "limits", dict, core_path)
    by_mcc = {}
    for mcc, values in limits.items():
        if mcc != "default":
            for currency, amount in _money_list(values, f"limits.{mcc}", core_path).items():
                by_mcc[(mcc, currency)] = amount
    suspicion = _need(core, "suspicion", dict, core_path)
    velocity_max = _need(_need(core, "velocity", dict, core_path),
                         "velocity.txn_per_hour_max", int, core_path)
    if velocity_max < 1:
        raise ConfigError(f"{core_path}: key 'velocity.txn_per_hour_max' must be at least 1")
    gateways = _load_gateways(base / GATEWAYS_RELPATH)
    routes, default_gateway = _load_routes(_need(core, "routing", dict, core_path), gateways,
                                           core_path)
    starts, ends, countries = _load_bins(base / BINS_RELPATH)
    blocked = _need(_need(core, "blocklist", dict, core_path), "blocklist.card_countries",
                    list, core_path)
    cfg = CoreConfig(
        bin_starts=starts, bin_ends=ends, bin_countries=countries,
        limits_default=_money_list(limits.get("default"), "limits.default", core_path),
        limits_by_mcc=by_mcc, blocked_countries=frozenset(blocked),
        velocity_txn_per_hour_max=velocity_max,
        moto_over=_money_list(suspicion.get("moto_over"), "suspicion.moto_over", core_path),
        foreign_review_over=_money_list(suspicion.get("foreign_review_over"),
                                        "suspicion.foreign_review_over", core_path),
        routes=routes, default_gateway=default_gateway, gateways=gateways,
        codes=CodeTable.load(),
        sources=(str(core_path), str(base / BINS_RELPATH), str(base / GATEWAYS_RELPATH)),
    )
    _check_coverage(cfg, core_path)
    return cfg
