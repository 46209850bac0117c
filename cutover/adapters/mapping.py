"""The TOML mapping between canonical fields and one WSDL operation's elements.

A second legacy service must be usable by writing a mapping file, not code: this module reads
that file (which operation, whether it is idempotent, which element carries which canonical
field in which format) and holds the pure functions that build a request and read a reply.

Example (cutover/fixtures/mappings/other_core.toml)::

    wsdl = "../wsdl/other_core.wsdl"      # relative to this file, or a URL
    operation = "SubmitAuthorisation"
    namespace = "urn:othercore:payments:v2"
    idempotent = true
    [request]
    amount_minor = { element = "Value", format = "decimal_major" }
    [response]
    Charge = { field = "fee_minor", format = "decimal_major" }
    [codes.A]                             # or code_table = "path/to/codes.toml"
    decision = "approve"
    reason = "approved"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from cutover.domain import MoneyError, currency_exponent, to_minor
from cutover.errors import ConfigError

FORMATS: Final = ("text", "int_minor", "decimal_major", "datetime")
DATETIME_PATTERN_DEFAULT: Final = "%Y-%m-%dT%H:%M:%SZ"
RESPONSE_FIELDS: Final = ("response_code", "auth_code", "route", "fee_minor", "trace_id",
                          "response_ts")


@dataclass(frozen=True)
class FieldMap:
    """One canonical field <-> one element path, and how its value is written."""

    canonical: str
    path: tuple[str, ...]
    fmt: str = "text"
    pattern: str = DATETIME_PATTERN_DEFAULT


@dataclass(frozen=True)
class Mapping:
    """A whole mapping file: operation, request and response fields, codes."""

    source: Path
    wsdl: str
    operation: str
    namespace: str
    idempotent: bool
    request: tuple[FieldMap, ...]
    response: tuple[FieldMap, ...]
    code_table: Path | None = None
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)


def _field_map(where: str, canonical: str, spec: Any, key: str) -> FieldMap:
    spec = {key: spec} if isinstance(spec, str) else spec
    if not isinstance(spec, dict) or not isinstance(spec.get(key), str):
        raise ConfigError(f"{where}: {canonical!r} needs a {key!r} name")
    fmt = spec.get("format", "text")
    if fmt not in FORMATS:
        raise ConfigError(f"{where}: {canonical!r} has format {fmt!r}; expected one of {FORMATS}")
    return FieldMap(canonical, tuple(spec[key].split("/")), fmt,
                    spec.get("pattern", DATETIME_PATTERN_DEFAULT))


def load_mapping(path: Path | str) -> Mapping:
    """Read and check a mapping file; raise ``ConfigError`` naming the file and field."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"mapping {path}: cannot read: {exc}") from exc
    for key in ("wsdl", "operation", "namespace", "request", "response"):
        if key not in doc:
            raise ConfigError(f"mapping {path}: missing {key!r}")
    request = tuple(_field_map(f"{path} [request]", k, v, "element")
                    for k, v in doc["request"].items())
    # In [response] the key is the element and the value names the canonical field.
    response = []
    for element, spec in doc["response"].items():
        spec = {"field": spec} if isinstance(spec, str) else spec
        fmap = _field_map(f"{path} [response]", element, spec, "field")
        response.append(FieldMap(spec["field"], tuple(element.split("/")), fmap.fmt, fmap.pattern))
    if "response_code" not in {f.canonical for f in response}:
        raise ConfigError(f"mapping {path} [response]: no element maps to 'response_code'")
    wsdl = doc["wsdl"]
    if "://" not in wsdl and not Path(wsdl).is_absolute():
        wsdl = str((path.parent / wsdl).resolve())
    table = doc.get("code_table")
    return Mapping(path, wsdl, doc["operation"], doc["namespace"], bool(doc.get("idempotent")),
                   request, tuple(response),
                   (path.parent / table).resolve() if table else None, doc.get("codes", {}))


def _format_value(fmap: FieldMap, value: Any, currency: str | None) -> Any:
    if fmap.fmt == "int_minor":
        return int(value)
    if fmap.fmt == "decimal_major":
        if currency is None:
            raise MoneyError(f"{fmap.canonical}: decimal_major needs the currency")
        return Decimal(int(value)).scaleb(-currency_exponent(currency))
    if fmap.fmt == "datetime":
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.astimezone(UTC).strftime(fmap.pattern)
    return str(value)


def build_request(mapping: Mapping, txn: dict[str, Any]) -> dict[str, Any]:
    """Return the operation's keyword arguments (nested dicts for paths) for ``txn``.

    Raises ``KeyError`` naming a canonical field the transaction lacks.
    """
    out: dict[str, Any] = {}
    currency = txn.get("currency")
    for fmap in mapping.request:
        if fmap.canonical not in txn or txn[fmap.canonical] is None:
            raise KeyError(f"transaction {txn.get('txn_id')!r} lacks field {fmap.canonical!r}")
        node = out
        for name in fmap.path[:-1]:
            node = node.setdefault(name, {})
        node[fmap.path[-1]] = _format_value(fmap, txn[fmap.canonical], currency)
    return out


def _dig(reply: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        if reply is None:
            return None
        reply = reply.get(name) if isinstance(reply, dict) else getattr(reply, name, None)
    return reply


def read_response(mapping: Mapping, reply: Any, currency: str) -> dict[str, Any]:
    """Return every mapped response field by canonical name; amounts in minor units."""
    out: dict[str, Any] = {}
    for fmap in mapping.response:
        value = _dig(reply, fmap.path)
        if value is None:
            out[fmap.canonical] = None
        elif fmap.fmt == "decimal_major":
            out[fmap.canonical] = to_minor(str(value), currency)
        elif fmap.fmt == "int_minor":
            out[fmap.canonical] = int(value)
        elif isinstance(value, datetime):
            out[fmap.canonical] = value.astimezone(UTC).isoformat()
        else:
            out[fmap.canonical] = str(value)
    return out
