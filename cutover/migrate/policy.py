"""The gate policy of one phase: what a replay report must show before traffic moves.

A policy is plain data read from TOML (an inline table in a plan's phase, or a stand-alone
policy file). Parsing validates every field and names the file, phase and field on error,
because a typo in a threshold silently loosens a gate that guards real money.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from cutover.domain import MISMATCH_CATEGORIES, Money, MoneyError, parse_money
from cutover.errors import ConfigError

#: The pseudo-category "mismatch" limits the rate of all mismatch categories together.
RATE_KEYS: Final = (*MISMATCH_CATEGORIES, "mismatch")
#: Money measures a gate limits: per currency (a list of money strings) or in total over every
#: currency in the plan's reference currency (``<name>_total``, converted at the plan's ``fx``).
MONEY_MEASURES: Final = ("max_false_decline", "max_fraud_let_through")
KNOWN_FIELDS: Final = frozenset({
    "min_sample", "max_rate", "max_false_decline", "max_fraud_let_through",
    "max_false_decline_total", "max_fraud_let_through_total",
    "max_candidate_error_rate", "max_latency_p99_ms", "max_psi", "no_new_values",
    "segment_min_n", "segment_max_mismatch_rate", "segment_categories",
    "feed_checks", "feed_fdr", "max_quarantine_rate",
})
#: Groups of feed-health findings a gate can judge (report.json ``feed_health``), by metric.
FEED_CHECKS: Final = {
    "quarantine": ("quarantine_rate",), "new_values": ("new_value",), "formats": ("format",),
    "nulls": ("null_rate",), "distributions": ("amount_shift", "share_shift"),
    "time_profiles": ("hour_profile", "inter_arrival"),
}
FEED_FDR_DEFAULT: Final = 0.01


@dataclass(frozen=True)
class Policy:
    """Thresholds a report must meet; ``None`` means the check is not part of this policy."""

    min_sample: int = 0
    max_rate: dict[str, float] = field(default_factory=dict)
    max_false_decline: dict[str, Money] = field(default_factory=dict)
    max_fraud_let_through: dict[str, Money] = field(default_factory=dict)
    max_candidate_error_rate: float | None = None
    max_latency_p99_ms: float | None = None
    max_psi: float | None = None
    no_new_values: tuple[str, ...] = ()
    segment_min_n: int | None = None
    segment_max_mismatch_rate: float | None = None
    #: Mismatch categories a segment's rate counts; empty means every mismatch category.
    segment_categories: tuple[str, ...] = ()
    #: Feed-health finding groups judged (``FEED_CHECKS``); empty means none.
    feed_checks: tuple[str, ...] = ()
    #: False-discovery rate a feed finding's q-value must stay above to pass.
    feed_fdr: float = FEED_FDR_DEFAULT
    max_quarantine_rate: float | None = None
    #: Limits over every currency together, in ``fx``'s reference currency.
    max_false_decline_total: Money | None = None
    max_fraud_let_through_total: Money | None = None
    #: The indicative rates the totals are converted at, and where they were read from.
    fx: Any = None
    fx_source: str = ""

    def money_limits(self, measure: str) -> tuple[dict[str, Money], Money | None]:
        """(per-currency limits, total limit) of ``measure`` (an entry of MONEY_MEASURES)."""
        return getattr(self, measure), getattr(self, f"{measure}_total")


def _rate(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"{where} must be a rate between 0 and 1, got {value!r}")
    return float(value)


def _fdr(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ConfigError(f"{where} must be a false-discovery rate between 0 and 1 (exclusive), "
                          f"got {value!r}")
    return float(value)


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where} must be a whole number >= 0, got {value!r}")
    return value


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where} must be a number >= 0, got {value!r}")
    return float(value)


def _money_limits(value: Any, where: str) -> dict[str, Money]:
    """A list of money strings, one per currency: ["500.00 USD", "450.00 EUR"]."""
    if not isinstance(value, list):
        raise ConfigError(f'{where} must be a list of money strings like ["500.00 USD"]')
    limits: dict[str, Money] = {}
    for item in value:
        try:
            money = parse_money(item)
        except MoneyError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        if money.currency in limits:
            raise ConfigError(f"{where}: currency {money.currency} is listed twice")
        if money.amount_minor < 0:
            raise ConfigError(f"{where}: limit {item!r} is negative")
        limits[money.currency] = money
    return limits


def _rates(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of category = rate")
    unknown = sorted(set(value) - set(RATE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown category {unknown[0]!r}; "
                          f"known: {', '.join(RATE_KEYS)}")
    return {k: _rate(v, f"{where}.{k}") for k, v in value.items()}


def _categories(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise ConfigError(f"{where} must be a list of mismatch categories")
    unknown = sorted(set(value) - set(MISMATCH_CATEGORIES))
    if unknown:
        raise ConfigError(f"{where}: unknown category {unknown[0]!r}; "
                          f"known: {', '.join(MISMATCH_CATEGORIES)}")
    return tuple(dict.fromkeys(value))


#: Fields that are checks (min_sample is a floor under them, not a check of its own).
CHECK_FIELDS: Final = tuple(sorted(KNOWN_FIELDS - {"min_sample", "segment_categories"}))


def _require_checks(table: dict[str, Any], policy: Policy, where: str) -> None:
    """A gate that cannot fail guards nothing: refuse one without a sample floor or without a
    single check (``gate = {}``, or only ``min_sample``)."""
    if "min_sample" not in table or policy.min_sample < 1:
        raise ConfigError(f"{where}: gate.min_sample is missing or 0; a gate needs a sample"
                          " floor (a whole number >= 1) so a tiny replay cannot pass it")
    has_check = (policy.max_rate or policy.max_false_decline or policy.max_fraud_let_through
                 or policy.no_new_values or policy.feed_checks or any(
                     getattr(policy, name) is not None for name in (
                         "max_candidate_error_rate", "max_latency_p99_ms", "max_psi",
                         "segment_min_n", "max_quarantine_rate", "max_false_decline_total",
                         "max_fraud_let_through_total")))
    if not has_check:
        raise ConfigError(f"{where}: the gate has no check, so it can never fail; set at least"
                          f" one of {', '.join(CHECK_FIELDS)}")


def _feed_checks(value: Any, where: str) -> tuple[str, ...]:
    if value == "all":
        return tuple(FEED_CHECKS)
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise ConfigError(f'{where} must be "all" or a list of: {", ".join(FEED_CHECKS)}')
    unknown = sorted(set(value) - set(FEED_CHECKS))
    if unknown:
        raise ConfigError(f"{where}: unknown feed check {unknown[0]!r}; "
                          f"known: {', '.join(FEED_CHECKS)}")
    return tuple(dict.fromkeys(value))


def _total(value: Any, where: str, fx: Any) -> Money | None:
    """One money string in the reference currency of the plan's rates file."""
    if value is None:
        return None
    if fx is None:
        raise ConfigError(f"{where}: a total over currencies needs the plan's fx rates file "
                          '(top-level fx = "fixtures:fx/indicative.toml" or a path)')
    try:
        money = parse_money(value) if isinstance(value, str) else None
    except MoneyError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    if money is None or money.amount_minor < 0 or money.currency != fx.reference:
        raise ConfigError(f'{where} must be one money string in {fx.reference} (the rates\' '
                          f'reference), like "5000.00 {fx.reference}"; got {value!r}')
    return money


def parse_policy(table: Any, where: str, fx: Any = None, fx_source: str = "") -> Policy:
    """Build a Policy from a TOML table; ``where`` prefixes every error (file and phase);
    ``fx`` (FxRates) converts the ``*_total`` limits."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: gate must be a table")
    unknown = sorted(set(table) - KNOWN_FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown gate field {unknown[0]!r}; known: "
                          f"{', '.join(sorted(KNOWN_FIELDS))}")
    get = table.get

    def opt(name: str, conv):
        return None if get(name) is None else conv(get(name), f"{where}: gate.{name}")

    new_values = get("no_new_values", [])
    if not isinstance(new_values, list) or not all(isinstance(c, str) for c in new_values):
        raise ConfigError(f"{where}: gate.no_new_values must be a list of column names")
    policy = Policy(
        min_sample=_count(get("min_sample", 0), f"{where}: gate.min_sample"),
        max_rate=_rates(get("max_rate", {}), f"{where}: gate.max_rate"),
        max_false_decline=_money_limits(get("max_false_decline", []),
                                        f"{where}: gate.max_false_decline"),
        max_fraud_let_through=_money_limits(get("max_fraud_let_through", []),
                                            f"{where}: gate.max_fraud_let_through"),
        max_candidate_error_rate=opt("max_candidate_error_rate", _rate),
        max_latency_p99_ms=opt("max_latency_p99_ms", _positive),
        max_psi=opt("max_psi", _positive),
        no_new_values=tuple(new_values),
        segment_min_n=opt("segment_min_n", _count),
        segment_max_mismatch_rate=opt("segment_max_mismatch_rate", _rate),
        segment_categories=_categories(get("segment_categories", []),
                                       f"{where}: gate.segment_categories"),
        feed_checks=_feed_checks(get("feed_checks", []), f"{where}: gate.feed_checks"),
        feed_fdr=_fdr(get("feed_fdr", FEED_FDR_DEFAULT), f"{where}: gate.feed_fdr"),
        max_quarantine_rate=opt("max_quarantine_rate", _rate),
        max_false_decline_total=_total(get("max_false_decline_total"),
                                       f"{where}: gate.max_false_decline_total", fx),
        max_fraud_let_through_total=_total(get("max_fraud_let_through_total"),
                                           f"{where}: gate.max_fraud_let_through_total", fx),
        fx=fx, fx_source=fx_source,
    )
    if (policy.segment_min_n is None) != (policy.segment_max_mismatch_rate is None):
        raise ConfigError(f"{where}: gate.segment_min_n and gate.segment_max_mismatch_rate "
                          "go together; set both or neither")
    if policy.segment_categories and policy.segment_min_n is None:
        raise ConfigError(f"{where}: gate.segment_categories needs gate.segment_min_n and "
                          "gate.segment_max_mismatch_rate")
    _require_checks(table, policy, where)
    return policy
