"""The TOML mapping between canonical fields and one WSDL operation's elements.

A second legacy core must be usable by writing a mapping file, not code: this module reads
that file (which operation, whether it is idempotent, which element carries which canonical
field in which format and vocabulary) and holds the pure functions that build a request and
read a reply. docs/mapping.md is the reference of every key, with a worked example.

Paths are element names separated by ``/``, relative to the operation's request element (for
``[request]``, ``[constants]``, ``[generated]``) or to its response element (for
``[response]`` and ``[response_code]``): ``Header/MsgId`` is the ``MsgId`` inside ``Header``.
Names are local (no namespace prefix); a repeated element means its first occurrence.

Example (cutover/fixtures/mappings/awkward_core.toml has every feature)::

    wsdl = "../wsdl/other_core.wsdl"      # relative to this file, or a URL
    operation = "SubmitAuthorisation"
    namespace = "urn:othercore:payments:v2"
    idempotent = true
    [maps]
    currency = "iso4217_numeric"          # shipped table, a file, or { E = "ecom" } inline
    [request]
    txn_id = { element = ["Header/MsgRef", "Payment/Ref"] }   # one field, several elements
    amount_minor = { element = "Payment/Value", format = "decimal_major" }
    currency = { element = "Payment/Ccy", map = "currency" }
    [constants]
    "Header/Version" = "3.1"
    [generated]
    "Header/MsgId" = { kind = "from_txn_id", template = "MSG-{value}" }
    [response]
    Charge = { field = "fee_minor", format = "decimal_major" }
    [response_code]                       # the decision from several response elements
    elements = ["Outcome/Status", "Outcome/Code"]
    join = "-"
    [codes."A-000"]                       # or code_table = "path/to/codes.toml"
    decision = "approve"
    reason = "approved"
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import Field, StrictBool

from cutover.adapters.valuemaps import ValueMap, resolve_map
from cutover.config import StrictModel, config_model, load
from cutover.domain import DECISIONS, TRAFFIC, MoneyError, currency_exponent, to_minor
from cutover.errors import ConfigError

FORMATS: Final = ("text", "int_minor", "decimal_major", "datetime")
DATETIME_PATTERN_DEFAULT: Final = "%Y-%m-%dT%H:%M:%SZ"
RESPONSE_FIELDS: Final = ("response_code", "auth_code", "route", "fee_minor", "trace_id",
                          "response_ts")
#: Canonical fields a request may carry: the traffic record's, and a clear card number when
#: recording from a request file (it goes on the wire only, never to disk).
REQUEST_FIELDS: Final = tuple(f.name for f in TRAFFIC if not f.name.startswith("legacy_")
                              ) + ("pan",)
GENERATED_KINDS: Final = ("from_txn_id", "uuid5_txn_id", "uuid4", "sequence")
RETRY_CLASSES: Final = ("none", "soft", "hard")
CODE_CHARS_MAX: Final = 32
PATH_SEP: Final = "/"
#: Namespace of the deterministic message ids of ``uuid5_txn_id``.
_UUID_NS: Final = uuid.UUID("6f1c7a52-0d0e-4c55-9c1e-5a3b1f0f2a11")

Format = Literal["text", "int_minor", "decimal_major", "datetime"]


class RequestFieldSpec(StrictModel):
    """Where one canonical field goes in the request, and how it is written."""

    element: str | list[str] = Field(description="path, or several paths, in the request")
    format: Format = Field("text", description="text, int_minor, decimal_major (by the"
                           " currency's exponent) or datetime")
    pattern: str = Field(DATETIME_PATTERN_DEFAULT, description="strftime pattern (datetime)")
    map: str | None = Field(None, description="name of a [maps] entry: canonical -> foreign")


class ResponseFieldSpec(StrictModel):
    """Which canonical field one response element carries, and how it is read."""

    field: str = Field(description=f"one of {', '.join(RESPONSE_FIELDS)}")
    format: Format = Field("text", description="as in [request]")
    pattern: str = Field(DATETIME_PATTERN_DEFAULT, description="strptime pattern (datetime)")
    map: str | None = Field(None, description="name of a [maps] entry: foreign -> canonical")


class GeneratedSpec(StrictModel):
    """A request element whose value cutover makes for each call."""

    kind: Literal["from_txn_id", "uuid5_txn_id", "uuid4", "sequence"] = Field(
        description="from_txn_id (template), uuid5_txn_id (same txn, same id), uuid4, sequence")
    template: str = Field("{value}", description="text around the value, e.g. 'MSG-{value}'")
    start: int = Field(1, ge=0, description="first number of a sequence")


class ResponseCodeSpec(StrictModel):
    """The response code read from several elements, joined (status letter plus code)."""

    elements: list[str] = Field(min_length=1, description="paths in the response, in order")
    join: str = Field("-", description="text between the parts")


class CodeSpec(StrictModel):
    """What one response code means."""

    decision: Literal["approve", "decline", "review", "error"]
    reason: str = Field(min_length=1)
    retry: Literal["none", "soft", "hard"] = "none"


@config_model("soap-mapping", "cutover/fixtures/mappings/*.toml (SOAP cores)")
class MappingFile(StrictModel):
    """A SOAP mapping: one WSDL operation <-> canonical fields; see docs/mapping.md."""

    wsdl: str = Field(description="WSDL path (relative to the mapping) or URL")
    operation: str
    namespace: str = Field(description="target namespace of the reply element")
    idempotent: StrictBool = Field(False, description="true: the same txn twice is safe"
                                   " (retries)")
    code_table: str | None = Field(None, description="code table TOML, relative to the mapping")
    codes: dict[str, CodeSpec] = Field(default_factory=dict, description="inline code table")
    maps: dict[str, str | dict[str, str]] = Field(default_factory=dict,
                                                  description="value maps by name")
    request: dict[str, str | RequestFieldSpec]
    constants: dict[str, str | int | bool] = Field(default_factory=dict,
                                                   description="request path -> fixed value")
    generated: dict[str, GeneratedSpec] = Field(default_factory=dict,
                                                description="request path -> generated value")
    response: dict[str, str | ResponseFieldSpec] = Field(
        description="response path -> canonical field")
    response_code: ResponseCodeSpec | None = None


@dataclass(frozen=True)
class FieldMap:
    """One canonical field <-> one element path, its format and value map."""

    canonical: str
    path: tuple[str, ...]
    fmt: str = "text"
    pattern: str = DATETIME_PATTERN_DEFAULT
    vmap: ValueMap | None = None


@dataclass(frozen=True)
class Generated:
    """One generated request element."""

    path: tuple[str, ...]
    kind: str
    template: str
    counter: Any = None


@dataclass(frozen=True)
class Mapping:
    """A whole mapping file, checked: operation, request and response fields, codes."""

    source: Path
    wsdl: str
    operation: str
    namespace: str
    idempotent: bool
    request: tuple[FieldMap, ...]
    response: tuple[FieldMap, ...]
    code_table: Path | None = None
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    constants: tuple[tuple[tuple[str, ...], Any], ...] = ()
    generated: tuple[Generated, ...] = ()
    code_paths: tuple[tuple[str, ...], ...] = ()
    code_join: str = "-"

    def request_paths(self) -> list[str]:
        """Every request path the mapping writes."""
        paths = [f.path for f in self.request] + [p for p, _ in self.constants]
        return [PATH_SEP.join(p) for p in paths + [g.path for g in self.generated]]

    def response_paths(self) -> list[str]:
        """Every response path the mapping reads."""
        return [PATH_SEP.join(p) for p in [f.path for f in self.response] + list(self.code_paths)]

    def element_of(self, canonical: str) -> str | None:
        """The first request path carrying ``canonical``."""
        return next((PATH_SEP.join(f.path) for f in self.request if f.canonical == canonical),
                    None)


def split_path(where: str, text: str) -> tuple[str, ...]:
    """``A/B/C`` -> ("A", "B", "C"); ConfigError for an empty part."""
    parts = tuple(p.strip() for p in text.split(PATH_SEP))
    if not all(parts):
        raise ConfigError(f"{where}: path {text!r} has an empty part; write names separated"
                          f" by '{PATH_SEP}', e.g. 'Header/MsgId'")
    return parts


def _vmap(where: str, name: str | None, maps: dict[str, ValueMap]) -> ValueMap | None:
    if name is None:
        return None
    if name not in maps:
        raise ConfigError(f"{where}: map {name!r} is not in [maps]; defined: "
                          f"{', '.join(sorted(maps)) or '(none)'}")
    return maps[name]


def _request_maps(doc: MappingFile, where: str, maps: dict[str, ValueMap]
                  ) -> tuple[FieldMap, ...]:
    out = []
    for canonical, spec in doc.request.items():
        key = f"{where} request.{canonical}"
        if canonical not in REQUEST_FIELDS:
            raise ConfigError(f"{key}: unknown canonical field; allowed: "
                              f"{', '.join(REQUEST_FIELDS)}")
        spec = RequestFieldSpec(element=spec) if isinstance(spec, str) else spec
        elements = [spec.element] if isinstance(spec.element, str) else spec.element
        if not elements:
            raise ConfigError(f"{key}: element needs at least one path")
        for element in elements:
            out.append(FieldMap(canonical, split_path(key, element), spec.format, spec.pattern,
                                _vmap(key, spec.map, maps)))
    return tuple(out)


def _response_maps(doc: MappingFile, where: str, maps: dict[str, ValueMap]
                   ) -> tuple[FieldMap, ...]:
    out = []
    for element, spec in doc.response.items():
        key = f"{where} response.{element!r}"
        spec = ResponseFieldSpec(field=spec) if isinstance(spec, str) else spec
        if spec.field not in RESPONSE_FIELDS:
            raise ConfigError(f"{key}: field {spec.field!r} is not a response field; allowed: "
                              f"{', '.join(RESPONSE_FIELDS)}")
        out.append(FieldMap(spec.field, split_path(key, element), spec.format, spec.pattern,
                            _vmap(key, spec.map, maps)))
    return tuple(out)


def _check_codes(doc: MappingFile, where: str) -> None:
    for code in doc.codes:
        if not 0 < len(code) <= CODE_CHARS_MAX:
            raise ConfigError(f"{where} codes.{code!r}: a code has 1 to {CODE_CHARS_MAX}"
                              " characters")
    if not doc.codes and doc.code_table is None:
        raise ConfigError(f"{where}: no [codes] and no code_table; the response codes need a"
                          " meaning (add [codes.\"00\"] decision = ..., or code_table = ...)")


def load_mapping(path: Path | str) -> Mapping:
    """Read and check a mapping file; ``ConfigError`` names the file, the key and what is
    allowed. Paths are checked against the WSDL when the adapter opens it
    (``cutover.adapters.wsdl_tree.check_mapping_paths``)."""
    path = Path(path)
    doc = load(MappingFile, path)
    where = str(path)
    maps = {name: resolve_map(name, spec, path.parent, f"{where} maps.{name}")
            for name, spec in doc.maps.items()}
    request = _request_maps(doc, where, maps)
    response = _response_maps(doc, where, maps)
    code_paths = tuple(split_path(f"{where} response_code", e)
                       for e in (doc.response_code.elements if doc.response_code else []))
    from_elements = [f for f in response if f.canonical == "response_code"]
    if bool(code_paths) == bool(from_elements):
        raise ConfigError(f"{where}: the response code must come from exactly one place: an"
                          " element mapped to 'response_code' in [response], or [response_code]")
    if "txn_id" not in {f.canonical for f in request}:
        raise ConfigError(f"{where} [request]: no element carries 'txn_id' (the idempotency key)")
    _check_codes(doc, where)
    wsdl = doc.wsdl
    if "://" not in wsdl and not Path(wsdl).is_absolute():
        wsdl = str((path.parent / wsdl).resolve())
    generated = tuple(
        Generated(split_path(f"{where} generated.{p!r}", p), g.kind, g.template,
                  itertools.count(g.start) if g.kind == "sequence" else None)
        for p, g in doc.generated.items())
    constants = tuple((split_path(f"{where} constants.{p!r}", p), v)
                      for p, v in doc.constants.items())
    codes = {c: s.model_dump() for c, s in doc.codes.items()}
    return Mapping(path, wsdl, doc.operation, doc.namespace, doc.idempotent, request, response,
                   (path.parent / doc.code_table).resolve() if doc.code_table else None, codes,
                   constants, generated, code_paths,
                   doc.response_code.join if doc.response_code else "-")


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
    if fmap.vmap is not None:
        return fmap.vmap.foreign(str(value))
    return str(value)


def _put(out: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = out
    for name in path[:-1]:
        node = node.setdefault(name, {})
    node[path[-1]] = value


def _generate(gen: Generated, txn_id: str) -> str:
    if gen.kind == "from_txn_id":
        value: Any = txn_id
    elif gen.kind == "uuid5_txn_id":
        value = uuid.uuid5(_UUID_NS, txn_id)
    elif gen.kind == "uuid4":
        value = uuid.uuid4()
    else:
        value = next(gen.counter)
    return gen.template.replace("{value}", str(value))


def build_request(mapping: Mapping, txn: dict[str, Any]) -> dict[str, Any]:
    """Return the operation's keyword arguments (nested dicts for paths) for ``txn``.

    Raises ``KeyError`` naming a canonical field the transaction lacks, ``ValueError`` for a
    value a value map does not hold (with the allowed values).
    """
    out: dict[str, Any] = {}
    currency = txn.get("currency")
    for fmap in mapping.request:
        if fmap.canonical not in txn or txn[fmap.canonical] is None:
            raise KeyError(f"transaction {txn.get('txn_id')!r} lacks field {fmap.canonical!r}")
        _put(out, fmap.path, _format_value(fmap, txn[fmap.canonical], currency))
    for path, value in mapping.constants:
        _put(out, path, value)
    for gen in mapping.generated:
        _put(out, gen.path, _generate(gen, str(txn.get("txn_id"))))
    return out


def dig(reply: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` in a zeep object or nested dict; None when any step is absent."""
    for name in path:
        if reply is None:
            return None
        if isinstance(reply, list):
            reply = reply[0] if reply else None
        reply = reply.get(name) if isinstance(reply, dict) else getattr(reply, name, None)
    return reply


def _read_value(fmap: FieldMap, value: Any, currency: str) -> Any:
    if value is None:
        return None
    if fmap.vmap is not None:
        value = fmap.vmap.canonical(str(value))
    if fmap.fmt == "decimal_major":
        return to_minor(str(value), currency)
    if fmap.fmt == "int_minor":
        return int(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def read_response(mapping: Mapping, reply: Any, currency: str) -> dict[str, Any]:
    """Return every mapped response field by canonical name; amounts in minor units.

    Raises ``ValueError`` (or ``MoneyError``) naming the element whose value is unreadable.
    """
    out: dict[str, Any] = {}
    for fmap in mapping.response:
        try:
            out[fmap.canonical] = _read_value(fmap, dig(reply, fmap.path), currency)
        except (ValueError, ArithmeticError) as exc:
            kind = MoneyError if isinstance(exc, MoneyError) else ValueError
            raise kind(f"response element {PATH_SEP.join(fmap.path)}: {exc}") from exc
    if mapping.code_paths:
        parts = [dig(reply, p) for p in mapping.code_paths]
        missing = [PATH_SEP.join(p) for p, v in zip(mapping.code_paths, parts, strict=True)
                   if v is None]
        if missing:
            raise ValueError(f"response element {missing[0]} is missing (part of the code)")
        out["response_code"] = mapping.code_join.join(str(v) for v in parts)
    return out


def read_request(mapping: Mapping, request: dict[str, Any]) -> dict[str, Any]:
    """The canonical fields of a request given as a nested dict (a cassette's body).

    The inverse of ``build_request``: values mapped back, amounts to minor units. Raises
    ``ValueError`` naming the element that is missing or unreadable.
    """
    row: dict[str, Any] = {}
    by_canonical: dict[str, FieldMap] = {}
    for fmap in mapping.request:
        by_canonical.setdefault(fmap.canonical, fmap)
    ordered = sorted(by_canonical.values(), key=lambda f: f.fmt == "decimal_major")
    for fmap in ordered:
        text = dig(request, fmap.path)
        element = PATH_SEP.join(fmap.path)
        if text is None:
            raise ValueError(f"request element {element} missing")
        try:
            if fmap.vmap is not None:
                text = fmap.vmap.canonical(str(text))
            if fmap.fmt == "int_minor":
                row[fmap.canonical] = int(text)
            elif fmap.fmt == "decimal_major":
                row[fmap.canonical] = to_minor(str(text), str(row.get("currency", "")))
            elif fmap.fmt == "datetime":
                row[fmap.canonical] = datetime.strptime(str(text), fmap.pattern).replace(
                    tzinfo=UTC)
            else:
                row[fmap.canonical] = str(text)
        except (ValueError, ArithmeticError) as exc:
            raise ValueError(f"request element {element}: {exc}") from exc
    return row


def xml_to_nested(element: Any) -> Any:
    """An lxml element as nested dicts of local names (leaves as text); first of repeats."""
    children = [c for c in element if isinstance(c.tag, str)]
    if not children:
        return (element.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        out.setdefault(child.tag.rsplit("}", 1)[-1], xml_to_nested(child))
    return out


def decision_values() -> tuple[str, ...]:
    """The decisions a code may mean (for documentation and errors)."""
    return DECISIONS
