"""Write records back out in a layout, byte for byte as the legacy core would.

The end-of-day export of the simulated legacy core and any file cutover hands to a legacy
system go through here. Columns are encoded whole (Arrow padding and casting, no per-record
Python), and every value that would not fit its field is refused with the field and row named,
never truncated. A file read with FileReader and written back from its records is identical to
the original, byte for byte.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.adapters.files.columns import encode_field
from cutover.adapters.files.delimited import to_delimited
from cutover.adapters.files.layout import Layout
from cutover.errors import BadRecord

Records = Iterable[tuple[str, "dict | pa.RecordBatch | pa.Table"]]


def _as_table(record_type: str, records: dict | pa.RecordBatch | pa.Table) -> pa.Table:
    if isinstance(records, dict):
        return pa.Table.from_pylist([records])
    if isinstance(records, pa.RecordBatch):
        return pa.Table.from_batches([records])
    return records


def encode_lines(layout: Layout, record_type: str, records: dict | pa.RecordBatch | pa.Table
                 ) -> pa.Array:
    """Encode records of one type into full lines (strings, line ending included)."""
    record = layout.record(record_type)
    table = _as_table(record_type, records)
    rows = table.num_rows
    pieces = []
    for spec in record.fields:
        column = table[spec.name].combine_chunks() if spec.name in table.column_names else None
        try:
            pieces.append(encode_field(spec, column))
        except BadRecord as exc:
            raise BadRecord(f"layout {layout.name} record {record_type}: {exc}") from exc
    if layout.delimited:
        try:
            return to_delimited(layout, record, pieces, rows)
        except BadRecord as exc:
            raise BadRecord(f"layout {layout.name} record {record_type}: {exc}") from exc
    pieces.append(layout.line_ending)
    if all(isinstance(p, str) for p in pieces):
        return pa.array(["".join(pieces)] * rows, pa.string())
    return pc.binary_join_element_wise(*pieces, "")


def lines_to_bytes(layout: Layout, lines: pa.Array) -> bytes:
    """Concatenate encoded lines into the file's bytes in the layout's encoding."""
    lines = lines.cast(pa.string())
    if len(lines) == 0:
        return b""
    all_offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    offsets = all_offsets[lines.offset:lines.offset + len(lines) + 1]
    data = lines.buffers()[2].to_pybytes()[offsets[0]:offsets[-1]]
    has_packed = any(f.type == "packed" for r in layout.records for f in r.fields)
    encoding = "latin-1" if has_packed else layout.encoding
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        return data
    try:
        return data.decode("utf-8").encode(encoding)
    except UnicodeEncodeError as exc:
        raise BadRecord(f"layout {layout.name}: character {exc.object[exc.start]!r} cannot be"
                        f" written in {layout.encoding}") from exc


class FileWriter:
    """Streaming writer: ``write(record_type, records)`` in file order, then ``close()``.

    Writes to a temporary name and renames on close, so nobody reads half a file. With
    ``pad_blocks`` a layout that declares blocks (NACHA) is padded with its fill records.
    """

    def __init__(self, path: str | Path, layout: Layout, pad_blocks: bool = False) -> None:
        self.path = Path(path)
        self.layout = layout
        self.pad_blocks = pad_blocks
        self.records_written = 0
        self._temp = self.path.with_name(f".{self.path.name}.tmp")
        self._handle: IO[bytes] | None = self._temp.open("wb")

    def write(self, record_type: str, records: dict | pa.RecordBatch | pa.Table) -> int:
        """Encode and append records of one type; return how many lines were written."""
        if self._handle is None:
            raise BadRecord(f"writer for {self.path} is closed")
        lines = encode_lines(self.layout, record_type, records)
        self._handle.write(lines_to_bytes(self.layout, lines))
        self.records_written += len(lines)
        return len(lines)

    def close(self) -> None:
        """Pad blocks if asked, flush, fsync and move the file into place."""
        if self._handle is None:
            return
        block, pad = self.layout.block_records, self.layout.block_pad_record
        if self.pad_blocks and block and pad and self.records_written % block:
            self.write(pad, pa.table({"_n": [0] * (block - self.records_written % block)}))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        self._handle = None
        os.replace(self._temp, self.path)

    def abort(self) -> None:
        """Drop the partial file (used when encoding failed half way)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            self._temp.unlink(missing_ok=True)

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_file(path: str | Path, layout: Layout, records: Records, pad_blocks: bool = False) -> int:
    """Write all ``records`` to ``path``; return the number of lines written.

    When every batch carries ``_line`` (records read by FileReader), lines are put back in
    their original order, which is what makes a read-then-write round trip byte-identical;
    this holds the encoded lines in memory, so stream big exports with FileWriter instead.
    """
    parts: list[tuple[str, pa.Table]] = [(t, _as_table(t, r)) for t, r in records]
    with FileWriter(path, layout, pad_blocks=pad_blocks) as writer:
        if parts and all("_line" in t.column_names for _, t in parts):
            lines = pa.concat_arrays([encode_lines(layout, t, tb) for t, tb in parts]) \
                if parts else pa.array([], pa.string())
            order = np.argsort(np.concatenate([tb["_line"].to_numpy() for _, tb in parts]),
                               kind="stable")
            data = lines_to_bytes(layout, lines.take(pa.array(order)))
            writer._handle.write(data)  # noqa: SLF001 - same module, ordered bulk write
            writer.records_written += len(lines)
        else:
            for record_type, table in parts:
                writer.write(record_type, table)
    return writer.records_written
