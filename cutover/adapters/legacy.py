"""The legacy port: what the replay engine asks of the legacy core, and three ways to answer.

``LegacyCore.authorize_batch(batch)`` returns, in the input's row order, the columns
``txn_id, legacy_decision, legacy_code, legacy_reason, legacy_route, legacy_fee_minor,
legacy_latency_ms``. Implementations: ``RecordedLegacy`` (the outcome already in the traffic
store; vectorised), ``SoapLegacy`` (live, throttled, concurrent) and ``CassetteLegacy`` (a
vcrpy cassette played back offline). No implementation raises for a failed call: a failure is
an outcome with decision ``error``. ``open_legacy`` raises ``ConfigError`` for a bad mode.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final, Protocol

import pyarrow as pa

from cutover.adapters.cassette import PlaybackExchange, playback, txn_element_of
from cutover.adapters.mapping import load_mapping
from cutover.adapters.soap import SoapAdapter, SoapOptions
from cutover.adapters.tokenize import mask_pans
from cutover.adapters.transport import BreakerOpen, CallFailed
from cutover.domain import TRAFFIC
from cutover.errors import ConfigError

#: One legacy outcome: the txn_id and TRAFFIC's legacy_* fields, so the two never drift apart.
OUTCOME: Final = pa.schema([TRAFFIC.field("txn_id")]
                           + [f for f in TRAFFIC if f.name.startswith("legacy_")])
MODES: Final = ("recorded", "soap", "cassette")
WORKERS_DEFAULT: Final = 4


class LegacyCore(Protocol):
    """The port the replay engine uses; see the module docstring for the columns."""

    def authorize_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch: ...

    def authorize(self, txn: dict[str, Any]) -> dict[str, Any]: ...

    def authorize_raw(self, txn: dict[str, Any]) -> dict[str, Any]: ...

    def close(self) -> None: ...


class RecordedLegacy:
    """The outcome the traffic store already holds for each transaction (no calls made)."""

    def authorize_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        missing = [n for n in OUTCOME.names if n not in batch.schema.names]
        if missing:
            raise ConfigError(f"recorded legacy mode: traffic batch lacks columns {missing}")
        return pa.RecordBatch.from_arrays([batch.column(n).cast(OUTCOME.field(n).type)
                                           for n in OUTCOME.names], schema=OUTCOME)

    def authorize(self, txn: dict[str, Any]) -> dict[str, Any]:
        return {n: txn.get(n) for n in OUTCOME.names}

    def authorize_raw(self, txn: dict[str, Any]) -> dict[str, Any]:
        return self.authorize(txn)

    def close(self) -> None:
        pass


class SoapLegacy:
    """The live legacy core over SOAP; sends ``card_token`` as the card (the store has no PANs)."""

    def __init__(self, mapping: Path | str, *, wsdl: str | None = None,
                 workers: int = WORKERS_DEFAULT, exchange: Any = None,
                 errors_file: Path | str | None = None, **opts: Any) -> None:
        self.adapter = SoapAdapter(mapping, wsdl=wsdl, options=SoapOptions(**opts),
                                   exchange=exchange)
        self.workers = workers
        #: Every failed call is appended here (kind, message verbatim, txn_id), so a live
        #: replay can say why rows became legacy_error; opened per batch, only on failure.
        self.errors_file = Path(errors_file) if errors_file else None

    def authorize_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        # One online call per row is the nature of a SOAP core; the pool overlaps them.
        results = self.adapter.authorize_many(batch.to_pylist(), workers=self.workers)
        if self.errors_file is not None:
            append_failures(self.errors_file, results)
        return outcomes_to_batch(results)

    def authorize(self, txn: dict[str, Any]) -> dict[str, Any]:
        return self.adapter.authorize(txn)

    def authorize_raw(self, txn: dict[str, Any]) -> dict[str, Any]:
        try:
            return {"txn_id": txn.get("txn_id"), "error": None} | self.adapter.call_raw(txn)
        except (CallFailed, BreakerOpen) as exc:
            return {"txn_id": txn.get("txn_id"), "error": exc.reason, "detail": str(exc)}

    def close(self) -> None:
        self.adapter.close()


class CassetteLegacy(SoapLegacy):
    """The SOAP adapter with every HTTP exchange answered from a vcrpy cassette, offline.

    A request the cassette does not hold is the outcome ``not_in_cassette``; nothing goes to
    the network.
    """

    def __init__(self, mapping: Path | str, cassette: Path | str, *, wsdl: str | None = None,
                 workers: int = 1, **opts: Any) -> None:
        self._playback = playback(cassette, txn_element_of(load_mapping(mapping)))
        loaded = self._playback.__enter__()
        try:
            super().__init__(mapping, wsdl=wsdl, workers=workers,
                             exchange=PlaybackExchange(loaded), **opts)
        except BaseException:
            self._playback.__exit__(None, None, None)
            raise

    def close(self) -> None:
        super().close()
        self._playback.__exit__(None, None, None)


def append_failures(path: Path, outcomes: list[dict[str, Any]]) -> int:
    """Append the failed calls among ``outcomes`` to a JSON-lines file; return how many."""
    failed = [o for o in outcomes if o.get("legacy_decision") == "error"
              and not o.get("legacy_code")]
    if failed:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            for o in failed:
                line = {"kind": o.get("legacy_reason"), "txn_id": o.get("txn_id"),
                        "message": str(o.get("detail") or o.get("legacy_reason"))}
                handle.write(mask_pans(json.dumps(line, sort_keys=True, default=str)) + "\n")
    return len(failed)


def outcomes_to_batch(results: list[dict[str, Any]]) -> pa.RecordBatch:
    """Outcome dicts (input order) as a RecordBatch of the OUTCOME schema."""
    columns = {n: [r.get(n) for r in results] for n in OUTCOME.names}
    columns["legacy_code"] = [c or "" for c in columns["legacy_code"]]
    return pa.RecordBatch.from_pydict(columns, schema=OUTCOME)


def open_legacy(mode: str, *, wsdl: str | None = None, mapping: Path | str | None = None,
                cassette: Path | str | None = None, **opts: Any) -> LegacyCore:
    """Open the legacy port in ``mode`` (recorded | soap | cassette)."""
    if mode == "recorded":
        return RecordedLegacy()
    if mode not in MODES:
        raise ConfigError(f"legacy mode {mode!r}: expected one of {MODES}")
    if mapping is None:
        raise ConfigError(f"legacy mode {mode!r} needs --mapping (a cutover/fixtures/mappings/*.toml file)")
    if mode == "soap":
        return SoapLegacy(mapping, wsdl=wsdl, **opts)
    if cassette is None:
        raise ConfigError("legacy mode 'cassette' needs --cassette FILE.yaml")
    return CassetteLegacy(mapping, cassette, wsdl=wsdl, **opts)
