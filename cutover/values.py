"""Strict values at the boundary: real dates, plausible times, amounts in range, ISO codes.

Everything that enters from outside (batch files, CSV and JSON exports, cassettes, ``decide``)
is checked against the same rules, so a value one importer refuses cannot slip in through
another: a date must exist (Arrow's strptime turns 2026-02-30 into 2026-03-02; that is
refused here), a time must lie in a plausible range (a year-0001 row would overflow the replay
later), an amount must be positive and under its currency's ceiling, currencies and countries
must be in the ISO tables shipped in ``cutover/fixtures/iso/``, a channel in its enum.

The vectorised checks return one boolean mask per rule (True = refused) for the importers;
``check_txn`` applies the same rules to one transaction dict and raises ``InputError``.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from cutover.config import StrictModel, config_model, load
from cutover.domain import CHANNELS, REQUEST_COLUMNS, TRAFFIC
from cutover.errors import ConfigError, InputError
from cutover.paths import fixtures_dir

#: The plausible range of a transaction time (UTC), [min, max). Override with the two
#: environment variables (ISO dates), e.g. to import an archive older than 2000.
TS_MIN_DEFAULT: Final = "2000-01-01"
TS_MAX_DEFAULT: Final = "2100-01-01"
TS_MIN_ENV: Final = "CUTOVER_TS_MIN"
TS_MAX_ENV: Final = "CUTOVER_TS_MAX"
_US_PER_S: Final = 1_000_000


class CurrencyRow(StrictModel):
    """One ISO 4217 currency: its minor-unit exponent and its ceiling per transaction."""

    exponent: int = Field(ge=0, le=4, description="minor-unit digits (ISO 4217)")
    major_max: int = Field(gt=0, le=10**15, description="largest amount of one transaction,"
                                                        " in major units")


@config_model("iso-currencies", "cutover/fixtures/iso/currencies.toml")
class CurrencyTable(StrictModel):
    """The currencies cutover accepts at the boundary, keyed by ISO 4217 code."""

    currencies: dict[str, CurrencyRow]


@config_model("iso-countries", "cutover/fixtures/iso/countries.toml")
class CountryTable(StrictModel):
    """ISO 3166-1 alpha-2 country codes (and ZZ, unknown) with their names."""

    countries: dict[str, str]


def _codes_ok(codes: list[str], length: int, path: Path) -> None:
    bad = [c for c in codes if len(c) != length or not c.isascii() or not c.isupper()]
    if bad:
        raise ConfigError(f"{path}: codes must be {length} capital letters, got {bad[:5]}")


@cache
def countries() -> tuple[str, ...]:
    """ISO 3166-1 alpha-2 codes (and ZZ, unknown), sorted."""
    path = fixtures_dir() / "iso" / "countries.toml"
    codes = sorted(load(CountryTable, path).countries)
    _codes_ok(codes, 2, path)
    return tuple(codes)


@cache
def currencies() -> dict[str, tuple[int, int]]:
    """ISO 4217 code -> (exponent, largest amount of one transaction in minor units)."""
    path = fixtures_dir() / "iso" / "currencies.toml"
    table = load(CurrencyTable, path).currencies
    _codes_ok(list(table), 3, path)
    return {code: (row.exponent, row.major_max * 10 ** row.exponent)
            for code, row in table.items()}


def _parse_day(text: str, where: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ConfigError(f"{where}={text!r}: expected a date YYYY-MM-DD") from None


def ts_range() -> tuple[datetime, datetime]:
    """The plausible [min, max) of a transaction time: the defaults or the environment's."""
    low = _parse_day(os.environ.get(TS_MIN_ENV) or TS_MIN_DEFAULT, TS_MIN_ENV)
    high = _parse_day(os.environ.get(TS_MAX_ENV) or TS_MAX_DEFAULT, TS_MAX_ENV)
    if not low < high:
        raise ConfigError(f"{TS_MIN_ENV} {low:%Y-%m-%d} must be before {TS_MAX_ENV} {high:%Y-%m-%d}")
    return low, high


def ts_range_text() -> str:
    """The range as people read it, for messages."""
    low, high = ts_range()
    return f"{low:%Y-%m-%d} to {high:%Y-%m-%d}"


def _np(mask: pa.Array | pa.ChunkedArray, null: bool) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, null).to_numpy(zero_copy_only=False), dtype=bool)


def _unpadded(text: pa.Array) -> pa.Array:
    # "1/10/2026" and "01/10/2026" are the same date: compare without leading zeros.
    return pc.replace_substring_regex(text, r"(^|\D)0+(\d)", r"\1\2")


#: strftime directives rebuilt from Arrow's component kernels: (kernel, width). Arrow's own
#: strftime costs about 17 s per million rows here; the components cost a fraction of that.
_DIRECTIVES: Final = {"Y": (pc.year, 4), "m": (pc.month, 2), "d": (pc.day, 2),
                      "H": (pc.hour, 2), "M": (pc.minute, 2), "S": (pc.second, 2),
                      "y": (pc.year, 2)}


def _format_back(parsed: pa.Array, fmt: str) -> pa.Array:
    """``parsed`` written back in ``fmt`` (zero-padded numbers and literal text)."""
    pieces: list[pa.Array | str] = []
    i = 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt) and fmt[i + 1] in _DIRECTIVES:
            kernel, width = _DIRECTIVES[fmt[i + 1]]
            values = kernel(parsed).fill_null(0).to_numpy(zero_copy_only=False)
            values = values % 100 if fmt[i + 1] == "y" else values
            pieces.append(pc.utf8_lpad(pa.array(values).cast(pa.string()), width=width,
                                       padding="0"))
            i += 2
        elif fmt[i] == "%":
            # A directive not rebuilt here (%b, %j, ...): Arrow's strftime, slow but right.
            whole = pc.cast(parsed, pa.timestamp("s"), safe=False)
            return pc.strftime(whole, format=fmt)
        else:
            pieces.append(fmt[i])
            i += 1
    if not pieces:
        return pa.array([""] * len(parsed), pa.string())
    return pc.binary_join_element_wise(*pieces, "")


#: strptime moves an impossible day (the 29th to 31st) at most three days on, and a 60th
#: second to midnight: only parsed values on those days or at midnight can have moved.
ROLLOVER_DAYS_MAX: Final = 3


def _may_have_moved(plain: pa.Array, fmt: str) -> np.ndarray:
    """Rows on the first days of a month (or at midnight, when seconds are parsed): the only
    places a moved value can land. Integer arithmetic on epoch seconds, no per-row work."""
    valid = _np(pc.is_valid(plain), False)
    seconds = np.asarray(pc.cast(plain, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False),
                         dtype=np.int64)
    days = (seconds // 86_400).astype("datetime64[D]")
    day_of_month = (days - days.astype("datetime64[M]")).astype(np.int64) + 1
    moved = day_of_month <= ROLLOVER_DAYS_MAX
    if "%S" in fmt:
        moved |= seconds % 86_400 == 0
    return moved & valid


def rolled_over(text: pa.Array, parsed: pa.Array, fmt: str) -> np.ndarray:
    """True where ``parsed`` (strptime of ``text`` with ``fmt``) is not what ``text`` says.

    strptime accepts a day that does not exist and moves it on (2026-02-30 -> 2026-03-02);
    writing the parsed value back and comparing finds exactly those rows. Only rows that
    could have moved are written back (a tenth of them or fewer), and those that differ as
    written are compared again without leading zeros ("1/3/2026" is "01/03/2026").
    """
    # Whole seconds, no zone: the components are read as written, in UTC.
    plain = pc.cast(parsed.cast(pa.timestamp(parsed.type.unit)), pa.timestamp("s"), safe=False)
    rows = np.flatnonzero(_may_have_moved(plain, fmt))
    moved = np.zeros(len(parsed), dtype=bool)
    if rows.size == 0:
        return moved
    idx = pa.array(rows)
    back = _format_back(plain.take(idx), fmt)
    written = pc.utf8_trim_whitespace(text.cast(pa.string()).take(idx))
    differs = ~_np(pc.equal(back, written), True)
    if differs.any():
        again = pc.equal(_unpadded(back.filter(pa.array(differs))),
                         _unpadded(written.filter(pa.array(differs))))
        differs[np.flatnonzero(differs)] = ~_np(again, True)
    moved[rows] = differs
    return moved


def ts_out_of_range(ts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """True for each time outside the plausible range (nulls are another rule's business)."""
    low, high = ts_range()
    us = pc.cast(ts, pa.int64())
    low_us, high_us = int(low.timestamp()) * _US_PER_S, int(high.timestamp()) * _US_PER_S
    return _np(pc.or_(pc.less(us, low_us), pc.greater_equal(us, high_us)), False)


def amount_problems(amount: pa.Array, currency: pa.Array) -> list[tuple[str, np.ndarray]]:
    """(reason, refused rows) for amounts: positive and under each currency's ceiling."""
    table = currencies()
    codes = pa.array(sorted(table), pa.string())
    ceilings = np.array([table[c][1] for c in codes.to_pylist()] + [-1], np.int64)
    index = pc.fill_null(pc.index_in(currency.cast(pa.string()), value_set=codes), len(codes))
    ceiling = ceilings[index.to_numpy(zero_copy_only=False)]
    values = np.asarray(pc.fill_null(amount, 1).to_numpy(zero_copy_only=False), np.int64)
    known = ceiling >= 0
    return [("amount is zero or negative", values <= 0),
            ("amount above the currency's ceiling (fixtures/iso/currencies.toml)",
             known & (values > ceiling))]


def code_problems(cols: dict[str, pa.Array]) -> list[tuple[str, str, np.ndarray]]:
    """(field, reason, refused rows) for currency, country and channel codes."""
    checks = [("currency", tuple(sorted(currencies())), "not an ISO 4217 code cutover knows"),
              ("card_country", countries(), "not an ISO 3166-1 alpha-2 country code"),
              ("merchant_country", countries(), "not an ISO 3166-1 alpha-2 country code"),
              ("channel", CHANNELS, f"unknown channel (one of {'|'.join(CHANNELS)})")]
    found = []
    for name, allowed, reason in checks:
        if name in cols:
            ok = pc.is_in(cols[name].cast(pa.string()), value_set=pa.array(allowed, pa.string()))
            found.append((name, reason, ~_np(ok, True)))
    return found


def _check_text_fields(txn: dict[str, Any], where: str) -> None:
    """Every text field a candidate sees is text (or absent where it may be)."""
    for fld in TRAFFIC:
        if fld.name not in REQUEST_COLUMNS or not pa.types.is_string(fld.type):
            continue
        value = txn.get(fld.name)
        if value is None and not fld.nullable:
            raise InputError(f"{where}: {fld.name} is missing (text is required)")
        if value is not None and not isinstance(value, str):
            raise InputError(f"{where}: {fld.name} must be text, got"
                             f" {type(value).__name__} {str(value)[:40]!r}")


def check_txn(txn: dict[str, Any], where: str) -> None:
    """Refuse one transaction (``decide``'s input) that breaks a boundary rule: ``InputError``
    naming the field and what is allowed."""
    _check_text_fields(txn, where)
    amount = txn.get("amount_minor")
    if isinstance(amount, float) and not math.isfinite(amount):
        raise InputError(f"{where}: amount_minor {amount!r} is not a number")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InputError(f"{where}: amount_minor must be a whole number of minor units,"
                         f" got {str(amount)[:40]!r}")
    currency = txn.get("currency")
    table = currencies()
    if not isinstance(currency, str) or currency not in table:
        raise InputError(f"{where}: currency {str(currency)[:20]!r} is not an ISO 4217 code"
                         f" cutover knows ({', '.join(sorted(table))})")
    if not 0 < amount <= table[currency][1]:
        raise InputError(f"{where}: amount_minor {str(amount)[:40]} is outside 1..{table[currency][1]}"
                         f" for {currency}")
    for name in ("card_country", "merchant_country"):
        if name in txn and txn[name] not in countries():
            raise InputError(f"{where}: {name} {str(txn[name])[:20]!r} is not an ISO 3166-1"
                             " alpha-2 country code")
    if "channel" in txn and txn["channel"] not in CHANNELS:
        raise InputError(f"{where}: channel {str(txn['channel'])[:20]!r} is not one of"
                         f" {'|'.join(CHANNELS)}")
    ts = txn.get("ts")
    low, high = ts_range()
    if isinstance(ts, datetime) and not low <= (ts if ts.tzinfo else ts.replace(tzinfo=UTC)) < high:
        raise InputError(f"{where}: ts {ts.isoformat()} is outside the plausible range"
                         f" {ts_range_text()} ({TS_MIN_ENV}/{TS_MAX_ENV} change it)")


def number_in(value: float | int | None, option: str, low: float, high: float, *,
              low_open: bool = False) -> float | int | None:
    """``value`` if it is a finite number in [low, high] ((low, high] with ``low_open``);
    else ``InputError`` naming the option and the allowed range. None passes (not given)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{option}={value!r}: expected a number")
    if not math.isfinite(value):
        raise InputError(f"{option}={value}: expected a finite number in"
                         f" {'(' if low_open else '['}{low}, {high}]")
    if value < low or value > high or (low_open and value == low):
        raise InputError(f"{option}={value}: expected a number in"
                         f" {'(' if low_open else '['}{low}, {high}]")
    return value
