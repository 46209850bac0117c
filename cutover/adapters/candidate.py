"""The candidate side of a replay: load a stack by "module:attr" and ask it about each batch.

The candidate sees the request columns only: the legacy outcome and the labels are stripped,
so it cannot peek at the answer. Labels reach it separately through ``observe_labels`` (when it
has one) before each batch, and it is the stack's job to use a label only once
``label_ts <= ts``. Recorded gateway outcomes (``gateway_ok`` of the gateway the payment went
to) reach it the same way through ``observe_outcomes`` (columns ``ts, gateway, gateway_ok``),
and the stack uses one only once it is settled, after its ``ts``. A candidate that raises for
a batch does not stop the replay: the batch's rows become ``candidate_error`` with the
exception as the reason.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.adapters.http_candidate import HttpCandidate, is_http_spec
from cutover.domain import (  # noqa: F401  (the column sets are re-exported for stacks)
    DECISION,
    LABEL_COLUMNS,
    LABELS_FOR_STACK,
    OBSERVED_LABELS,
    REQUEST_COLUMNS,
    TRAFFIC,
    conform,
)
from cutover.errors import ConfigError

DEFAULT_CANDIDATE: Final = "cutover.stack:default_stack"
ERROR_TEXT_MAX: Final = 300


@runtime_checkable
class CandidateStack(Protocol):
    """The candidate port: what replay, shadow runs and the harness need of a stack.

    ``decide_batch`` takes request columns (TRAFFIC without the legacy outcome and labels) and
    returns one DECISION row per input row, in input order; ``decide`` is the single online
    call. Optional, found by name when present: ``observe_labels(table)``,
    ``observe_outcomes(table)``, ``warm(batch)``, ``model_version``, ``card``.
    """

    def decide_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch | pa.Table: ...

    def decide(self, txn: dict[str, Any]) -> dict[str, Any]: ...


def load_candidate(spec: str, options: dict[str, str] | None = None) -> CandidateStack:
    """Import ``module:attr``; call it with ``**options`` when it is a factory, not a stack.

    An ``http://HOST:PORT`` spec is a service of the ``cutover serve`` contract, reached
    through ``HttpCandidate`` with ``options`` as its client settings.
    """
    if is_http_spec(spec):
        return HttpCandidate(spec, options)
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"--candidate {spec!r}: expected module:attr, e.g. {DEFAULT_CANDIDATE}")
    # Like other "module:attr" loaders (uvicorn, gunicorn), the working directory is importable,
    # so a team's candidate in its own checkout loads without installing it.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"--candidate {spec!r}: cannot import {module_name}: {exc}") from exc
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"--candidate {spec!r}: {module_name} has no attribute {attr}")
        target = getattr(target, part)
    if callable(target) and not hasattr(target, "decide_batch"):
        try:
            target = target(**(options or {}))
        except TypeError as exc:
            raise ConfigError(f"--candidate {spec!r}: cannot build it with options"
                              f" {sorted(options or {})}: {exc}") from exc
    elif options:
        raise ConfigError(f"--candidate {spec!r} is not a factory; --candidate-opt"
                          f" {sorted(options)} cannot be applied")
    if not hasattr(target, "decide_batch"):
        raise ConfigError(f"--candidate {spec!r}: {type(target).__name__} has no decide_batch")
    return target


def request_columns(table: pa.Table) -> pa.Table:
    """The columns a candidate may see, in TRAFFIC order."""
    return table.select([n for n in REQUEST_COLUMNS if n in table.column_names])


def label_rows(table: pa.Table) -> pa.Table:
    """``OBSERVED_LABELS`` of the rows with a label (a label_ts) or a gateway outcome."""
    labels = table.select(list(OBSERVED_LABELS))
    return labels.filter(pc.or_(pc.is_valid(labels["label_ts"]),
                                pc.is_valid(labels["gateway_ok"])))


def outcome_rows(labels: pa.Table) -> pa.Table:
    """The gateway outcomes among ``label_rows``, as ``observe_outcomes`` receives them."""
    known = pc.and_(pc.is_valid(labels["gateway_ok"]), pc.is_valid(labels["legacy_route"]))
    rows = labels.filter(known)
    return pa.table({"ts": rows["ts"], "gateway": rows["legacy_route"],
                     "gateway_ok": rows["gateway_ok"]})


def error_text(exc: BaseException) -> str:
    """A one-line reason for a failed call, bounded so a huge message cannot bloat the diffs."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text[:ERROR_TEXT_MAX]


#: Wall time a replay may spend on timed single decisions.
SAMPLE_S_MAX: Final = 2.0
#: Calls of each sampled request; its latency is the fastest (docs/decisions.md).
SAMPLE_REPEATS: Final = 3


@dataclass
class CandidateResult:
    """The decisions (DECISION schema, input order) or the reason the batch failed."""

    decisions: pa.Table | None
    error: str | None
    seconds: float


class CandidateSide:
    """A loaded candidate with the replay's conventions around it."""

    def __init__(self, stack: CandidateStack, timer: Any = None) -> None:
        self.stack = stack
        #: A second instance of the candidate whose single decisions are timed, so timing them
        #: cannot change the state behind the replay's decisions.
        self.timer = timer
        #: Requests kept for ``time_sample`` (bounded by the replay's sample size).
        self.sample_rows: list[dict[str, Any]] = []
        self._observe: Callable[[pa.Table], Any] | None = getattr(stack, "observe_labels", None)
        self._outcomes: Callable[[pa.Table], Any] | None = getattr(stack, "observe_outcomes",
                                                                    None)
        self._warm: Callable[[pa.RecordBatch], Any] | None = getattr(stack, "warm", None)

    @property
    def model_version(self) -> str | None:
        """The stack's model version when it says (attribute or model card), else None."""
        for name in ("model_version", "version"):
            value = getattr(self.stack, name, None)
            if isinstance(value, str):
                return value
        return None

    @property
    def training_window(self) -> dict[str, str] | None:
        """The model card's training data window and store, when the stack carries a card."""
        card = getattr(self.stack, "card", None)
        window = card.get("data_window") if isinstance(card, dict) else None
        if not isinstance(window, dict) or not card.get("store"):
            return None
        until = window.get("train_until") or window.get("until")
        if not window.get("from") or not until:
            return None
        return {"store": str(card["store"]), "from": str(window["from"]), "until": str(until)}

    def observe_labels(self, table: pa.Table) -> None:
        """Pass the labels and gateway outcomes of ``table`` (any table with OBSERVED_LABELS)
        to the stack, each through its own method when the stack has it."""
        if (self._observe is None and self._outcomes is None) or table.num_rows == 0:
            return
        rows = label_rows(table)
        labels = rows.filter(pc.is_valid(rows["label_ts"])).select(list(LABELS_FOR_STACK))
        if self._observe is not None and labels.num_rows:
            self._observe(labels)
        outcomes = outcome_rows(rows)
        if self._outcomes is not None and outcomes.num_rows:
            self._outcomes(outcomes)

    def warm(self, table: pa.Table) -> None:
        """Feed earlier rows to the stack's rolling state, if it keeps one."""
        if self._warm is None or table.num_rows == 0:
            return
        self._warm(_one_batch(request_columns(table)))

    def decide(self, table: pa.Table, sample_rows: int = 0) -> CandidateResult:
        """Ask the stack about ``table`` (TRAFFIC rows); never raises for the stack's faults.

        When ``sample_rows`` > 0, keep that many of its requests for ``time_sample``: a
        batch's time over its rows is not what one payment waits.
        """
        started = time.perf_counter()
        try:
            out = self.stack.decide_batch(_one_batch(request_columns(table)))
            decisions = conform(out, DECISION)
            _check_alignment(decisions, table)
        except Exception as exc:  # a candidate's bug is a finding, not a crash of the replay
            return CandidateResult(None, error_text(exc), time.perf_counter() - started)
        if sample_rows > 0:
            self.keep_sample(table, sample_rows)
        return CandidateResult(decisions, None, time.perf_counter() - started)

    def keep_sample(self, table: pa.Table, rows: int) -> None:
        """Keep ``rows`` requests spread evenly over ``table`` for ``time_sample``."""
        if table.num_rows == 0:
            return
        picked = np.unique(np.linspace(0, table.num_rows - 1, min(rows, table.num_rows)).astype(int))
        self.sample_rows += request_columns(table).take(pa.array(picked)).to_pylist()

    def time_sample(self, seconds_max: float = SAMPLE_S_MAX) -> list[float]:
        """ms of one single ``decide`` call for each kept request, in order.

        The calls go to ``timer``, a separate instance that sees only these rows, and the
        answers are discarded, so the replay's decisions do not change. They run after the
        batches, when no reader or writer thread competes for the interpreter, so the figure
        is the candidate's, not the harness's. No timer, no ``decide`` or a call that raises:
        no sample for it (the report says how many calls it holds).
        """
        decide_one = getattr(self.timer, "decide", None)
        if decide_one is None or not self.sample_rows:
            return []
        # The first call pays for lazy imports and caches once per process, not per payment.
        _timed_call(decide_one, self.sample_rows[0])
        out: list[float] = []
        # A slow candidate (20 ms a call over HTTP) must not double a replay's time: the sample
        # stops at the time bound.
        deadline = time.perf_counter() + seconds_max
        for txn in self.sample_rows:
            if time.perf_counter() > deadline:
                break
            # The fastest of a few calls of the same request: a call the OS preempted on a
            # shared machine measures the machine, not the candidate (timeit's "best of").
            tries = [_timed_call(decide_one, txn) for _ in range(SAMPLE_REPEATS)]
            timed = [ms for ms in tries if ms is not None]
            if timed:
                out.append(min(timed))
        return out


def _timed_call(decide_one: Callable[[dict[str, Any]], Any], txn: dict[str, Any]) -> float | None:
    """ms of one single decision, or None when it raised: a failing call is not a latency
    (the replay's batch path judged the candidate's errors)."""
    started = time.perf_counter_ns()
    try:
        decide_one(txn)
    except Exception:  # noqa: BLE001 - any fault of the candidate's, measured as no sample
        return None
    return (time.perf_counter_ns() - started) / 1e6


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    table = table.combine_chunks()
    batches = table.to_batches()
    if len(batches) == 1:
        return batches[0]
    return pa.RecordBatch.from_pylist([], schema=table.schema) if not batches else \
        pa.RecordBatch.from_arrays([c.combine_chunks() for c in table.columns],
                                   schema=table.schema)


def _check_alignment(decisions: pa.Table, table: pa.Table) -> None:
    """The port's promise: one decision per input row, in input order."""
    if decisions.num_rows != table.num_rows:
        raise ValueError(f"candidate returned {decisions.num_rows} decisions for"
                         f" {table.num_rows} rows")
    same = pc.all(pc.equal(decisions["txn_id"], table["txn_id"])).as_py()
    if not same:
        raise ValueError("candidate returned decisions out of input order (txn_id mismatch)")
    if pc.any(pc.is_null(decisions["decision"])).as_py():
        raise ValueError("candidate returned a null decision")
