"""Column mappings for foreign CSV / JSON-lines exports, and their vectorised conversion.

Another team's export names its columns its own way, writes amounts in major units and times
in its own format. A small TOML file says how to read it, so importing a new export is a file,
not code. The conversion is pure and vectorised over Arrow: it returns the TRAFFIC rows it
could map and, per row it could not, a quarantine reason naming the field.

Example::

    amount_scale = "major"            # or "minor"
    time_format = "%Y-%m-%d %H:%M:%S" # strptime format of the time column, read as UTC
    [columns]                         # source column -> canonical field ("pan" is tokenised)
    "Ref" = "txn_id"
    [defaults]                        # canonical field -> value for every row
    channel = "ecom"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.domain import CURRENCY_EXPONENTS, TRAFFIC
from cutover.errors import ConfigError

OUTCOME_DEFAULTS: Final = {"legacy_fee_minor": 0, "legacy_latency_ms": 0}
#: Canonical fields that may come from a column but are not TRAFFIC columns themselves.
EXTRA_FIELDS: Final = ("pan", "legacy_code")
DERIVED: Final = ("card_token", "card_bin", "legacy_decision", "legacy_reason")


@dataclass(frozen=True)
class ColumnMap:
    """One column-mapping file."""

    source: Path
    columns: dict[str, str]
    amount_scale: str = "minor"
    time_format: str = "iso"
    defaults: dict[str, Any] = field(default_factory=dict)
    code_table: Path | None = None


def load_columns(path: Path | str) -> ColumnMap:
    """Read and check a column mapping; ``ConfigError`` names the file and the field."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"column mapping {path}: cannot read: {exc}") from exc
    columns = doc.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise ConfigError(f"column mapping {path}: needs a [columns] table")
    known = set(TRAFFIC.names) | set(EXTRA_FIELDS)
    for column, canonical in columns.items():
        if canonical not in known:
            raise ConfigError(f"column mapping {path}: column {column!r} -> unknown field"
                              f" {canonical!r}")
    scale = doc.get("amount_scale", "minor")
    if scale not in ("major", "minor"):
        raise ConfigError(f"column mapping {path}: amount_scale must be 'major' or 'minor'")
    cmap = ColumnMap(path, columns, scale, doc.get("time_format", "iso"),
                     doc.get("defaults", {}),
                     (path.parent / doc["code_table"]).resolve() if "code_table" in doc else None)
    have = set(columns.values()) | set(cmap.defaults) | set(OUTCOME_DEFAULTS) | set(DERIVED)
    required = [f.name for f in TRAFFIC if not f.nullable and f.name not in have]
    if required:
        raise ConfigError(f"column mapping {path}: no column or default for {required}")
    return cmap


def amount_to_minor(text: pa.Array, currency: pa.Array, scale: str) -> pa.Array:
    """Exact minor units from amount text; null where the text is not an exact amount.

    Major-unit text is split at the point and scaled by each row's currency exponent; more
    decimals than the currency has is refused (null), never rounded.
    """
    text = pc.utf8_trim_whitespace(text.cast(pa.string()))
    if scale == "minor":
        ok = pc.match_substring_regex(text, r"^-?\d{1,18}$")
        return pc.if_else(ok, pc.cast(pc.if_else(ok, text, "0"), pa.int64()), None)
    exps = np.array([CURRENCY_EXPONENTS.get(c, -1) for c in currency.to_pylist()], dtype=np.int64)
    ok = pc.and_(pc.match_substring_regex(text, r"^-?\d{1,15}(\.\d{1,3})?$"),
                 pa.array(exps >= 0))
    ok = pc.fill_null(ok, False)
    safe = pc.if_else(ok, text, "0")
    parts = pc.extract_regex(safe, r"^(?P<whole>-?\d+)(?:\.(?P<frac>\d*))?$")
    whole_text = pc.struct_field(parts, "whole")
    frac = pc.fill_null(pc.struct_field(parts, "frac"), "")
    frac_len = pc.utf8_length(frac).to_numpy(zero_copy_only=False)
    ok_np = ok.to_numpy(zero_copy_only=False) & (frac_len <= np.maximum(exps, 0))
    negative = pc.starts_with(whole_text, "-").to_numpy(zero_copy_only=False)
    whole = np.abs(pc.cast(whole_text, pa.int64()).to_numpy())
    frac_padded = pc.utf8_rpad(pc.if_else(pc.equal(frac, ""), "0", frac), width=3, padding="0")
    frac_val = pc.cast(frac_padded, pa.int64()).to_numpy() // 10 ** (3 - np.clip(exps, 0, 3))
    minor = (whole * 10 ** np.clip(exps, 0, 3) + frac_val) * np.where(negative, -1, 1)
    return pa.array(minor, mask=~ok_np, type=pa.int64())


def parse_times(text: pa.Array, time_format: str) -> pa.Array:
    """UTC microsecond timestamps; null where the text does not fit the format."""
    text = text.cast(pa.string())
    if time_format == "iso":
        cleaned = pc.replace_substring_regex(text, r"(Z|\+00:?00)$", "")
        cleaned = pc.replace_substring(cleaned, "T", " ")
        # Fractional seconds are dropped before parsing: Arrow's strptime has no %f.
        cleaned = pc.replace_substring_regex(cleaned, r"\.\d{1,6}$", "")
        parsed = pc.strptime(cleaned, format="%Y-%m-%d %H:%M:%S", unit="us", error_is_null=True)
        parsed = _no_rollover(cleaned, parsed, "%Y-%m-%d %H:%M:%S")
    else:
        parsed = pc.strptime(text, format=time_format, unit="us", error_is_null=True)
        parsed = _no_rollover(text, parsed, time_format)
    return pc.assume_timezone(parsed, "UTC") if parsed.type.tz is None else parsed.cast(
        pa.timestamp("us", tz="UTC"))


def _no_rollover(text: pa.Array, parsed: pa.Array, fmt: str) -> pa.Array:
    """Null where strptime moved a date that does not exist (2026-02-30 -> 2026-03-02)."""
    from cutover.values import rolled_over
    return pc.if_else(pa.array(rolled_over(text, parsed, fmt)), pa.scalar(None, parsed.type),
                      parsed)
