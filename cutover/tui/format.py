"""Display text for the stores' values: money, rates, hours. Pure; no Textual."""

from __future__ import annotations

from cutover.domain import MoneyError, format_money


def money(amount_minor: object, currency: object) -> str:
    """``1234, "USD"`` -> "12.34 USD"; raw minor units when the currency is unknown."""
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool):
        return ""
    try:
        return format_money(amount_minor, str(currency))
    except MoneyError:
        return f"{amount_minor} {currency} (minor)"


def rate(k: int, n: int) -> str:
    """k of n as a percentage with two decimals; "-" when n is zero."""
    return f"{100 * k / n:.2f}%" if n else "-"


def hours(seconds: int) -> str:
    """Seconds as hours with two decimals, the way `cutover plan status` prints bake time."""
    return f"{seconds / 3600:.2f}h"

