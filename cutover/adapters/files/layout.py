"""The record layout language: a TOML spec that says where every field of a batch file lives.

Legacy cores speak in fixed-width files whose meaning lives in copybooks and folklore. A layout
writes that meaning down once, as data, so the reader, the writer and the control-total checks
all work from the same description and a new file format is a new TOML file, not new code.

A layout is validated when loaded: every field must fit its record, fields must not overlap,
and every type must be one this package can decode *and* encode back byte for byte. Positions
not covered by a field become constant "fill" fields, so round trips never lose a byte.

A delimited layout (``format = "delimited"``) lists its fields in column order, each with the
widest value it may hold. It is loaded as the fixed-width layout of those widest values, so the
codecs, matchers and control totals are the same code for both kinds of file; only the edges
differ (cutover.adapters.files.delimited turns a line into that fixed form and back).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from cutover.errors import LayoutError
from cutover.paths import fixtures_dir

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
FORMATS: Final = ("fixed", "delimited")
#: Characters that cannot separate fields: they end lines, pad fields or sign numbers.
DELIMITERS_REFUSED: Final = frozenset("\r\n -+0123456789")
SCOPES: Final = ("file", "batch")
#: Format checkers a layout may name (structure and code tables beyond field layout).
CHECKERS: Final = ("nacha",)
BUILTIN: Final = ("legacy_authlog", "legacy_balances", "legacy_settlement", "nacha")


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
    delimiter: str | None = None
    #: Pad a line shorter than ``record_length`` with spaces (a warning, not a reject).
    pad_short_lines: bool = False
    #: Accept a CR before the line ending "\n" (files written on Windows).
    accept_crlf: bool = False
    #: Name of a format checker run beside the layout (structure and code tables): "nacha".
    checker: str | None = None
    by_name: dict[str, RecordType] = field(default_factory=dict, compare=False)

    @property
    def delimited(self) -> bool:
        """True for a delimited layout (fields by column), False for fixed width."""
        return self.delimiter is not None

    def record(self, name: str) -> RecordType:
        """Return the record type called ``name``; LayoutError if the layout has none."""
        try:
            return self.by_name[name]
        except KeyError:
            raise LayoutError(f"layout {self.name}: no record type {name!r}"
                              f" (has {sorted(self.by_name)})") from None


def layouts_dir() -> Path:
    """Directory of the built-in layouts (under the fixtures directory)."""
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
    ending = head.get("line_ending", "\n")
    if ending not in ("\n", "\r\n", ""):
        raise LayoutError(f"{where}: line_ending must be \"\\n\", \"\\r\\n\" or \"\"")
    raw_records = spec.get("record")
    if not isinstance(raw_records, list) or not raw_records:
        raise LayoutError(f"{where}: needs at least one [[record]]")
    delimiter = _delimiter(head, ending, where)
    if delimiter is not None:
        raw_records = [_place_columns(r, f"{where} record #{i + 1}")
                       for i, r in enumerate(raw_records)]
        length = max(_columns_width(r) for r in raw_records)
    else:
        length = _need(head, "record_length", int, where)
    if length <= 0:
        raise LayoutError(f"{where}: record_length must be positive, got {length}")
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
        source=source, delimiter=delimiter, by_name=by_name,
        pad_short_lines=_flag(head, "pad_short_lines", where),
        accept_crlf=_flag(head, "accept_crlf", where), checker=_checker(head, where),
    )
    _check_references(layout, where)
    return layout


def _flag(head: dict[str, Any], key: str, where: str) -> bool:
    value = head.get(key, False)
    if not isinstance(value, bool):
        raise LayoutError(f"{where}: '{key}' must be true or false, got {value!r}")
    return value


def _checker(head: dict[str, Any], where: str) -> str | None:
    value = head.get("checker")
    if value is not None and value not in CHECKERS:
        raise LayoutError(f"{where}: checker must be one of {', '.join(CHECKERS)}, got {value!r}")
    return value


def _delimiter(head: dict[str, Any], ending: str, where: str) -> str | None:
    """The field separator of a delimited layout, None for fixed width; refuses bad ones."""
    kind = head.get("format", "fixed")
    if kind not in FORMATS:
        raise LayoutError(f"{where}: format must be one of {', '.join(FORMATS)}, got {kind!r}")
    if kind == "fixed":
        return None
    delimiter = _need(head, "delimiter", str, where)
    if len(delimiter) != 1 or not delimiter.isascii() or delimiter in DELIMITERS_REFUSED:
        raise LayoutError(f"{where}: delimiter must be one ASCII character other than a digit,"
                          f" sign, space or line break, got {delimiter!r}")
    if not ending:
        raise LayoutError(f"{where}: a delimited file needs a line_ending")
    if "record_length" in head:
        raise LayoutError(f"{where}: a delimited layout has no record_length; each field's"
                          " length is the widest value its column may hold")
    return delimiter


def _place_columns(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """A delimited record with its fields placed end to end, as if fixed width (pure).

    Columns are matched by number (``match = [{column = 1, value = "D"}]``); each becomes a
    fixed-position matcher on its field, padded the way that field is padded.
    """
    fields, start = [], 1
    for i, f in enumerate(raw.get("fields", [])):
        label = f"{where} field {f.get('name', f'#{i + 1}')!r}"
        if "start" in f:
            raise LayoutError(f"{label}: a delimited field is placed by its column order;"
                              " drop 'start'")
        if f.get("type") == "packed":
            raise LayoutError(f"{label}: packed decimal is binary and cannot sit in a"
                              " delimited text file")
        width = f.get("length")
        if width is None and f.get("type") in ("date", "time"):
            width = {**DATE_FORMATS, **TIME_FORMATS}.get(f.get("format", ""))
        if width is None and f.get("type") == "timestamp":
            width = TIMESTAMP_WIDTH
        if width is None and f.get("type") == "constant" and isinstance(f.get("value"), str):
            width = len(f["value"])
        if not isinstance(width, int) or isinstance(width, bool) or width <= 0:
            raise LayoutError(f"{label}: needs 'length', the widest value of its column")
        fields.append({**f, "start": start, "length": width})
        start += width
    matchers = []
    for m in raw.get("match", []):
        column = m.get("column")
        if not isinstance(column, int) or not 1 <= column <= len(fields):
            raise LayoutError(f"{where}: a delimited match needs 'column' between 1 and"
                              f" {len(fields)}")
        spec = fields[column - 1]
        values = m.get("values") or ([m["value"]] if "value" in m else [])
        pad, width = spec.get("pad", " "), spec["length"]
        padded = [v.rjust(width, pad) if spec.get("justify") == "right" else v.ljust(width, pad)
                  for v in values if isinstance(v, str) and len(v) <= width]
        if not values or len(padded) != len(values):
            raise LayoutError(f"{where}: match on column {column} needs values of at most"
                              f" {width} characters")
        matchers.append({"start": spec["start"], "length": width, "values": padded})
    return {**raw, "fields": fields, "match": matchers}


def _columns_width(raw: dict[str, Any]) -> int:
    return sum(f["length"] for f in raw["fields"])


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
