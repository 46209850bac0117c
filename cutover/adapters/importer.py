"""Import outside records (CSV / JSON lines exports, cassettes) into the TRAFFIC store.

Every record read ends in exactly one place: imported, a duplicate (its txn_id is already in
this input or in the store) or quarantined with a reason in ``STORE/_quarantine/<source>.jsonl``
(PANs masked). ``read = imported + duplicates + quarantined`` is checked, and a file is written
under a part name derived from the source's hash, so importing the same file twice is a no-op.
Card numbers are tokenised on the way in and never stored.

A batch file (``import_layout``) is imported in chunks of a fixed number of detail rows, so
memory follows the chunk, not the file; how its chunks are staged and published is described
there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.adapters.codes import UNKNOWN_REASON, CodeTable
from cutover.adapters.columns import (
    OUTCOME_DEFAULTS,
    ColumnMap,
    amount_to_minor,
    generated_txn_ids,
    parse_time_column,
    time_format_hint,
)
from cutover.adapters.conflicts import describe, find_conflicts
from cutover.adapters.files import FileReader, load_layout
from cutover.adapters.readers import read_csv, read_jsonl
from cutover.adapters.tokenize import mask_pans, tokenize_pan, tokenize_text
from cutover.adapters.valuemaps import unmapped_mask
from cutover.digest import file_sha256
from cutover.domain import TRAFFIC
from cutover.errors import ConfigError, ControlTotalMismatch, InputError, InvariantBroken, StoreError
from cutover.pan import CANDIDATE_PATTERN, has_pan
from cutover.store.traffic import move_parts, open_store, write_day_partitions
from cutover.values import amount_problems, code_problems, ts_out_of_range, ts_range_text

QUARANTINE_DIR: Final = "_quarantine"
#: Where a batch file's chunks wait (inside the store, so publishing is a rename) until the
#: whole file has been read and its control totals hold.
STAGING_DIR: Final = "_staging"
BIN_DIGITS: Final = 6
#: Detail rows per chunk of a batch-file import (the reader's batch size). Peak memory is a
#: few copies of one chunk (an authlog row is ~355 bytes as text, about as much decoded) on
#: top of the txn_ids seen so far. Measured on a 1M-line authlog: 65,536 rows peaks at 546 MB
#: in 8.7 s, 131,072 at 617 MB in 9.0 s, 16,384 at 499 MB but 14.3 s (many small parts).
CHUNK_ROWS_DEFAULT: Final = 65_536
#: Overrides CHUNK_ROWS_DEFAULT: lets a test cut a small file into many chunks (crash tests).
CHUNK_ROWS_ENV: Final = "CUTOVER_IMPORT_CHUNK_ROWS"


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

    def add(self, other: ImportCounts) -> None:
        """Add another part's counts (a chunk of the same source) to these."""
        for name in ("read", "imported", "duplicates", "quarantined"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for day, rows in other.days.items():
            self.days[day] = self.days.get(day, 0) + rows
        for code, rows in other.unknown_codes.items():
            self.unknown_codes[code] = self.unknown_codes.get(code, 0) + rows



def _reject(reasons: np.ndarray, fields: np.ndarray, bad: np.ndarray, field_name: str,
            reason: str) -> None:
    # The first problem found for a row is the one reported.
    fresh = bad & (reasons == "")
    reasons[fresh] = reason
    fields[fresh] = field_name


def _source_columns(table: pa.Table, cmap: ColumnMap, reasons: np.ndarray,
                    fields: np.ndarray) -> dict[str, pa.Array]:
    """Canonical text columns from the source's, through each coded column's value map."""
    cols: dict[str, pa.Array] = {}
    for column, canonical in cmap.targets():
        values = pc.utf8_trim_whitespace(table[column].combine_chunks().cast(pa.string()))
        vmap = cmap.maps.get(column)
        if vmap is not None:
            _reject(reasons, fields, unmapped_mask(vmap, values), canonical,
                    f"{column}: not in its value map; allowed: {vmap.allowed()}")
            values = vmap.canonical_array(values)
        cols[canonical] = values
    return cols


def _times(table: pa.Table, cols: dict[str, pa.Array], cmap: ColumnMap, reasons: np.ndarray,
           fields: np.ndarray) -> None:
    """ts in the mapping's time format; label_ts given, derived (ts + delay) or absent."""
    if cmap.time is not None and cmap.time.column:
        cols["ts"] = table[cmap.time.column].combine_chunks().cast(pa.string())
    ts = parse_time_column(cols["ts"], cmap.time)
    _reject(reasons, fields, ts.is_null().to_numpy(zero_copy_only=False), "ts",
            f"cannot read ts: expected {time_format_hint(cmap.time)}")
    cols["ts"] = ts
    labels = cmap.labels
    if labels is None:
        if "label_ts" in cols:
            cols["label_ts"] = parse_time_column(cols["label_ts"], cmap.time)
        return
    if labels.time == "given":
        text = cols["label_ts"]
        parsed = parse_time_column(text, cmap.time)
        bad = (pc.is_valid(text).to_numpy(zero_copy_only=False)
               & parsed.is_null().to_numpy(zero_copy_only=False))
        _reject(reasons, fields, bad, "label_ts",
                f"cannot read label_ts: expected {time_format_hint(cmap.time)}")
        cols["label_ts"] = parsed
    elif labels.time == "derived":
        delay_us = int(round(float(labels.delay_hours or 0) * 3_600_000_000))
        micros = pc.cast(ts, pa.int64()).to_numpy(zero_copy_only=False) + delay_us
        has_label = pc.is_valid(cols.get("is_fraud", pa.nulls(len(ts), pa.string())))
        cols["label_ts"] = pa.array(micros, pa.timestamp("us", tz="UTC"),
                                    mask=~has_label.to_numpy(zero_copy_only=False)
                                    | ts.is_null().to_numpy(zero_copy_only=False))
    else:
        cols["label_ts"] = pa.nulls(len(ts), pa.timestamp("us", tz="UTC"))


def map_columns(table: pa.Table, cmap: ColumnMap, key: bytes | None,
                codes: Any, lines: np.ndarray | None = None, source: Path | None = None
                ) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """Pure: foreign columns -> TRAFFIC columns; return (table, reason per row, field per row).

    A row with a non-empty reason is quarantined by the caller; its values in the returned
    table are placeholders. ``lines`` and ``source`` name the rows for a generated txn_id.
    """
    n = table.num_rows
    reasons = np.full(n, "", dtype=object)
    fields = np.full(n, "", dtype=object)
    wanted = list(cmap.columns) + (cmap.txn_id.columns if cmap.txn_id else []) + (
        [cmap.time.column] if cmap.time is not None and cmap.time.column else [])
    missing = [c for c in dict.fromkeys(wanted) if c not in table.column_names]
    if missing:
        raise ConfigError(f"{cmap.source}: source has no column(s) {missing}; it has "
                          f"{table.column_names}")
    cols = _source_columns(table, cmap, reasons, fields)
    if cmap.txn_id is not None and "txn_id" not in cols:
        cols["txn_id"] = generated_txn_ids(
            table, cmap.txn_id, lines if lines is not None else np.arange(1, n + 1),
            Path(source) if source is not None else cmap.source)
    for name, value in (OUTCOME_DEFAULTS | cmap.defaults).items():
        cols.setdefault(name, pa.array([str(value)] * n, pa.string()))
    if "pan" in cols:
        if key is None:
            raise ConfigError("a PAN column needs CUTOVER_TOKEN_KEY to tokenise it")
        pans = pc.replace_substring_regex(cols.pop("pan"), r"[ .\-]", "")
        bad = ~pc.fill_null(pc.match_substring_regex(pans, r"^\d{13,19}$"), False).to_numpy(
            zero_copy_only=False)
        _reject(reasons, fields, bad, "pan", "not a card number (expected 13-19 digits)")
        # One HMAC per card is inherent: there is no vectorised keyed hash in Arrow.
        cols["card_token"] = pa.array([tokenize_pan(p, key) if p else None
                                       for p in pans.to_pylist()])
        cols.setdefault("card_bin", pc.utf8_slice_codeunits(pans, 0, BIN_DIGITS))
    currency = cols.get("currency", pa.nulls(n, pa.string()))
    scale_hint = (f"an amount in {cmap.amount_scale} units"
                  + (" with no more decimals than the currency has" if cmap.amount_scale ==
                     "major" else " (a whole number)") + ", and a known ISO 4217 currency")
    for name in ("amount_minor", "legacy_fee_minor"):
        value = amount_to_minor(cols[name], currency, cmap.amount_scale)
        _reject(reasons, fields, value.is_null().to_numpy(zero_copy_only=False), name,
                f"cannot read {name}: expected {scale_hint}")
        cols[name] = value
    _times(table, cols, cmap, reasons, fields)
    if "legacy_code" in cols and "legacy_decision" not in cols:
        decisions, codes_reasons, _ = codes.translate(cols["legacy_code"])
        cols["legacy_decision"] = pa.array(np.asarray(decisions, dtype=object), pa.string())
        cols["legacy_reason"] = pa.array(np.asarray(codes_reasons, dtype=object), pa.string())
    check_values(cols, reasons, fields, tokenised=True)
    return assemble_traffic(cols, n, reasons, fields)


def check_values(cols: dict[str, pa.Array], reasons: np.ndarray, fields: np.ndarray,
                  tokenised: bool) -> None:
    """Quarantine rows with a card number in clear, an unknown code (currency, country,
    channel), an implausible time or an amount out of range, whatever the source.

    ``tokenised`` says card_token was made here from a PAN column; otherwise the source wrote
    it, and a legacy file that put the card number there must not get it into the store.
    """
    _reject_clear_pans(cols, reasons, fields, skip=("card_token",) if tokenised else ())
    for name, reason, bad in code_problems(cols):
        _reject(reasons, fields, bad, name, reason)
    if "ts" in cols and pa.types.is_timestamp(cols["ts"].type):
        _reject(reasons, fields, ts_out_of_range(cols["ts"]), "ts",
                f"time outside the plausible range {ts_range_text()}")
    if "amount_minor" in cols and "currency" in cols:
        for reason, bad in amount_problems(cols["amount_minor"], cols["currency"]):
            _reject(reasons, fields, bad, "amount_minor", reason)


def tokenise_card_field(cards: pa.Array, key: bytes) -> pa.Array:
    """The card field with every card number in it (plain or grouped) replaced by its token;
    only the rows Arrow's pre-filter picks are looked at in Python."""
    hits = np.flatnonzero(pc.fill_null(pc.match_substring_regex(cards, CANDIDATE_PATTERN),
                                       False).to_numpy(zero_copy_only=False))
    if hits.size == 0:
        return cards
    values = cards.to_pylist()
    for i in hits:
        values[i] = tokenize_text(values[i], key)
    return pa.array(values, pa.string())


def _reject_clear_pans(cols: dict[str, pa.Array], reasons: np.ndarray, fields: np.ndarray,
                       skip: tuple[str, ...] = ()) -> None:
    """Quarantine rows carrying a card number in a field not mapped as ``pan``.

    A foreign export may hide a PAN, plain or written in groups, in a free-text column;
    storing it would leak it. Arrow finds the few rows with a long run of digits and
    separators, and only those get cutover.pan's check in Python.
    """
    for name, array in cols.items():
        if name in skip or not pa.types.is_string(array.type):
            continue
        runs = pc.fill_null(pc.match_substring_regex(array, CANDIDATE_PATTERN), False)
        for i in np.flatnonzero(runs.to_numpy(zero_copy_only=False)):
            if has_pan(array[int(i)].as_py()):
                _reject(reasons, fields, np.arange(len(reasons)) == i, name,
                        f"card number in clear in {name}")


def assemble_traffic(cols: dict[str, pa.Array], n: int, reasons: np.ndarray,
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
        candidates = pa.array(txn_ids[idx].astype(str), known.type)
        in_store = pc.is_in(candidates, value_set=known).to_numpy(zero_copy_only=False)
        dup[idx[in_store]] = True
    return dup


def store_txn_ids(store: Path) -> pa.Array:
    """Every txn_id the store already holds, as one Arrow array (empty for a new store)."""
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
    target = quarantine_path(store, source)
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_jsonl(target, rows, mode)


def quarantine_path(store: Path, source: Path) -> Path:
    """STORE/_quarantine/<source file name>.jsonl: one quarantine file per source."""
    return Path(store) / QUARANTINE_DIR / f"{Path(source).name}.jsonl"


def write_jsonl(target: Path, rows: list[dict[str, Any]], mode: str = "a") -> Path:
    """Write or add rows to a JSON-lines file, with any card number masked."""
    with open(target, mode, encoding="utf-8") as handle:
        for row in rows:
            handle.write(mask_pans(json.dumps(row, default=str, sort_keys=True)) + "\n")
    return target


def unknown_code_counts(table: pa.Table) -> dict[str, int]:
    """Pure: {legacy_code: rows} over the rows whose code the code table did not know."""
    if "legacy_reason" not in table.column_names or "legacy_code" not in table.column_names:
        return {}
    unknown = table.filter(pc.equal(table["legacy_reason"], UNKNOWN_REASON))
    if unknown.num_rows == 0:
        return {}
    counted = pc.value_counts(pc.fill_null(unknown["legacy_code"], "")).to_pylist()
    return {str(c["values"]): int(c["counts"]) for c in sorted(counted, key=lambda c: c["values"])}


def settle(table: pa.Table, lines: np.ndarray, reasons: np.ndarray, fields: np.ndarray,
           raw: pa.Table | None, source: Path, known: pa.Array, roots: list[Path]
           ) -> tuple[pa.Table, int, list[dict[str, Any]]]:
    """Split mapped rows into (rows to import, number of duplicates, quarantine rows).

    A duplicate is a txn_id repeated earlier in ``table`` or present in ``known``; one whose
    content differs from the other version (in ``table`` or stored under ``roots``) is a
    conflict, quarantined with both versions named.
    """
    ok = reasons == ""
    txn_ids = np.asarray(table["txn_id"].to_pylist(), dtype=object)
    dup = split_duplicates(txn_ids, ok, known)
    conflict, other = find_conflicts(table, ok, dup, roots)
    for i in np.flatnonzero(conflict):
        reasons[i], fields[i] = f"conflict: txn_id {txn_ids[i]} already seen with other content", "txn_id"
    bad_rows = []
    for i in np.flatnonzero(~ok | conflict):
        record = raw.slice(int(i), 1).to_pylist()[0] if raw is not None else None
        row = {"file": str(source), "line": int(lines[i]), "field": fields[i],
               "reason": reasons[i], "record": record}
        if conflict[i]:
            row |= {"this_version": describe(table, int(i)), "other_version": other[int(i)]}
        bad_rows.append(row)
    dup &= ~conflict
    return table.filter(pa.array(ok & ~dup & ~conflict)), int(dup.sum()), bad_rows


def commit(table: pa.Table, lines: np.ndarray, reasons: np.ndarray, fields: np.ndarray,
           raw: pa.Table | None, source: Path, store: Path,
           extra_bad: list[dict[str, Any]], progress: Callable[[int], None] | None = None
           ) -> ImportCounts:
    """Shell: dedupe, quarantine and write one source's mapped rows; return checked counts.

    For sources read whole (CSV, JSON lines, cassettes); batch files go through
    ``import_layout``, chunk by chunk.
    """
    counts = ImportCounts(str(source), read=table.num_rows + len(extra_bad))
    imported, counts.duplicates, bad_rows = settle(table, lines, reasons, fields, raw, source,
                                                   store_txn_ids(store), [store])
    bad_rows = list(extra_bad) + bad_rows
    write_quarantine(store, source, bad_rows)
    part = "import-" + file_sha256(source)[:16]
    counts.days = write_day_partitions(imported, store, part) if imported.num_rows else {}
    counts.imported = imported.num_rows
    counts.unknown_codes = unknown_code_counts(imported)
    counts.quarantined = len(bad_rows)
    counts.check()
    if progress is not None:
        progress(counts.read)
    return counts


def import_file(path: Path, store: Path, fmt: str, cmap: ColumnMap, codes: Any,
                key: bytes | None) -> ImportCounts:
    """Import one CSV or JSON-lines file into ``store``; return its checked counts."""
    table, lines, bad = read_csv(path) if fmt == "csv" else read_jsonl(path)
    table = table.cast(pa.schema([pa.field(n, pa.string()) for n in table.column_names]))
    mapped, reasons, fields = map_columns(table, cmap, key, codes, lines, path)
    return commit(mapped, lines, reasons, fields, table, path, store, bad)


def chunk_rows_setting(chunk_rows: int | None = None) -> int:
    """Rows per chunk of a batch-file import: the argument, else $CUTOVER_IMPORT_CHUNK_ROWS,
    else CHUNK_ROWS_DEFAULT."""
    if chunk_rows is None:
        raw = os.environ.get(CHUNK_ROWS_ENV, "").strip()
        try:
            chunk_rows = int(raw) if raw else CHUNK_ROWS_DEFAULT
        except ValueError:
            raise ConfigError(f"{CHUNK_ROWS_ENV}={raw!r}: expected a whole number of rows") \
                from None
    if chunk_rows <= 0:
        raise ConfigError(f"chunk rows must be positive, got {chunk_rows}")
    return chunk_rows


def detail_chunks(batches: Iterator[tuple[str, pa.RecordBatch]], chunk_rows: int
                  ) -> Iterator[pa.Table]:
    """The records carrying a txn_id, in file order, as tables of exactly ``chunk_rows`` rows
    (the last one shorter).

    Cut by count rather than at the reader's batch edges (which follow its byte chunks), so
    chunk k holds the same rows on every run of the same file with the same chunk size: the
    part names of ``import_layout`` rely on that. At most about two chunks are held at once.
    """
    pending: list[pa.Table] = []
    held = 0
    for _, batch in batches:
        if "txn_id" not in batch.schema.names:
            continue  # header, trailer, or another record type without transactions
        pending.append(pa.Table.from_batches([batch]))
        held += batch.num_rows
        while held >= chunk_rows:
            table = pa.concat_tables(pending, promote_options="permissive")
            yield table.slice(0, chunk_rows)
            rest = table.slice(chunk_rows)
            pending, held = ([rest] if rest.num_rows else []), rest.num_rows
    if held:
        yield pa.concat_tables(pending, promote_options="permissive")


def map_layout_chunk(table: pa.Table, codes: Any, key: bytes | None = None
                     ) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]:
    """Pure: a batch file's detail records -> (TRAFFIC table, reason per row, field per row,
    line number per row). With ``key``, a card number the legacy side wrote in clear in the
    card field is tokenised; without one, that record is quarantined like any other."""
    cols = {n: table[n].combine_chunks() for n in table.column_names}
    if key is not None and "card_token" in cols:
        cols["card_token"] = tokenise_card_field(cols["card_token"], key)
    if "legacy_decision" not in cols:
        decisions, reasons, _ = codes.translate(cols["legacy_code"])
        cols["legacy_decision"] = pa.array(np.asarray(decisions, dtype=object), pa.string())
        cols["legacy_reason"] = pa.array(np.asarray(reasons, dtype=object), pa.string())
    n = table.num_rows
    row_reasons, fields = np.full(n, "", dtype=object), np.full(n, "", dtype=object)
    # A batch file's text fields are as untrusted as a CSV's: same card-number and channel
    # checks, and card_token too, since the legacy side wrote it.
    check_values(cols, row_reasons, fields, tokenised=False)
    mapped, row_reasons, fields = assemble_traffic(cols, n, row_reasons, fields)
    lines = cols["_line"].to_numpy() if "_line" in cols else np.arange(1, n + 1)
    return mapped, row_reasons, fields, lines


def import_layout(path: Path, store: Path, layout: str, codes: Any,
                  chunk_rows: int | None = None, key: bytes | None = None) -> ImportCounts:
    """Import a fixed-width or delimited batch file whose detail records carry TRAFFIC fields
    by name, ``chunk_rows`` detail rows at a time (default: ``chunk_rows_setting``).

    Each chunk is mapped, checked (card numbers in clear, channels), deduplicated and written
    as Parquet parts to a staging folder, STORE/_staging/<file>-<sha>/, named
    ``import-<sha>-c<chunk rows>-<chunk number>`` per day. Only when the whole file has been
    read and its control totals hold are the parts moved into the store (one rename each).

    Staging, not committing chunk by chunk, because a trailer that disagrees with the
    records means the file as a whole cannot be trusted, and it is only known at the end:
    money rows from such a file must not be left in the store. So a control-total mismatch
    imports nothing (the staged parts are discarded) and the error says so.

    After a crash: staged parts were never published and are thrown away by the next run of
    the same file, which reads it all again (the control totals need every line anyway). A
    crash while publishing leaves some parts in the store; the next run counts their rows as
    duplicates, and the chunks' other parts, with the same names, are staged and published,
    while a (chunk, day) with no new rows writes nothing, so nothing lands twice.
    """
    path, store = Path(path), Path(store)
    chunk_rows = chunk_rows_setting(chunk_rows)
    spec = load_layout(layout)
    sha = file_sha256(path)[:16]
    staging = store / STAGING_DIR / f"{path.name}-{sha}"
    shutil.rmtree(staging, ignore_errors=True)  # a killed run's leftovers: never published
    staging.mkdir(parents=True)
    line_rejects, row_rejects = staging / "rejects-lines.jsonl", staging / "rejects-rows.jsonl"
    # The reader writes its line-level rejects to its own file as it goes; the row-level ones
    # go to another, and both are joined into the source's quarantine file at the end. Two
    # handles on one file would write over each other's lines.
    reader = FileReader(path, spec, rejects_path=line_rejects)
    counts = ImportCounts(str(path))
    # The txn_ids a row must not repeat: the store's, read once, then each chunk's imported
    # ones appended. As an Arrow large_string array (64-bit offsets: no 2 GiB cap) that is 8
    # bytes of offset plus the id's bytes per row (26 bytes for the simulator's 18-character
    # ids, 26 MB per million rows),
    # held for the whole import; pc.is_in builds a hash table over it once per chunk
    # (transient, a few tens of bytes per row, and time linear in it: large chunks keep that
    # small). A Python set would hold about 100 bytes per row.
    seen = store_txn_ids(store).cast(pa.large_string())
    try:
        chunks = 0
        for number, table in enumerate(detail_chunks(reader.batches(), chunk_rows)):
            chunks += 1
            mapped, reasons, fields, lines = map_layout_chunk(table, codes, key)
            part = ImportCounts(str(path), read=mapped.num_rows)
            imported, part.duplicates, bad_rows = settle(mapped, lines, reasons, fields, table,
                                                         path, seen, [store, staging])
            if bad_rows:
                write_jsonl(row_rejects, bad_rows, "a")
            if imported.num_rows:
                part.days = write_day_partitions(imported, staging,
                                                 f"import-{sha}-c{chunk_rows}-{number:05d}")
                ids = imported["txn_id"].combine_chunks().cast(pa.large_string())
                seen = pa.concat_arrays([seen, ids])
            part.imported = imported.num_rows
            part.unknown_codes = unknown_code_counts(imported)
            part.quarantined = len(bad_rows)
            part.check()
            counts.add(part)
        # The reader's report (line rejects, control checks) is complete only now.
        _join_quarantine(quarantine_path(store, path), [line_rejects, row_rejects])
        try:
            reader.raise_for_controls()
        except ControlTotalMismatch as exc:
            raise ControlTotalMismatch(
                f"{exc}. Nothing imported into {store}: the {counts.read} record(s) read were "
                f"staged and discarded; rejects are in {quarantine_path(store, path)}") from exc
        if chunks == 0:
            raise InputError(f"{path}: layout {layout!r} gave no records with a txn_id")
        counts.read += reader.report.rejected
        counts.quarantined += reader.report.rejected
        counts.check()
        move_parts(staging, store)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        # Left when another source is being staged there; already gone is fine too.
        with contextlib.suppress(OSError):
            (store / STAGING_DIR).rmdir()
    return counts


def _join_quarantine(target: Path, pieces: list[Path]) -> None:
    """Write ``pieces`` (JSON lines, already masked) one after the other as ``target``.

    Written whole each run (a re-import replaces the source's file), through a temporary
    name so a crash never leaves half a file; copied in blocks, not read into memory.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tmp")
    with open(temp, "wb") as out:
        for piece in pieces:
            if piece.is_file():
                with open(piece, "rb") as handle:
                    shutil.copyfileobj(handle, out)
    os.replace(temp, target)


def load_codes(path: Path | None) -> Any:
    """The code table (cutover/fixtures/codes/legacy_codes.toml unless a mapping names another)."""
    return CodeTable.load(path)
