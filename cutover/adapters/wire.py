"""The candidate service's wire formats, shared by ``cutover serve`` and the HTTP candidate.

One module owns the bytes on the wire so the server and its client cannot drift apart:
Arrow IPC streams for batches (``application/vnd.apache.arrow.stream``), JSON lines as the
readable alternative, and one JSON object per transaction or decision for ``/decide``. The
contract is written out in ``docs/openapi.yaml``. A traffic row on the wire carries the
request columns only (``REQUEST_COLUMNS``): no legacy outcome, no labels, no card number.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

import pyarrow as pa
import pyarrow.ipc as ipc

from cutover.domain import DECISION, REQUEST_COLUMNS, TRAFFIC, conform

ARROW_TYPE: Final = "application/vnd.apache.arrow.stream"
JSONL_TYPE: Final = "application/x-ndjson"
JSON_TYPE: Final = "application/json"
#: The request schema: TRAFFIC's request columns, nothing else.
REQUEST: Final = pa.schema([TRAFFIC.field(n) for n in REQUEST_COLUMNS])
#: One batch on the wire is at most this many rows (a replay batch is cut into chunks).
BATCH_ROWS_MAX: Final = 131_072


class WireError(ValueError):
    """A body that does not follow the contract; the message names the row and field."""


def to_ipc(table: pa.Table | pa.RecordBatch) -> bytes:
    """``table`` as one Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write(table)
    return sink.getvalue().to_pybytes()


def from_ipc(body: bytes) -> pa.Table:
    """An Arrow IPC stream back to a table; ``WireError`` when it is not one."""
    try:
        return ipc.open_stream(pa.py_buffer(body)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise WireError(f"body is not an Arrow IPC stream: {exc}") from exc


def _ts_of(value: Any, row: int) -> datetime:
    if not isinstance(value, str):
        raise WireError(f"row {row} field ts: expected an ISO 8601 UTC time text, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise WireError(f"row {row} field ts: {value!r} is not ISO 8601") from exc
    if parsed.tzinfo is None:
        raise WireError(f"row {row} field ts: {value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def txn_row(obj: Any, row: int = 0) -> dict[str, Any]:
    """One transaction object checked against REQUEST: unknown or missing keys refused."""
    if not isinstance(obj, dict):
        raise WireError(f"row {row}: expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(REQUEST_COLUMNS))
    if unknown:
        raise WireError(f"row {row}: unknown fields {unknown}; allowed: {list(REQUEST_COLUMNS)}")
    out: dict[str, Any] = {}
    for field in REQUEST:
        value = obj.get(field.name)
        if value is None:
            if not field.nullable:
                raise WireError(f"row {row} field {field.name}: required")
            out[field.name] = None
        elif field.name == "ts":
            out["ts"] = _ts_of(value, row)
        elif pa.types.is_integer(field.type):
            if isinstance(value, bool) or not isinstance(value, int):
                raise WireError(f"row {row} field {field.name}: expected an integer, got {value!r}")
            out[field.name] = value
        elif not isinstance(value, str):
            raise WireError(f"row {row} field {field.name}: expected text, got {value!r}")
        else:
            out[field.name] = value
    return out


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Checked transaction objects (``txn_row``) as a REQUEST table."""
    return pa.Table.from_pylist(rows, schema=REQUEST)


def parse_jsonl(body: bytes) -> pa.Table:
    """JSON lines of transaction objects as a REQUEST table (empty lines skipped)."""
    rows = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise WireError(f"line {number}: not JSON: {exc.msg}") from exc
        rows.append(txn_row(obj, number))
    return rows_to_table(rows)


def request_table(table: pa.Table) -> pa.Table:
    """Any table holding the request columns, as exactly REQUEST (``WireError`` if short)."""
    try:
        return conform(table, REQUEST)
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise WireError(f"batch does not match the request schema: {exc}") from exc


def decisions_table(table: pa.Table) -> pa.Table:
    """A decisions table checked against DECISION (``WireError`` when it does not fit)."""
    try:
        return conform(table, DECISION)
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise WireError(f"decisions do not match the DECISION schema: {exc}") from exc


def json_ready(row: dict[str, Any]) -> dict[str, Any]:
    """A row with times as ISO 8601 text, ready for ``json.dumps``."""
    return {k: (v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v)
            for k, v in row.items()}


def to_jsonl(table: pa.Table) -> bytes:
    """A table as JSON lines."""
    return b"".join(json.dumps(json_ready(r), separators=(",", ":")).encode() + b"\n"
                    for r in table.to_pylist())
