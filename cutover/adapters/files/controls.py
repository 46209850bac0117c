"""Control totals: recompute what a file's trailers declare, and say which ones disagree.

Batch files carry their own checksums (record counts, amount totals, hash totals such as the
NACHA entry hash) so a truncated or tampered file is caught before money moves. The tracker
adds up each declared control, per file or per batch, chunk by chunk as the reader streams,
and compares with the values the control records hold once the file has been read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.adapters.files.layout import ControlSpec, Layout

#: Column the reader adds to every decoded chunk: the ordinal of the enclosing batch (0 before
#: the first batch header), so batch-scope totals group without a Python loop.
BATCH_COLUMN = "_batch"


@dataclass(frozen=True)
class ControlCheck:
    """One control total: what the file declares (expected) against what its records add to."""

    name: str
    scope: str
    expected: int | None
    actual: int
    ok: bool


class ControlTracker:
    """Accumulates every control of a layout over decoded chunks (shell-free, no I/O)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._actual: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self._expected: dict[str, dict[int, tuple[int, int]]] = defaultdict(dict)

    def observe(self, record_type: str, table: pa.Table) -> None:
        """Add one decoded chunk of ``record_type`` rows (with ``_batch`` and ``_line``)."""
        if table.num_rows == 0:
            return
        for spec in self.layout.controls:
            if record_type in spec.records:
                self._add(spec, table)
            if record_type == spec.expected_record:
                self._declare(spec, table)

    def _group_key(self, spec: ControlSpec, table: pa.Table) -> pa.Array:
        if spec.scope == "file":
            return pa.array(np.zeros(table.num_rows, np.int64))
        return table[BATCH_COLUMN]

    def _add(self, spec: ControlSpec, table: pa.Table) -> None:
        if spec.where_field is not None:
            table = table.filter(pc.is_in(table[spec.where_field],
                                          pa.array(spec.where_in, pa.int64())))
        if spec.kind == "count":
            values = pa.array(np.ones(table.num_rows, np.int64))
        else:
            values = _as_int(table[spec.field])
        grouped = pa.table({"k": self._group_key(spec, table), "v": values}) \
            .group_by("k").aggregate([("v", "sum")])
        totals = self._actual[spec.name]
        for key, total in zip(grouped["k"].to_pylist(), grouped["v_sum"].to_pylist(), strict=True):
            totals[key] += total

    def _declare(self, spec: ControlSpec, table: pa.Table) -> None:
        keys = self._group_key(spec, table).to_pylist()
        values = table[spec.expected_field].to_pylist()
        lines = table["_line"].to_pylist()
        for key, value, line in zip(keys, values, lines, strict=True):
            self._expected[spec.name][key] = (value, line)

    def checks(self) -> list[ControlCheck]:
        """Compare every declared total with the records; a batch without its control fails."""
        out: list[ControlCheck] = []
        for spec in self.layout.controls:
            expected, actual = self._expected[spec.name], self._actual[spec.name]
            keys = set(expected) | set(actual) | ({0} if spec.scope == "file" else set())
            for key in sorted(keys):
                declared = expected.get(key)
                total = actual.get(key, 0)
                if spec.kind == "hash" and spec.digits:
                    total %= 10**spec.digits
                scope = "file" if spec.scope == "file" else f"batch {key}"
                if declared is not None:
                    scope += f" ({spec.expected_record} line {declared[1]})"
                value = None if declared is None else declared[0]
                out.append(ControlCheck(spec.name, scope, value, total, value == total))
        return out


def _as_int(column: pa.ChunkedArray) -> pa.Array:
    """Numbers as int64; a text column (a BIN) counts its digits, anything else counts 0."""
    if pa.types.is_string(column.type):
        digits = pc.ascii_is_decimal(column).fill_null(False)
        column = pc.if_else(digits, column, "0")
    return pc.cast(column, pa.int64()).fill_null(0)


def failure_message(path: str, checks: list[ControlCheck]) -> str:
    """Name every failing total with expected and actual, for ControlTotalMismatch."""
    parts = [f"{c.name} in {c.scope}: expected"
             f" {'a control record' if c.expected is None else c.expected}, actual {c.actual}"
             for c in checks if not c.ok]
    return f"{path}: control totals do not match: " + "; ".join(parts)
