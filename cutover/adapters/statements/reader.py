"""One entry point for statements: pick the camt.053 or MT940 reader by the file's content."""

from __future__ import annotations

from pathlib import Path
from typing import Final, Protocol

import pyarrow as pa

from cutover.adapters.statements.camt053 import Camt053Reader
from cutover.adapters.statements.model import ENTRY, StatementRead
from cutover.adapters.statements.mt940 import Mt940Reader
from cutover.adapters.statements.xsd import message_id
from cutover.errors import CheckFailed, InputError

#: Bytes read to tell XML from MT940 text.
SNIFF_BYTES: Final = 512
#: Entries ``read_statement`` keeps in memory; stream bigger statements with ``open_statement``.
ENTRIES_IN_MEMORY_MAX: Final = 5_000_000


class StatementReader(Protocol):
    """What both readers offer: ``entries()`` streams batches, ``read`` is the summary."""

    read: StatementRead

    def entries(self, batch_rows: int = ...) -> object:
        """Yield entry batches (pa.RecordBatch of model.ENTRY)."""


def sniff_format(path: Path) -> str:
    """"camt.053" for an XML file, "mt940" for text with SWIFT blocks or a :20: tag early on."""
    if not path.is_file():
        raise InputError(f"statement {path}: no such file")
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES).lstrip(b"\xef\xbb\xbf \r\n\t")
    if head.startswith(b"<"):
        return "camt.053"
    if head.startswith((b":", b"{")) or b"\n:20:" in head:
        return "mt940"
    raise InputError(f"statement {path}: neither XML (camt.053) nor MT940 text")


def open_statement(path: str | Path, validate_schema: bool = True) -> StatementReader:
    """A streaming reader for a camt.053 or MT940 file (chosen by content)."""
    path = Path(path)
    if sniff_format(path) == "mt940":
        return Mt940Reader(path)
    message = message_id(path)
    if not message.startswith("camt.053."):
        raise InputError(f"statement {path}: {message} is not a camt.053 statement")
    return Camt053Reader(path, validate_schema)


def read_statement(path: str | Path, strict: bool = True) -> tuple[StatementRead, pa.Table]:
    """Read a whole statement: its summary and all entries as one table.

    With ``strict``, a schema error is an InputError and a balance or total that does not add
    up is CheckFailed, each naming the file, line and element.
    """
    reader = open_statement(path)
    batches, rows = [], 0
    for batch in reader.entries():
        rows += batch.num_rows
        if rows > ENTRIES_IN_MEMORY_MAX:
            raise InputError(f"{path}: more than {ENTRIES_IN_MEMORY_MAX} entries; stream it"
                             " with open_statement")
        batches.append(batch)
    read = reader.read
    if strict and read.problems:
        detail = "; ".join(p.describe(str(path)) for p in read.problems[:5])
        schema = any(p.message.startswith("not valid") for p in read.problems)
        raise (InputError if schema else CheckFailed)(
            f"{path}: {len(read.problems)} problem(s): {detail}")
    return read, pa.Table.from_batches(batches, schema=ENTRY)
