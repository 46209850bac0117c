"""Import outside records (CSV / JSON lines exports, cassettes) into the TRAFFIC store.

Every record read ends in exactly one place: imported, a duplicate (its txn_id is already in
this input or in the store) or quarantined with a reason in ``STORE/_quarantine/<source>.jsonl``
(PANs masked). ``read = imported + duplicates + quarantined`` is checked, and a file is written
under a part name derived from the source's hash, so importing the same file twice is a no-op.
Card numbers are tokenised on the way in and never stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.adapters.columns import OUTCOME_DEFAULTS, ColumnMap, amount_to_minor, parse_times
from cutover.adapters.tokenize import mask_pans, tokenize_pan
from cutover.digest import file_sha256
from cutover.domain import CHANNELS, TRAFFIC
from cutover.errors import ConfigError, InputError, InvariantBroken

QUARANTINE_DIR: Final = "_quarantine"
BIN_DIGITS: Final = 6


@dataclass
class ImportCounts:
    """What happened to one source's records."""

    source: str
    read: int = 0
    imported: int = 0
    duplicates: int = 0
    quarantined: int = 0
    days: dict[str, int] = field(default_factory=dict)
    #: Legacy response codes the code table does not know, with how many imported rows had
    #: each: those rows carry reason "unknown_code", and a person must decide what they mean.
    unknown_codes: dict[str, int] = field(default_factory=dict)

    def check(self) -> None:
        """Raise ``InvariantBroken`` unless every record read is counted exactly once."""
        if self.read != self.imported + self.duplicates + self.quarantined:
            raise InvariantBroken(
                f"{self.source}: read {self.read} != imported {self.imported} + duplicates "
                f"{self.duplicates} + quarantined {self.quarantined}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)



def _reject(reasons: np.ndarray, fields: np.ndarray, bad: np.ndarray, field_name: str,
            reason: str) -> None:
    # The first problem found for a row is the one reported.
    fresh = bad & (reasons == "")
    reasons[fresh] = reason
    fields[fresh] = field_name


def map_columns(table: pa.Table, cmap: ColumnMap, key: bytes | None,
                codes: Any) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """Pure: foreign columns -> TRAFFIC columns; return (table, reason per row, field per row).

    A row with a non-empty reason is quarantined by the caller; its values in the returned
    table are placeholders.
    """
    n = table.num_rows
    reasons = np.full(n, "", dtype=object)
    fields = np.full(n, "", dtype=object)
    missing = [c for c in cmap.columns if c not in table.column_names]
    if missing:
        raise ConfigError(f"{cmap.source}: source has no column(s) {missing}")
    cols: dict[str, pa.Array] = {}
    for column, canonical in cmap.columns.items():
        cols[canonical] = pc.utf8_trim_whitespace(table[column].combine_chunks().cast(pa.string()))
    for name, value in (OUTCOME_DEFAULTS | cmap.defaults).items():
        cols.setdefault(name, pa.array([str(value)] * n, pa.string()))
    if "pan" in cols:
        if key is None:
            raise ConfigError("a PAN column needs CUTOVER_TOKEN_KEY to tokenise it")
        pans = pc.replace_substring(cols.pop("pan"), " ", "")
        bad = ~pc.fill_null(pc.match_substring_regex(pans, r"^\d{13,19}$"), False).to_numpy(
            zero_copy_only=False)
        _reject(reasons, fields, bad, "pan", "not a card number")
        # One HMAC per card is inherent: there is no vectorised keyed hash in Arrow.
        cols["card_token"] = pa.array([tokenize_pan(p, key) if p else None
                                       for p in pans.to_pylist()])
        cols.setdefault("card_bin", pc.utf8_slice_codeunits(pans, 0, BIN_DIGITS))
    currency = cols.get("currency", pa.nulls(n, pa.string()))
    for name, value in (("amount_minor", amount_to_minor(cols["amount_minor"], currency,
                                                         cmap.amount_scale)),
                        ("legacy_fee_minor", amount_to_minor(cols["legacy_fee_minor"], currency,
                                                             cmap.amount_scale)),
                        ("ts", parse_times(cols["ts"], cmap.time_format))):
        _reject(reasons, fields, value.is_null().to_numpy(zero_copy_only=False), name,
                f"cannot read {name}")
        cols[name] = value
    if "legacy_code" in cols and "legacy_decision" not in cols:
        decisions, codes_reasons, _ = codes.translate(cols["legacy_code"])
        cols["legacy_decision"] = pa.array(np.asarray(decisions, dtype=object), pa.string())
        cols["legacy_reason"] = pa.array(np.asarray(codes_reasons, dtype=object), pa.string())
    _check_values(cols, reasons, fields, tokenised=True)
    return _assemble(cols, n, reasons, fields)


def _check_values(cols: dict[str, pa.Array], reasons: np.ndarray, fields: np.ndarray,
                  tokenised: bool) -> None:
    """Quarantine rows with a card number in clear or an unknown channel, whatever the source.

    ``tokenised`` says card_token was made here from a PAN column; otherwise the source wrote
    it, and a legacy file that put the card number there must not get it into the store.
    """
    _reject_clear_pans(cols, reasons, fields, skip=("card_token",) if tokenised else ())
    channel_ok = pc.is_in(cols["channel"], value_set=pa.array(CHANNELS))
    channel_ok = channel_ok.to_numpy(zero_copy_only=False)
    _reject(reasons, fields, ~channel_ok, "channel", "unknown channel")


def _reject_clear_pans(cols: dict[str, pa.Array], reasons: np.ndarray, fields: np.ndarray,
                       skip: tuple[str, ...] = ()) -> None:
    """Quarantine rows carrying a card number in a field not mapped as ``pan``.

    A foreign export may hide a PAN in a free-text column; storing it would leak it. Arrow
    finds the few rows with a long digit run, and only those get the Luhn check.
    """
    from cutover.adapters.tokenize import find_pans

    for name, array in cols.items():
        if name in skip or not pa.types.is_string(array.type):
            continue
        runs = pc.fill_null(pc.match_substring_regex(array, r"\d{13,19}"), False)
        for i in np.flatnonzero(runs.to_numpy(zero_copy_only=False)):
            if find_pans(array[int(i)].as_py()):
                _reject(reasons, fields, np.arange(len(reasons)) == i, name,
                        f"card number in clear in {name}")


def _assemble(cols: dict[str, pa.Array], n: int, reasons: np.ndarray,
              fields: np.ndarray) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    arrays = []
    for fld in TRAFFIC:
        array = cols.get(fld.name, pa.nulls(n, fld.type))
        if not fld.nullable:
            _reject(reasons, fields, array.is_null().to_numpy(zero_copy_only=False), fld.name,
                    f"missing {fld.name}")
        try:
            arrays.append(array.cast(fld.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(f"field {fld.name}: cannot convert to {fld.type}: {exc}") from exc
    # Nullable here: rejected rows carry nulls until the caller filters them out.
    table = pa.Table.from_arrays(arrays, schema=pa.schema([f.with_nullable(True) for f in TRAFFIC]))
    return table, reasons, fields


def split_duplicates(txn_ids: np.ndarray, ok: np.ndarray, known: pa.Array) -> np.ndarray:
    """Pure: True for each row whose txn_id was seen earlier in the input or is already known."""
    dup = np.zeros(len(txn_ids), dtype=bool)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return dup
    _, first = np.unique(txn_ids[idx].astype(str), return_index=True)
    later = np.ones(idx.size, dtype=bool)
    later[first] = False
    dup[idx[later]] = True
    if len(known):
        candidates = pa.array(txn_ids[idx].astype(str), pa.string())
        in_store = pc.is_in(candidates, value_set=known).to_numpy(zero_copy_only=False)
        dup[idx[in_store]] = True
    return dup


def store_txn_ids(store: Path) -> pa.Array:
    """Every txn_id the store already holds, as one Arrow array (empty for a new store)."""
    from cutover.errors import StoreError
    from cutover.replay.store import open_store
    try:
        ids = open_store(store).to_table(columns=["txn_id"])["txn_id"]
    except StoreError:
        return pa.array([], pa.string())
    return ids.combine_chunks() if ids.num_chunks else pa.array([], pa.string())


def write_quarantine(store: Path, source: Path, rows: list[dict[str, Any]],
                     mode: str = "w") -> Path | None:
    """Write (mode "w") or add ("a") quarantined rows, PANs masked, to
    STORE/_quarantine/<source>.jsonl; a re-import of a source replaces its file."""
    if not rows:
        return None
    folder = Path(store) / QUARANTINE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{source.name}.jsonl"
    with open(target, mode, encoding="utf-8") as handle:
        for row in rows:
            handle.write(mask_pans(json.dumps(row, default=str, sort_keys=True)) + "\n")
    return target


def unknown_code_counts(table: pa.Table) -> dict[str, int]:
    """Pure: {legacy_code: rows} over the rows whose code the code table did not know."""
    if "legacy_reason" not in table.column_names or "legacy_code" not in table.column_names:
        return {}
    from cutover.adapters.codes import UNKNOWN_REASON

    unknown = table.filter(pc.equal(table["legacy_reason"], UNKNOWN_REASON))
    if unknown.num_rows == 0:
        return {}
    counted = pc.value_counts(pc.fill_null(unknown["legacy_code"], "")).to_pylist()
    return {str(c["values"]): int(c["counts"]) for c in sorted(counted, key=lambda c: c["values"])}


def commit(table: pa.Table, lines: np.ndarray, reasons: np.ndarray, fields: np.ndarray,
           raw: pa.Table | None, source: Path, store: Path,
           extra_bad: list[dict[str, Any]], progress: Callable[[int], None] | None = None,
           rejected_elsewhere: int = 0, quarantine_mode: str = "w") -> ImportCounts:
    """Shell: dedupe, quarantine and write one source's mapped rows; return checked counts."""
    from cutover.replay.store import write_day_partitions

    counts = ImportCounts(str(source), read=table.num_rows + len(extra_bad) + rejected_elsewhere)
    ok = reasons == ""
    txn_ids = np.asarray(table["txn_id"].to_pylist(), dtype=object)
    dup = split_duplicates(txn_ids, ok, store_txn_ids(store))
    keep = ok & ~dup
    bad_rows = list(extra_bad)
    for i in np.flatnonzero(~ok):
        record = raw.slice(int(i), 1).to_pylist()[0] if raw is not None else None
        bad_rows.append({"file": str(source), "line": int(lines[i]), "field": fields[i],
                         "reason": reasons[i], "record": record})
    write_quarantine(store, source, bad_rows, quarantine_mode)
    imported = table.filter(pa.array(keep))
    part = "import-" + file_sha256(source)[:16]
    counts.days = write_day_partitions(imported, store, part) if imported.num_rows else {}
    counts.imported = imported.num_rows
    counts.unknown_codes = unknown_code_counts(imported)
    counts.duplicates = int(dup.sum())
    counts.quarantined = len(bad_rows) + rejected_elsewhere
    counts.check()
    if progress is not None:
        progress(counts.read)
    return counts


def read_csv(path: Path) -> tuple[pa.Table, np.ndarray, list[dict[str, Any]]]:
    """Read a CSV as text columns; rows of the wrong width are quarantined, not fatal."""
    import pyarrow.csv as pcsv

    bad: list[dict[str, Any]] = []

    def on_invalid(row: Any) -> str:
        # Called by Arrow only for malformed rows: rare, so a Python callback is fine.
        bad.append({"file": str(path), "line": row.number, "field": "",
                    "reason": f"wrong number of columns ({row.actual_columns} not "
                              f"{row.expected_columns})", "record": mask_pans(row.text)})
        return "skip"

    import csv

    try:
        with open(path, encoding="utf-8", newline="") as handle:
            names = next(csv.reader(handle), [])
        # Every column is read as text: inference would turn "0042" into 42.
        table = pcsv.read_csv(
            path, parse_options=pcsv.ParseOptions(invalid_row_handler=on_invalid),
            read_options=pcsv.ReadOptions(use_threads=False),
            convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                strings_can_be_null=True))
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read as CSV: {exc}") from exc
    bad_lines = {b["line"] for b in bad if b["line"] is not None}
    lines = np.array([n for n in range(2, table.num_rows + len(bad) + 2) if n not in bad_lines]
                     [: table.num_rows], dtype=np.int64)
    return table, lines, bad


def read_jsonl(path: Path) -> tuple[pa.Table, np.ndarray, list[dict[str, Any]]]:
    """Read JSON lines; lines that are not JSON objects are quarantined with their number."""
    import pyarrow.json as pjson

    try:
        table = pjson.read_json(path)
        lines = np.arange(1, table.num_rows + 1)
        return table, lines, []
    except pa.ArrowInvalid:
        pass  # at least one bad line: sort them out one by one below
    good, lines, bad = [], [], []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                good.append({k: None if v is None else str(v) for k, v in record.items()})
                lines.append(number)
            except ValueError as exc:
                bad.append({"file": str(path), "line": number, "field": "",
                            "reason": f"not JSON: {exc}", "record": mask_pans(text.strip())})
    return pa.Table.from_pylist(good), np.array(lines, dtype=np.int64), bad


def import_file(path: Path, store: Path, fmt: str, cmap: ColumnMap, codes: Any,
                key: bytes | None) -> ImportCounts:
    """Import one CSV or JSON-lines file into ``store``; return its checked counts."""
    table, lines, bad = read_csv(path) if fmt == "csv" else read_jsonl(path)
    table = table.cast(pa.schema([pa.field(n, pa.string()) for n in table.column_names]))
    mapped, reasons, fields = map_columns(table, cmap, key, codes)
    return commit(mapped, lines, reasons, fields, table, path, store, bad)


def detect_format(path: Path) -> str:
    """Guess a source's format from its name: cassette, csv, jsonl, else a layout file."""
    name = path.name.lower()
    if name.endswith((".yaml", ".yml")):
        return "cassette"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "layout"


def import_layout(path: Path, store: Path, layout: str, codes: Any) -> ImportCounts:
    """Import a fixed-width batch file whose detail records carry TRAFFIC fields by name."""
    from cutover.adapters.files import FileReader, load_layout

    folder = Path(store) / QUARANTINE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    reader = FileReader(path, load_layout(layout), rejects_path=folder / f"{path.name}.jsonl")
    parts = [pa.Table.from_batches([b]) for _, b in reader.batches() if "txn_id" in b.schema.names]
    reader.raise_for_controls()
    if not parts:
        raise InputError(f"{path}: layout {layout!r} gave no records with a txn_id")
    table = pa.concat_tables(parts, promote_options="permissive")
    cols = {n: table[n].combine_chunks() for n in table.column_names}
    if "legacy_decision" not in cols:
        decisions, reasons, _ = codes.translate(cols["legacy_code"])
        cols["legacy_decision"] = pa.array(np.asarray(decisions, dtype=object), pa.string())
        cols["legacy_reason"] = pa.array(np.asarray(reasons, dtype=object), pa.string())
    n = table.num_rows
    row_reasons, fields = np.full(n, "", dtype=object), np.full(n, "", dtype=object)
    # A batch file's text fields are as untrusted as a CSV's: same card-number and channel
    # checks, and card_token too, since the legacy side wrote it.
    _check_values(cols, row_reasons, fields, tokenised=False)
    mapped, row_reasons, fields = _assemble(cols, n, row_reasons, fields)
    lines = cols["_line"].to_numpy() if "_line" in cols else np.arange(1, n + 1)
    # The reader has just started that quarantine file with its line-level rejects; the
    # row-level ones are added to it, not written over them.
    return commit(mapped, lines, row_reasons, fields, table, path, store, [],
                  rejected_elsewhere=reader.report.rejected, quarantine_mode="a")


def load_codes(path: Path | None) -> Any:
    """The code table (fixtures/codes/legacy_codes.toml unless a mapping names another)."""
    from cutover.adapters.codes import CodeTable
    return CodeTable.load(path)


def import_source(path: Path, store: Path, *, fmt: str = "auto", layout: str | None = None,
                  columns: ColumnMap | None = None, soap_mapping: Path | None = None,
                  key: bytes | None = None) -> ImportCounts:
    """Import one source of any supported format; raise ``InputError`` for what cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt in ("csv", "jsonl"):
        if columns is None:
            raise ConfigError(f"{path}: a {fmt} source needs --mapping COLUMNS.toml")
        return import_file(path, store, fmt, columns, load_codes(columns.code_table), key)
    if fmt == "layout":
        return import_layout(path, store, layout or "legacy_authlog", load_codes(None))
    if fmt == "cassette":
        from cutover.adapters.cassette import import_cassette
        return import_cassette(path, store, soap_mapping)
    raise ConfigError(f"--format {fmt!r}: expected auto, cassette, layout, csv or jsonl")
