"""The legacy side of a replay: the recorded outcome, the live SOAP core or a cassette.

Wraps ``cutover.adapters.legacy.open_legacy`` with the replay's one promise: whatever the
legacy port does, the batch gets one OUTCOME row per input row, in input order. The recorded
mode is a column selection (no calls); the live modes call per row through the adapter's
throttle. An exception from the port for a whole batch turns every row into a legacy error
with that reason rather than stopping the replay.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cutover.adapters.candidate import error_text
from cutover.adapters.legacy import MODES, OUTCOME, open_legacy
from cutover.errors import ConfigError
from cutover.values import number_in

#: Options of open_legacy passed through from the CLI, with their types.
_OPTION_TYPES: dict[str, type] = {"calls_per_s": float, "in_flight_max": int, "workers": int,
                                  "connect_timeout_s": float, "read_timeout_s": float,
                                  "deadline_s": float, "response_bytes_max": int,
                                  "retry_attempts_max": int, "address": str,
                                  "errors_file": str}


#: Allowed range of each numeric option: (low, high, low excluded). A rate of nan or 0 would
#: switch the throttle off or stall it; a limit of 0 would never let a call through.
_OPTION_RANGES: dict[str, tuple[float, float, bool]] = {
    "calls_per_s": (0, 100_000, True), "in_flight_max": (1, 1_024, False),
    "workers": (1, 256, False), "connect_timeout_s": (0, 3_600, True),
    "read_timeout_s": (0, 3_600, True), "retry_attempts_max": (0, 10, False),
    "deadline_s": (0, 3_600, True), "response_bytes_max": (1, 2**31, False)}


def coerce_legacy_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """Typed open_legacy options from CLI text (``--legacy-opt calls_per_s=50``)."""
    out: dict[str, Any] = {}
    for key, value in (options or {}).items():
        if key in ("wsdl", "mapping", "cassette"):
            out[key] = value if value is None or key == "wsdl" else Path(value)
            continue
        if key not in _OPTION_TYPES:
            raise ConfigError(f"legacy option {key!r}: expected one of"
                              f" {sorted([*_OPTION_TYPES, 'wsdl', 'mapping', 'cassette'])}")
        try:
            out[key] = _OPTION_TYPES[key](value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"legacy option {key}={value!r}: {exc}") from exc
        if key in _OPTION_RANGES:
            low, high, low_open = _OPTION_RANGES[key]
            number_in(out[key], f"--legacy-opt {key}", low, high, low_open=low_open)
    return out


def recorded_outcomes(table: pa.Table) -> pa.Table:
    """The outcome the store recorded, as OUTCOME columns (vectorised, no calls)."""
    missing = [n for n in OUTCOME.names if n not in table.column_names]
    if missing:
        raise ConfigError(f"recorded legacy mode: the traffic lacks columns {missing}")
    return table.select(OUTCOME.names).cast(OUTCOME)


def error_outcomes(txn_id: pa.Array | pa.ChunkedArray, reason: str, latency_ms: int) -> pa.Table:
    """Every row of a failed batch as a legacy ``error`` with ``reason``."""
    n = len(txn_id)
    return pa.table({
        "txn_id": txn_id, "legacy_decision": pa.array(["error"] * n, pa.string()),
        "legacy_code": pa.array([""] * n, pa.string()),
        "legacy_reason": pa.array([reason] * n, pa.string()),
        "legacy_route": pa.nulls(n, pa.string()), "legacy_fee_minor": pa.array([0] * n, pa.int64()),
        "legacy_latency_ms": pa.array([latency_ms] * n, pa.int32()),
    }, schema=OUTCOME)


class LegacySide:
    """One legacy port for the whole replay; ``close`` releases its connections."""

    def __init__(self, mode: str = "recorded", options: dict[str, Any] | None = None) -> None:
        if mode not in MODES:
            raise ConfigError(f"--legacy {mode!r}: expected one of {', '.join(MODES)}")
        self.mode = mode
        self._port = None if mode == "recorded" else open_legacy(
            mode, **coerce_legacy_options(options))

    def authorize(self, table: pa.Table) -> pa.Table:
        """OUTCOME rows for ``table`` (TRAFFIC rows), input order, never raising for the port."""
        if self._port is None:
            return recorded_outcomes(table)
        started = time.monotonic()
        try:
            batch = table.combine_chunks().to_batches()
            if not batch:
                return OUTCOME.empty_table()
            out = pa.Table.from_batches([self._port.authorize_batch(batch[0])]).cast(OUTCOME)
            if out.num_rows != table.num_rows or not pc.all(
                    pc.equal(out["txn_id"], table["txn_id"])).as_py():
                raise ValueError("legacy port answered rows out of input order")
            return out
        except Exception as exc:  # a legacy failure is an outcome, never a crash
            latency_ms = int((time.monotonic() - started) * 1000)
            return error_outcomes(table["txn_id"], "port_failed: " + error_text(exc), latency_ms)

    def close(self) -> None:
        """Close the port's connections (and a cassette's playback)."""
        if self._port is not None:
            self._port.close()
