"""Import any supported source into the traffic store: pick the reader by format and hand over.

The one entry point the CLI and the demo call; it sits above the readers (CSV / JSON lines and
batch files in ``importer``, cassettes in ``cassette``) so none of them imports another.
"""

from __future__ import annotations

from pathlib import Path

from cutover.adapters.cassette import import_cassette
from cutover.adapters.codes import CodeInfo, CodeTable
from cutover.adapters.columns import ColumnMap
from cutover.adapters.importer import ImportCounts, import_file, import_layout, load_codes
from cutover.adapters.iso8583 import import_iso8583
from cutover.adapters.statements.payments import import_payments
from cutover.errors import ConfigError, InputError


def detect_format(path: Path) -> str:
    """Guess a source's format from its name: cassette, csv, jsonl, else a layout file."""
    name = path.name.lower()
    if name.endswith((".yaml", ".yml")):
        return "cassette"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith(".xml"):
        return "iso20022"
    if name.endswith((".iso8583", ".8583")):
        return "iso8583"
    return "layout"


def _column_codes(columns: ColumnMap) -> object:
    """The column mapping's inline [codes], else its code_table, else the shipped table."""
    if columns.codes:
        return CodeTable({c: CodeInfo(**v) for c, v in columns.codes.items()},
                         source=str(columns.source))
    return load_codes(columns.code_table)


def import_source(path: Path, store: Path, *, fmt: str = "auto", layout: str | None = None,
                  columns: ColumnMap | None = None, soap_mapping: Path | None = None,
                  key: bytes | None = None, chunk_rows: int | None = None,
                  switch: str = "ascii_switch", year: int | None = None) -> ImportCounts:
    """Import one source of any supported format; raise ``InputError`` for what cannot be read.

    ``chunk_rows`` applies to batch files, which are imported in chunks of that many rows.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt in ("csv", "jsonl"):
        if columns is None:
            raise ConfigError(f"{path}: a {fmt} source needs --mapping COLUMNS.toml")
        return import_file(path, store, fmt, columns, _column_codes(columns), key)
    if fmt == "layout":
        return import_layout(path, store, layout or "legacy_authlog", load_codes(None),
                             chunk_rows, key=key)
    if fmt == "cassette":
        return import_cassette(path, store, soap_mapping, key=key)
    if fmt == "iso20022":
        return import_payments(path, store)
    if fmt == "iso8583":
        if key is None:
            raise ConfigError(f"{path}: an ISO 8583 log carries card numbers; set"
                              " CUTOVER_TOKEN_KEY to tokenise them")
        counts, _ = import_iso8583(path, store, switch, key, year)
        return counts
    raise ConfigError(f"--format {fmt!r}: expected auto, cassette, layout, csv, jsonl, iso20022"
                      " or iso8583")
