"""Read foreign CSV and JSON-lines exports as text columns, line numbers and bad lines.

Split from the importer because reading is its own job: both readers keep every column as
text (inference would turn "0042" into 42), and every line they cannot read (the wrong number
of columns, not JSON, not UTF-8) comes back as a quarantine record with its line number, card
numbers masked, rather than being dropped or repaired.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson

from cutover.adapters.tokenize import mask_pans
from cutover.errors import InputError


def read_csv(path: Path) -> tuple[pa.Table, np.ndarray, list[dict[str, Any]]]:
    """Read a CSV as text columns; rows of the wrong width are quarantined, not fatal."""
    bad: list[dict[str, Any]] = []

    def on_invalid(row: Any) -> str:
        # Called by Arrow only for malformed rows: rare, so a Python callback is fine.
        bad.append({"file": str(path), "line": row.number, "field": "",
                    "reason": f"wrong number of columns ({row.actual_columns} not "
                              f"{row.expected_columns})", "record": mask_pans(row.text)})
        return "skip"


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
    try:
        table = pjson.read_json(path)
        # Arrow's JSON reader does not check UTF-8; a full validation does (ArrowInvalid).
        table.validate(full=True)
        lines = np.arange(1, table.num_rows + 1)
        return table, lines, []
    except pa.ArrowInvalid:
        pass  # at least one bad line: sort them out one by one below
    good, lines, bad = [], [], []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            # Strict: a replacement character would change the record without saying so.
            text = raw.decode("utf-8", errors="replace")
            if not text.strip():
                continue
            try:
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
                record = json.loads(text)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                good.append({k: None if v is None else str(v) for k, v in record.items()})
                lines.append(number)
            except ValueError as exc:
                bad.append({"file": str(path), "line": number, "field": "",
                            "reason": f"not JSON: {exc}", "record": mask_pans(text.strip())})
    return pa.Table.from_pylist(good), np.array(lines, dtype=np.int64), bad
