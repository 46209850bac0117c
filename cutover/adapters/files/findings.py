"""What a format checker found beyond the layout: structure and code-table findings, by level.

A file can be "layout ok, semantically invalid": every line has the right fields, but a batch
has no control record or a return carries a reason code that does not exist. Each finding says
at which level it was found (layout, structure, semantic), the line, the record type code as
printed in the file, the field and its positions, so a user can go straight to the byte.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from cutover.adapters.files.controls import ControlCheck

#: The levels of `files inspect --level`, from the bytes up to the meaning of codes.
LEVELS: Final = ("layout", "structure", "semantic")
SEVERITIES: Final = ("error", "warning")


@dataclass(frozen=True)
class Finding:
    """One thing a checker found: level, line (None for the whole file), where, what, severity."""

    level: str
    line: int | None
    record_type_code: str | None
    field: str | None
    positions: str | None
    message: str
    severity: str = "error"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)

    def describe(self) -> str:
        """One line: "line 7 (record type 6, field amount, positions 30-39): message"."""
        where = [f"record type {self.record_type_code}"] if self.record_type_code else []
        if self.field:
            where.append(f"field {self.field}")
        if self.positions:
            where.append(f"positions {self.positions}")
        place = "file" if self.line is None else f"line {self.line}"
        detail = f" ({', '.join(where)})" if where else ""
        return f"{self.level} {self.severity}: {place}{detail}: {self.message}"


class FormatChecker(Protocol):
    """Checks a file's structure and codes while the reader streams it (see nacha.py)."""

    def observe_lines(self, lines: pa.Array, numbers: np.ndarray) -> None:
        """See one chunk of lines in their fixed form, with their line numbers."""

    def observe_records(self, record_type: str, table: pa.Table) -> None:
        """See one decoded chunk of a record type (with ``_line`` and ``_batch``)."""

    def finish(self, checks: list[ControlCheck]) -> list[Finding]:
        """Every finding, once the last line has been read."""


def record_type_code(raw: bytes | str | None) -> str | None:
    """The record type code as the file prints it: "7xx" for addenda, else the first character."""
    if not raw:
        return None
    text = raw.decode("ascii", errors="replace") if isinstance(raw, bytes) else raw
    return text[:3] if text[0] == "7" and len(text) >= 3 else text[0]
