"""The record layout language: a TOML spec that says where every field of a batch file lives.

Legacy cores speak in fixed-width files whose meaning lives in copybooks and folklore. A layout
writes that meaning down once, as data, so the reader, the writer and the control-total checks
all work from the same description and a new file format is a new TOML file, not new code.

A layout is validated when loaded: every field must fit its record, fields must not overlap,
and every type must be one this package can decode *and* encode back byte for byte. Positions
not covered by a field become constant "fill" fields, so round trips never lose a byte.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from cutover.errors import LayoutError

FIELD_TYPES: Final = ("text", "integer", "amount", "packed", "date", "time", "timestamp",
                      "constant")
DATE_FORMATS: Final = {"YYMMDD": 6, "CCYYMMDD": 8, "YYDDD": 5, "CCYYDDD": 7}
TIME_FORMATS: Final = {"HHMM": 4, "HHMMSS": 6}
#: CCYYMMDDHHMMSS plus six digits of microseconds: the legacy core's transaction time.
TIMESTAMP_WIDTH: Final = 20
SIGNS: Final = ("none", "overpunch")
TRIMS: Final = ("right", "left", "both", "none")
#: int64 holds 18 decimal digits safely; a wider numeric field could overflow silently.
NUMERIC_DIGITS_MAX: Final = 18
CONTROL_KINDS: Final = ("count", "sum", "hash")
SCOPES: Final = ("file", "batch")
BUILTIN: Final = ("legacy_authlog", "legacy_balances", "nacha")


@dataclass(frozen=True)
class FieldSpec:
    """One field of a record: where it sits, how it is encoded, what Arrow type it reads as."""

    name: str
    start: int
    length: int
    type: str
    optional: bool = False
    trim: str = "right"
    pad: str = " "
    justify: str = "left"
    sign: str = "none"
    currency: str | None = None
    currency_field: str | None = None
    format: str | None = None
    value: str | None = None

    @property
    def stop(self) -> int:
        """Exclusive 0-based end offset of the field in the record."""
        return self.start - 1 + self.length

    @property
    def arrow_type(self) -> pa.DataType | None:
        """The column type this field reads as; None for constants (not emitted)."""
        return {
            "text": pa.string(), "integer": pa.int64(), "amount": pa.int64(),
            "packed": pa.int64(), "date": pa.date32(), "time": pa.time32("s"),
            "timestamp": pa.timestamp("us", tz="UTC"),
        }.get(self.type)


@dataclass(frozen=True)
class Matcher:
    """A discriminator: the bytes at (start, length) must be one of ``values``."""

    start: int
    length: int
    values: tuple[str, ...]


@dataclass(frozen=True)
class RecordType:
    """A kind of record, recognised by its matchers, made of fields covering every byte."""

    name: str
    matchers: tuple[Matcher, ...]
    fields: tuple[FieldSpec, ...]
    fill: str = " "

    @property
    def data_fields(self) -> tuple[FieldSpec, ...]:
        """The fields that become columns (everything but constants)."""
        return tuple(f for f in self.fields if f.type != "constant")

    def schema(self) -> pa.Schema:
        """Arrow schema of this record type's batches, including ``_line``."""
        cols = [pa.field(f.name, f.arrow_type) for f in self.data_fields]
        return pa.schema([*cols, pa.field("_line", pa.int64())])


@dataclass(frozen=True)
class ControlSpec:
    """A control total: what to count or add up, over which scope, and where it is declared."""

    name: str
    scope: str
    kind: str
    records: tuple[str, ...]
    expected_record: str
    expected_field: str
    field: str | None = None
    where_field: str | None = None
    where_in: tuple[int, ...] = ()
    digits: int | None = None


@dataclass(frozen=True)
class Layout:
    """A whole file format: encoding, framing, record types in match order, controls."""

    name: str
    description: str
    encoding: str
    record_length: int
    line_ending: str
    records: tuple[RecordType, ...]
    controls: tuple[ControlSpec, ...] = ()
    batch_open: str | None = None
    block_records: int | None = None
    block_pad_record: str | None = None
    source: str = ""
    by_name: dict[str, RecordType] = field(default_factory=dict, compare=False)

    def record(self, name: str) -> RecordType:
        """Return the record type called ``name``; LayoutError if the layout has none."""
        try:
            return self.by_name[name]
        except KeyError:
            raise LayoutError(f"layout {self.name}: no record type {name!r}"
                              f" (has {sorted(self.by_name)})") from None


def layouts_dir() -> Path:
    """Directory of the built-in layouts (under the fixtures directory)."""
    from cutover.paths import fixtures_dir

    return fixtures_dir() / "layouts"


def builtin_layouts() -> list[tuple[str, str]]:
    """Return ``(name, description)`` of every built-in layout."""
    return [(name, load_layout(name).description) for name in BUILTIN]


def load_layout(name_or_path: str | Path) -> Layout:
    """Load a built-in layout by name or a layout TOML by path; LayoutError names what is wrong."""
    text_name = str(name_or_path)
    path = layouts_dir() / f"{text_name}.toml" if text_name in BUILTIN else Path(name_or_path)
    if not path.is_file():
        raise LayoutError(f"layout {text_name!r}: no such built-in layout or file"
                          f" (built-ins: {', '.join(BUILTIN)})")
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LayoutError(f"layout {path}: not valid TOML: {exc}") from exc
    return parse_layout(spec, source=str(path))


def _need(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = table.get(key)
    if value is None or not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise LayoutError(f"{where}: '{key}' is required and must be {kind.__name__}")
    return value


def parse_layout(spec: dict[str, Any], source: str = "<dict>") -> Layout:
    """Build and validate a Layout from a parsed TOML document (pure)."""
    head = spec.get("layout")
    if not isinstance(head, dict):
        raise LayoutError(f"layout {source}: missing [layout] table")
    where = f"layout {source}"
    name = _need(head, "name", str, where)
    length = _need(head, "record_length", int, where)
    if length <= 0:
        raise LayoutError(f"{where}: record_length must be positive, got {length}")
    ending = head.get("line_ending", "\n")
    if ending not in ("\n", "\r\n", ""):
        raise LayoutError(f"{where}: line_ending must be \"\\n\", \"\\r\\n\" or \"\"")
    raw_records = spec.get("record")
    if not isinstance(raw_records, list) or not raw_records:
        raise LayoutError(f"{where}: needs at least one [[record]]")
    records = tuple(_parse_record(r, length, f"{where} record #{i + 1}")
                    for i, r in enumerate(raw_records))
    by_name = {r.name: r for r in records}
    if len(by_name) != len(records):
        raise LayoutError(f"{where}: record type names must be unique")
    controls = tuple(_parse_control(c, by_name, f"{where} control #{i + 1}")
                     for i, c in enumerate(spec.get("control", [])))
    layout = Layout(
        name=name, description=head.get("description", ""),
        encoding=head.get("encoding", "ascii"), record_length=length, line_ending=ending,
        records=records, controls=controls, batch_open=head.get("batch_open"),
        block_records=head.get("block_records"), block_pad_record=head.get("block_pad_record"),
        source=source, by_name=by_name,
    )
    _check_references(layout, where)
    return layout


def _check_references(layout: Layout, where: str) -> None:
    try:
        "x".encode(layout.encoding)
    except LookupError as exc:
        raise LayoutError(f"{where}: unknown encoding {layout.encoding!r}") from exc
    for ref in (layout.batch_open, layout.block_pad_record):
        if ref is not None and ref not in layout.by_name:
            raise LayoutError(f"{where}: refers to unknown record type {ref!r}")
    if any(c.scope == "batch" for c in layout.controls) and layout.batch_open is None:
        raise LayoutError(f"{where}: batch-scope controls need [layout] batch_open")


def _parse_record(raw: dict[str, Any], record_length: int, where: str) -> RecordType:
    name = _need(raw, "name", str, where)
    where = f"{where.rsplit(' record', 1)[0]} record {name!r}"
    matchers = []
    for m in _need(raw, "match", list, where):
        start, length = _need(m, "start", int, where), _need(m, "length", int, where)
        values = m.get("values") or ([m["value"]] if "value" in m else None)
        if not values or any(len(v) != length for v in values):
            raise LayoutError(f"{where}: match at {start} needs values of length {length}")
        if start < 1 or start - 1 + length > record_length:
            raise LayoutError(f"{where}: match at {start}+{length} is outside the record")
        matchers.append(Matcher(start, length, tuple(values)))
    fill = raw.get("fill", " ")
    fields = [_parse_field(f, f"{where} field #{i + 1}")
              for i, f in enumerate(raw.get("fields", []))]
    return RecordType(name, tuple(matchers), _cover(fields, record_length, fill, where), fill)


def _cover(fields: list[FieldSpec], record_length: int, fill: str,
           where: str) -> tuple[FieldSpec, ...]:
    """Check fields fit and do not overlap; fill every gap with a constant so no byte is lost."""
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise LayoutError(f"{where}: field names must be unique")
    out: list[FieldSpec] = []
    cursor = 1
    for f in sorted(fields, key=lambda f: f.start):
        if f.start < cursor:
            raise LayoutError(f"{where} field {f.name!r}: starts at {f.start}, overlapping the"
                              f" previous field (which ends at {cursor - 1})")
        if f.stop > record_length:
            raise LayoutError(f"{where} field {f.name!r}: ends at {f.stop}, past the record"
                              f" length {record_length}")
        if f.start > cursor:
            out.append(_filler(cursor, f.start - cursor, fill))
        out.append(f)
        cursor = f.stop + 1
    if cursor <= record_length:
        out.append(_filler(cursor, record_length - cursor + 1, fill))
    return tuple(out)


def _filler(start: int, length: int, fill: str) -> FieldSpec:
    return FieldSpec(name=f"_fill_{start}", start=start, length=length, type="constant",
                     value=fill * length)


def _parse_field(raw: dict[str, Any], where: str) -> FieldSpec:
    name = _need(raw, "name", str, where)
    where = f"{where.rsplit(' field', 1)[0]} field {name!r}"
    ftype = raw.get("type", "text")
    if ftype not in FIELD_TYPES:
        raise LayoutError(f"{where}: type {ftype!r} is not one of {', '.join(FIELD_TYPES)}")
    start = _need(raw, "start", int, where)
    length = raw.get("length")
    if ftype == "constant" and length is None:
        length = len(_need(raw, "value", str, where))
    if ftype == "timestamp" and length is None:
        length = TIMESTAMP_WIDTH
    if ftype in ("date", "time"):
        fmt = _need(raw, "format", str, where)
        table = DATE_FORMATS if ftype == "date" else TIME_FORMATS
        if fmt not in table:
            raise LayoutError(f"{where}: format {fmt!r} is not one of {', '.join(table)}")
        length = table[fmt] if length is None else length
        if length != table[fmt]:
            raise LayoutError(f"{where}: format {fmt} is {table[fmt]} wide, length says {length}")
    if not isinstance(length, int) or isinstance(length, bool) or length <= 0 or start < 1:
        raise LayoutError(f"{where}: needs a positive integer 'length' and 'start' >= 1")
    spec = FieldSpec(
        name=name, start=start, length=length, type=ftype,
        optional=bool(raw.get("optional", False)), trim=raw.get("trim", "right"),
        pad=raw.get("pad", " "), justify=raw.get("justify", "left"),
        sign=raw.get("sign", "none"), currency=raw.get("currency"),
        currency_field=raw.get("currency_field"), format=raw.get("format"),
        value=raw.get("value"),
    )
    _check_field(spec, where)
    return spec


def _check_field(f: FieldSpec, where: str) -> None:
    if f.trim not in TRIMS or f.justify not in ("left", "right") or len(f.pad) != 1:
        raise LayoutError(f"{where}: trim must be one of {TRIMS}, justify left|right, pad 1 char")
    if f.sign not in SIGNS:
        raise LayoutError(f"{where}: sign must be one of {SIGNS}")
    if f.type in ("integer", "amount") and f.length > NUMERIC_DIGITS_MAX:
        raise LayoutError(f"{where}: {f.length} digits may overflow int64"
                          f" (max {NUMERIC_DIGITS_MAX})")
    if f.type == "packed" and f.length * 2 - 1 > NUMERIC_DIGITS_MAX:
        raise LayoutError(f"{where}: packed field of {f.length} bytes may overflow int64")
    if f.type == "amount" and (f.currency is None) == (f.currency_field is None):
        raise LayoutError(f"{where}: an amount needs exactly one of 'currency' or"
                          " 'currency_field'")
    if f.type == "constant" and (f.value is None or len(f.value) != f.length):
        raise LayoutError(f"{where}: a constant needs a 'value' of exactly {f.length} characters")
    if f.type == "timestamp" and f.length != TIMESTAMP_WIDTH:
        raise LayoutError(f"{where}: a timestamp is CCYYMMDDHHMMSSffffff, {TIMESTAMP_WIDTH} wide")


def _parse_control(raw: dict[str, Any], by_name: dict[str, RecordType],
                   where: str) -> ControlSpec:
    name = _need(raw, "name", str, where)
    where = f"{where.rsplit(' control', 1)[0]} control {name!r}"
    kind, scope = raw.get("kind"), raw.get("scope", "file")
    if kind not in CONTROL_KINDS or scope not in SCOPES:
        raise LayoutError(f"{where}: kind must be one of {CONTROL_KINDS}, scope one of {SCOPES}")
    records = tuple(_need(raw, "records", list, where))
    expected = _need(raw, "expected", str, where)
    exp_record, _, exp_field = expected.partition(".")
    for rec in (*records, exp_record):
        if rec not in by_name:
            raise LayoutError(f"{where}: unknown record type {rec!r}")
    field_name = raw.get("field")
    if kind != "count" and field_name is None:
        raise LayoutError(f"{where}: a {kind} control needs 'field'")
    needed = [(exp_record, exp_field)] + [(r, n) for r in records
                                         for n in (field_name, raw.get("where_field")) if n]
    for rec, fname in needed:
        if fname not in {f.name for f in by_name[rec].data_fields}:
            raise LayoutError(f"{where}: record type {rec!r} has no field {fname!r}")
    return ControlSpec(
        name=name, scope=scope, kind=kind, records=records, expected_record=exp_record,
        expected_field=exp_field, field=field_name, where_field=raw.get("where_field"),
        where_in=tuple(raw.get("where_in", ())), digits=raw.get("digits"),
    )
