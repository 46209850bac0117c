"""The contracts every part of cutover speaks: Arrow schemas, diff categories and money.

This module exists so that adapters, the stack, replay, the ledger and the gates agree on one
shape of data without importing each other. It imports nothing of ours and no framework
beyond pyarrow, which *is* the data contract.

Money is always an integer count of minor units plus an ISO 4217 code. A float never
represents money anywhere in cutover: parsing refuses floats outright.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

import pyarrow as pa

# ---------------------------------------------------------------------------------------------
# Money
# ---------------------------------------------------------------------------------------------

#: ISO 4217 minor-unit exponents for the currencies cutover knows. A currency that is not here
#: is refused rather than guessed, because a wrong exponent is a wrong amount by 10x or 100x.
CURRENCY_EXPONENTS: Final[dict[str, int]] = {
    "AED": 2, "ARS": 2, "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0,
    "CNY": 2, "CZK": 2, "DKK": 2, "EGP": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2,
    "IDR": 2, "ILS": 2, "INR": 2, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3,
    "MXN": 2, "MYR": 2, "NGN": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PHP": 2, "PLN": 2,
    "QAR": 2, "RON": 2, "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2, "TND": 3, "TRY": 2,
    "TWD": 2, "UAH": 2, "USD": 2, "VND": 0, "ZAR": 2,
}

_MONEY_TEXT: Final = re.compile(r"^\s*(-?)(\d+)(?:\.(\d+))?\s+([A-Z]{3})\s*$")


class MoneyError(ValueError):
    """Money input that cannot be represented exactly (unknown currency, float, bad text)."""


def currency_exponent(currency: str) -> int:
    """Return the number of minor-unit digits of ``currency``; refuse unknown codes."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except (KeyError, TypeError):
        raise MoneyError(f"unknown currency {currency!r}: not an ISO 4217 code cutover knows") from None


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: integer minor units and an ISO 4217 currency code."""

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise MoneyError(
                f"amount_minor must be an int, got {type(self.amount_minor).__name__}"
                f" ({self.amount_minor!r}); money is never a float"
            )
        currency_exponent(self.currency)

    def __str__(self) -> str:
        return format_money(self.amount_minor, self.currency)


def parse_money(text: str) -> Money:
    """Parse ``"12.34 USD"`` into ``Money(1234, "USD")`` exactly.

    Refuses floats, unknown currencies and more decimals than the currency has, because each
    of those would silently change an amount.
    """
    if not isinstance(text, str):
        raise MoneyError(f"money must be text like '12.34 USD', got {type(text).__name__} {text!r}")
    match = _MONEY_TEXT.match(text)
    if match is None:
        raise MoneyError(f"cannot read money from {text!r}: expected '<amount> <ISO 4217 code>'")
    sign, whole, frac, currency = match.groups()
    exponent = currency_exponent(currency)
    frac = frac or ""
    if len(frac) > exponent:
        raise MoneyError(
            f"{text!r} has {len(frac)} decimals but {currency} has {exponent}"
        )
    amount_minor = int(whole) * 10**exponent + (int(frac.ljust(exponent, "0")) if exponent else 0)
    return Money(-amount_minor if sign else amount_minor, currency)


def to_minor(amount: str | int | Decimal, currency: str) -> int:
    """Convert a major-unit amount given as text, int or Decimal to minor units exactly."""
    if isinstance(amount, float | bool):
        raise MoneyError(f"refusing {type(amount).__name__} {amount!r}: money is never a float")
    exponent = currency_exponent(currency)
    try:
        value = Decimal(amount) if not isinstance(amount, Decimal) else amount
    except InvalidOperation:
        raise MoneyError(f"cannot read {amount!r} as an amount of {currency}") from None
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{amount!r} has more decimals than {currency} allows ({exponent})")
    return int(scaled)


def format_money(amount_minor: int, currency: str) -> str:
    """Format minor units back to text, ``format_money(1234, "USD") == "12.34 USD"``."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise MoneyError(f"amount_minor must be an int, got {amount_minor!r}")
    exponent = currency_exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    whole, frac = divmod(abs(amount_minor), 10**exponent)
    if exponent == 0:
        return f"{sign}{whole} {currency}"
    return f"{sign}{whole}.{frac:0{exponent}d} {currency}"


# ---------------------------------------------------------------------------------------------
# Vocabularies
# ---------------------------------------------------------------------------------------------

CHANNELS: Final = ("ecom", "pos", "moto", "recurring")
DECISIONS: Final = ("approve", "decline", "review", "error")

#: Diff categories in order of precedence: when several apply, the first wins, so every record
#: lands in exactly one (conservation).
CATEGORIES: Final = (
    "quarantined",
    "legacy_error",
    "candidate_error",
    "approve_to_decline",
    "decline_to_approve",
    "review_change",
    "route_change",
    "fee_change",
    "reason_change",
    "match",
)
MISMATCH_CATEGORIES: Final = tuple(c for c in CATEGORIES if c not in ("match", "quarantined"))
SEVERITIES: Final = ("none", "low", "medium", "high", "critical")

#: The version of report.json this code writes and reads; gates refuse other versions.
REPORT_VERSION: Final = 1

# ---------------------------------------------------------------------------------------------
# Arrow schemas
# ---------------------------------------------------------------------------------------------

TS = pa.timestamp("us", tz="UTC")

#: One row per transaction in the traffic store. Card numbers never appear: ``card_token`` is a
#: keyed HMAC of the PAN made at the adapter, and only the BIN is kept.
TRAFFIC: Final = pa.schema(
    [
        pa.field("txn_id", pa.string(), nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("merchant_id", pa.string(), nullable=False),
        pa.field("mcc", pa.string(), nullable=False),
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("card_token", pa.string(), nullable=False),
        pa.field("card_bin", pa.string(), nullable=False),
        pa.field("card_country", pa.string(), nullable=False),
        pa.field("amount_minor", pa.int64(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("merchant_country", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("device_hash", pa.string()),
        pa.field("ip_hash", pa.string()),
        # The recorded legacy outcome.
        pa.field("legacy_decision", pa.string(), nullable=False),
        pa.field("legacy_code", pa.string(), nullable=False),
        pa.field("legacy_reason", pa.string(), nullable=False),
        pa.field("legacy_route", pa.string()),
        pa.field("legacy_fee_minor", pa.int64(), nullable=False),
        pa.field("legacy_latency_ms", pa.int32(), nullable=False),
        # Labels that arrive later; ``label_ts`` says when, so features never see them early.
        pa.field("is_fraud", pa.bool_()),
        pa.field("chargeback", pa.bool_()),
        pa.field("label_ts", TS),
        pa.field("gateway_ok", pa.bool_()),
    ]
)

#: What a candidate stack returns per transaction.
DECISION: Final = pa.schema(
    [
        pa.field("txn_id", pa.string(), nullable=False),
        pa.field("decision", pa.string(), nullable=False),
        pa.field("reason_codes", pa.list_(pa.string()), nullable=False),
        pa.field("score", pa.float64()),
        pa.field("route", pa.string()),
        pa.field("fee_minor", pa.int64(), nullable=False),
        pa.field("p_success", pa.float64()),
        pa.field("retry_plan", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("latency_us", pa.int64(), nullable=False),
    ]
)

#: One row per input record of a replay: the outcome of both sides and how they differ.
DIFF: Final = pa.schema(
    [
        pa.field("txn_id", pa.string(), nullable=False),
        pa.field("ts", TS),
        pa.field("category", pa.string(), nullable=False),
        pa.field("fields", pa.list_(pa.string()), nullable=False),
        pa.field("expected", pa.bool_(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("amount_minor", pa.int64()),
        pa.field("currency", pa.string()),
        pa.field("merchant_id", pa.string()),
        pa.field("merchant_country", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("mcc", pa.string()),
        pa.field("customer_id", pa.string()),
        pa.field("is_fraud", pa.bool_()),
        pa.field("chargeback", pa.bool_()),
        pa.field("legacy_decision", pa.string()),
        pa.field("legacy_reason", pa.string()),
        pa.field("legacy_route", pa.string()),
        pa.field("legacy_fee_minor", pa.int64()),
        pa.field("legacy_latency_ms", pa.float64()),
        pa.field("candidate_decision", pa.string()),
        pa.field("candidate_reason", pa.string()),
        pa.field("candidate_route", pa.string()),
        pa.field("candidate_fee_minor", pa.int64()),
        pa.field("candidate_latency_ms", pa.float64()),
        pa.field("quarantine_reason", pa.string()),
    ]
)


# What a candidate may and may not see of a traffic row (the candidate port's contract).
LABEL_COLUMNS: Final = ("is_fraud", "chargeback", "label_ts", "gateway_ok")
#: The columns ``observe_labels`` receives.
LABELS_FOR_STACK: Final = ("txn_id", "merchant_id", "label_ts", "is_fraud")
#: What replay keeps of a row for the candidate's later knowledge: its label and its gateway
#: outcome. Warm-up and resume carry these columns, so outcomes follow labels everywhere.
OBSERVED_LABELS: Final = (*LABELS_FOR_STACK, "ts", "legacy_route", "gateway_ok")
#: What a candidate may see: TRAFFIC without the legacy outcome and the labels.
REQUEST_COLUMNS: Final = tuple(n for n in TRAFFIC.names
                               if not n.startswith("legacy_") and n not in LABEL_COLUMNS)


def conform(table: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pa.Table:
    """Return ``table`` with exactly ``schema``'s columns, in order, cast to its types.

    Raises ``KeyError`` naming the first missing column, so a producer that forgot a field is
    caught at the boundary, not three stages later.
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise KeyError(f"missing columns {missing}")
    return table.select(schema.names).cast(schema)
