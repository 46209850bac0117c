"""Money helpers: exact parse/format for every currency, and refusal of anything inexact."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cutover.domain import (
    CURRENCY_EXPONENTS,
    Money,
    MoneyError,
    format_money,
    parse_money,
    to_minor,
)

currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))
amounts = st.integers(min_value=-(10**15), max_value=10**15)


@settings(max_examples=300)
@given(amount_minor=amounts, currency=currencies)
def test_parse_inverts_format_for_every_currency(amount_minor, currency):
    """parse(format(x)) == x for every currency and any integer amount."""
    assert parse_money(format_money(amount_minor, currency)) == Money(amount_minor, currency)


@pytest.mark.parametrize(
    ("text", "amount_minor", "currency"),
    [("12.34 USD", 1234, "USD"), ("1234 JPY", 1234, "JPY"), ("1.234 BHD", 1234, "BHD"),
     ("0.5 EUR", 50, "EUR"), ("-7.01 GBP", -701, "GBP"), ("3 USD", 300, "USD")],
)
def test_parse_known_values(text, amount_minor, currency):
    """Known texts parse to the exact minor units of their currency's exponent."""
    assert parse_money(text) == Money(amount_minor, currency)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("12.345 USD", "3 decimals but USD has 2"), ("1.5 JPY", "1 decimals but JPY has 0"),
     ("12.34 XXX", "unknown currency 'XXX'"), ("12,34 USD", "cannot read money"),
     ("USD 12.34", "cannot read money")],
)
def test_parse_refuses_inexact_or_unknown(text, fragment):
    """Too many decimals, unknown codes and malformed text raise MoneyError naming the problem."""
    with pytest.raises(MoneyError, match=fragment):
        parse_money(text)


def test_floats_are_refused_everywhere():
    """A float never becomes money: parse, Money() and to_minor all refuse it."""
    with pytest.raises(MoneyError):
        parse_money(12.34)
    with pytest.raises(MoneyError, match="never a float"):
        Money(12.34, "USD")
    with pytest.raises(MoneyError, match="never a float"):
        to_minor(12.34, "USD")


def test_to_minor_exact_and_refusing():
    """to_minor scales Decimal/text exactly and refuses extra decimals."""
    assert to_minor("12.34", "USD") == 1234
    assert to_minor(Decimal("1.234"), "BHD") == 1234
    assert to_minor(5, "JPY") == 5
    with pytest.raises(MoneyError, match="more decimals"):
        to_minor("0.001", "EUR")


def test_format_examples():
    """format_money pads the minor digits and keeps the sign."""
    assert format_money(5, "USD") == "0.05 USD"
    assert format_money(-1234, "BHD") == "-1.234 BHD"
    assert format_money(1234, "JPY") == "1234 JPY"
    assert str(Money(100, "EUR")) == "1.00 EUR"
