"""Filling a DataTable from the stores: literal text, and widths fixed before the rows arrive.

DataTable measures new rows lazily (on idle); a frame drawn in between shows the header at
its old widths and may keep it. Setting each column's width from its widest cell first makes
what is drawn depend on the data only, which is also what keeps snapshots stable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from rich.text import Text
from textual.widgets import DataTable

#: A cell wider than this is cut; the table scrolls sideways for the rest of the row.
COLUMN_CELLS_MAX: Final = 60


def fill(table: DataTable, rows: Iterable[Sequence[object]],
         keys: Sequence[str] | None = None) -> None:
    """Replace every row of ``table`` with ``rows`` (cells shown as literal text)."""
    texts = [tuple(Text(str(v)) for v in row) for row in rows]
    table.clear()
    for index, column in enumerate(table.ordered_columns):
        widest = max([column.label.cell_len, *(r[index].cell_len for r in texts
                                               if index < len(r))])
        column.width = min(widest, COLUMN_CELLS_MAX)
        column.auto_width = False
    for position, row in enumerate(texts):
        table.add_row(*row, key=keys[position] if keys is not None else None)
