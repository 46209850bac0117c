"""Column mappings for foreign CSV / JSON-lines exports, and their vectorised conversion.

Another team's export names its columns its own way, writes amounts in major units, times as
text, epoch numbers or offsets from a start, codes in its own vocabulary, and may have no
transaction id at all. A small TOML file says how to read it, so importing a new export is a
file, not code (docs/mapping.md has every key). The conversion is pure and vectorised over
Arrow: it returns the TRAFFIC rows it could map and, per row it could not, a quarantine reason
naming the field and the allowed values or expected format.

Example (cutover/fixtures/mappings/paysim_export.toml reads the public PaySim sample)::

    amount_scale = "major"            # or "minor"
    [columns]                         # source column -> canonical field, or several
    "nameOrig" = ["customer_id", "card_token"]
    "type" = "mcc"
    [maps]                            # source column -> value map (inline, shipped or a file)
    type = { PAYMENT = "5999", TRANSFER = "4829" }
    [txn_id]                          # the export has no id: one per row, the same every run
    generate = "hash"
    columns = ["step", "nameOrig", "nameDest", "amount"]
    [time]                            # iso, epoch_s, epoch_ms, offset, or a strptime format
    column = "step"
    format = "offset"
    unit = "hours"
    origin = "2026-09-01T00:00:00Z"
    [labels]                          # label times: given (a column), derived, or absent
    time = "absent"
    [defaults]                        # canonical field -> value for every row
    currency = "USD"
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from cutover.adapters.mapping import CodeSpec
from cutover.adapters.valuemaps import ValueMap, resolve_map
from cutover.config import StrictModel, config_model, load
from cutover.domain import CURRENCY_EXPONENTS, TRAFFIC
from cutover.errors import ConfigError
from cutover.values import rolled_over

OUTCOME_DEFAULTS: Final = {"legacy_fee_minor": 0, "legacy_latency_ms": 0}
#: Canonical fields that may come from a column but are not TRAFFIC columns themselves.
EXTRA_FIELDS: Final = ("pan", "legacy_code")
DERIVED: Final = ("card_token", "card_bin", "legacy_decision", "legacy_reason")
TIME_FORMATS: Final = ("iso", "epoch_s", "epoch_ms", "offset")
OFFSET_UNITS_US: Final = {"seconds": 1_000_000, "minutes": 60_000_000, "hours": 3_600_000_000,
                          "days": 86_400_000_000}
#: Characters of the hash in a generated txn_id (64 bits: no collision in any real export).
TXN_HASH_CHARS: Final = 16


class TxnIdSpec(StrictModel):
    """A txn_id made for each row of an export that has none, the same on every import."""

    generate: Literal["hash", "line"] = Field(
        description="hash: of the listed columns (and the repeat count of identical rows);"
                    " line: the source file's stem and line number")
    columns: list[str] = Field(default_factory=list, description="columns hashed (hash)")
    prefix: str = Field("", description="text in front of every id")


class TimeSpec(StrictModel):
    """How the transaction time is written."""

    column: str | None = Field(None, description="source column (default: the one mapped to ts)")
    format: str = Field("iso", description="iso, epoch_s, epoch_ms, offset, or a strptime"
                        " format read as UTC")
    unit: Literal["seconds", "minutes", "hours", "days"] | None = Field(
        None, description="unit of an offset")
    origin: datetime | None = Field(None, description="the time offset 0 stands for (UTC)")


class LabelSpec(StrictModel):
    """When each fraud label became known (label_ts): features may use a label only after."""

    time: Literal["given", "derived", "absent"] = Field(
        description="given: a column mapped to label_ts; derived: ts + delay_hours; absent:"
                    " no label times (stated in the model card; training warns)")
    delay_hours: float | None = Field(None, ge=0, description="label delay (derived)")


@config_model("column-mapping", "cutover/fixtures/mappings/*_export.toml (CSV / JSON lines)")
class ColumnMapFile(StrictModel):
    """A column mapping for a foreign export; see docs/mapping.md."""

    amount_scale: Literal["major", "minor"] = "minor"
    time_format: str = Field("iso", description="shorthand for [time] format")
    code_table: str | None = Field(None, description="code table TOML, relative to this file")
    codes: dict[str, CodeSpec] = Field(default_factory=dict, description="inline code table")
    columns: dict[str, str | list[str]] = Field(
        description="source column -> canonical field, or a list of them")
    defaults: dict[str, str | int | bool] = Field(default_factory=dict)
    maps: dict[str, str | dict[str, str]] = Field(
        default_factory=dict, description="source column -> value map (foreign -> canonical)")
    txn_id: TxnIdSpec | None = None
    time: TimeSpec | None = None
    labels: LabelSpec | None = None


@dataclass(frozen=True)
class ColumnMap:
    """One column-mapping file, checked."""

    source: Path
    columns: dict[str, str | list[str]]
    amount_scale: str = "minor"
    time_format: str = "iso"
    defaults: dict[str, Any] = field(default_factory=dict)
    code_table: Path | None = None
    maps: dict[str, ValueMap] = field(default_factory=dict)
    txn_id: TxnIdSpec | None = None
    time: TimeSpec | None = None
    labels: LabelSpec | None = None
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def targets(self) -> list[tuple[str, str]]:
        """(source column, canonical field) for every mapped pair."""
        return [(c, t) for c, v in self.columns.items() for t in ([v] if isinstance(v, str)
                                                                  else v)]

    def canonical_fields(self) -> set[str]:
        return {t for _, t in self.targets()}


def _check_columns(cmap: ColumnMap, path: Path) -> None:
    known = set(TRAFFIC.names) | set(EXTRA_FIELDS)
    for column, canonical in cmap.targets():
        if canonical not in known:
            raise ConfigError(f"column mapping {path}: columns.{column} -> unknown field "
                              f"{canonical!r}; allowed: {', '.join(sorted(known))}")
    for column in cmap.maps:
        if column not in cmap.columns:
            raise ConfigError(f"column mapping {path}: maps.{column}: no such column in"
                              f" [columns] ({', '.join(cmap.columns)})")
    time = cmap.time
    if time is not None and time.format == "offset" and (time.unit is None or
                                                         time.origin is None):
        raise ConfigError(f"column mapping {path}: time.format = 'offset' needs time.unit"
                          f" ({', '.join(OFFSET_UNITS_US)}) and time.origin (an ISO time)")
    labels = cmap.labels
    if labels is not None and labels.time == "derived" and labels.delay_hours is None:
        raise ConfigError(f"column mapping {path}: labels.time = 'derived' needs"
                          " labels.delay_hours")
    if labels is not None and labels.time == "given" and "label_ts" not in \
            cmap.canonical_fields():
        raise ConfigError(f"column mapping {path}: labels.time = 'given' needs a column"
                          " mapped to label_ts")


def load_columns(path: Path | str) -> ColumnMap:
    """Read and check a column mapping; ``ConfigError`` names the file, the key and what is
    allowed."""
    path = Path(path)
    doc = load(ColumnMapFile, path)
    maps = {column: resolve_map(column, spec, path.parent, f"{path} maps.{column}")
            for column, spec in doc.maps.items()}
    time = doc.time or (TimeSpec(format=doc.time_format) if doc.time_format != "iso" else None)
    cmap = ColumnMap(path, doc.columns, doc.amount_scale, doc.time_format, doc.defaults,
                     (path.parent / doc.code_table).resolve() if doc.code_table else None,
                     maps, doc.txn_id, time, doc.labels,
                     {c: s.model_dump() for c, s in doc.codes.items()})
    _check_columns(cmap, path)
    have = cmap.canonical_fields() | set(cmap.defaults) | set(OUTCOME_DEFAULTS) | set(DERIVED)
    if cmap.txn_id is not None:
        have.add("txn_id")
    if cmap.time is not None and cmap.time.column:
        have.add("ts")
    required = [f.name for f in TRAFFIC if not f.nullable and f.name not in have]
    if required:
        raise ConfigError(f"column mapping {path}: no column or default for {required}")
    return cmap


def generated_txn_ids(table: pa.Table, spec: TxnIdSpec, lines: np.ndarray, source: Path
                      ) -> pa.Array:
    """Deterministic txn_ids: the same export gives the same ids on every import.

    ``hash``: sha256 of the listed columns' text, plus the how-many-th repeat of an identical
    row, so two identical rows get two ids. ``line``: the file's stem and the line number.
    """
    if spec.generate == "line":
        return pa.array([f"{spec.prefix}{source.stem}-{int(n)}" for n in lines], pa.string())
    missing = [c for c in spec.columns if c not in table.column_names]
    if missing or not spec.columns:
        raise ConfigError(f"txn_id.columns {spec.columns}: the source has no column(s)"
                          f" {missing or '(none listed)'}")
    parts = [pc.fill_null(table[c].combine_chunks().cast(pa.string()), "") for c in spec.columns]
    joined = pc.binary_join_element_wise(*parts, "\x1f").to_pylist()
    seen: dict[str, int] = {}
    out = []
    # One sha256 per row is inherent: Arrow has no stable vectorised hash of text.
    for text in joined:
        repeat = seen.get(text, 0)
        seen[text] = repeat + 1
        digest = hashlib.sha256(f"{text}\x1e{repeat}".encode()).hexdigest()[:TXN_HASH_CHARS]
        out.append(spec.prefix + digest)
    return pa.array(out, pa.string())


def parse_time_column(text: pa.Array, spec: TimeSpec | None) -> pa.Array:
    """UTC microsecond timestamps from text in the spec's format; null where it does not fit."""
    fmt = spec.format if spec is not None else "iso"
    if fmt in ("epoch_s", "epoch_ms", "offset"):
        ok = pc.fill_null(pc.match_substring_regex(text.cast(pa.string()),
                                                   r"^-?\d{1,15}(\.\d{1,6})?$"), False)
        numbers = pc.cast(pc.if_else(ok, text.cast(pa.string()), "0"), pa.float64()
                          ).to_numpy(zero_copy_only=False)
        if fmt == "offset":
            scale = OFFSET_UNITS_US[str(spec.unit)]
            origin = spec.origin if spec.origin.tzinfo else spec.origin.replace(tzinfo=UTC)
            base = int(origin.timestamp() * 1_000_000)
        else:
            scale, base = (1_000_000 if fmt == "epoch_s" else 1_000), 0
        micros = base + np.round(numbers * scale).astype(np.int64)
        return pa.array(micros, pa.timestamp("us", tz="UTC"),
                        mask=~ok.to_numpy(zero_copy_only=False))
    return parse_times(text, fmt)


def time_format_hint(spec: TimeSpec | None) -> str:
    """The expected format, for a quarantine reason."""
    fmt = spec.format if spec is not None else "iso"
    if fmt == "offset":
        return f"a number of {spec.unit} after {spec.origin.isoformat()}"
    return {"iso": "ISO 8601 text like 2026-09-01T12:00:00Z",
            "epoch_s": "seconds since 1970-01-01 UTC",
            "epoch_ms": "milliseconds since 1970-01-01 UTC"}.get(fmt, f"the format {fmt!r}")


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
    return pc.if_else(pa.array(rolled_over(text, parsed, fmt)), pa.scalar(None, parsed.type),
                      parsed)
