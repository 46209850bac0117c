"""The reference candidate stack: features -> XGBoost score -> rules gate -> routing -> retries.

``DefaultStack`` implements the candidate port (docs/contracts.md): ``decide_batch`` for
replay, ``decide`` for one online decision, plus ``warm``, ``observe_labels`` and
``observe_outcomes`` (gateway outcomes, for routing's health check) so the look-back state
holds what a production system would know at each moment. Both paths end in
the same ``_decide_rows``: a single decision is a batch of one whose features come from the
online state, so the two cannot drift apart.

The batch path and the online path keep separate state; use one or the other on a stack.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

from cutover.domain import DECISION
from cutover.errors import ConfigError, InputError
from cutover.stack import registry
from cutover.stack.features import CARD_N_1H, FEATURES, INPUT_COLUMNS, FeatureState
from cutover.stack.health import (
    OUTCOME_COLUMNS,
    GatewayHealth,
    OnlineHealth,
    load_health,
    outcome_arrays,
)
from cutover.stack.online import OnlineFeatures, ts_us_of
from cutover.stack.reasons import METHOD_DEFAULT, top_features
from cutover.stack.retries import retry_plan_one, retry_plans
from cutover.stack.routing import SuccessTable, choose_route_one, choose_routes, load_gateways
from cutover.stack.rules import Rules, apply_rules, load_rules, rule_one
from cutover.stack.scoring import PreparedRow

#: Prediction threads. Measured here (bench/decide.py): one thread predicts about 1M rows/s,
#: and a second one gains little on an idle machine but loses 3-5x when the other core is
#: busy (the OpenMP hand-off waits for it), which is the normal case in a replay.
NTHREAD_PREDICT: Final = 1
LABEL_COLUMNS: Final = ("merchant_id", "label_ts", "is_fraud")
#: The reason code of a row whose best gateway was skipped for health (then the gateway name).
SKIPPED_UNHEALTHY: Final = "route:skipped_unhealthy"


class DefaultStack:
    """A loaded model version with its rules, gateways and rolling feature state."""

    def __init__(self, booster: Any, card: dict[str, Any], success: SuccessTable, rules: Rules,
                 gateways_path: Path | None = None) -> None:
        self.booster = booster
        self.booster.set_param({"nthread": NTHREAD_PREDICT})
        self.card = card
        self.model_version: str = card["version"]
        self.success = success
        self.rules = rules
        self.gateways = load_gateways(gateways_path)
        health = load_health()
        self.health = GatewayHealth(health)
        self.online_health = OnlineHealth(health)
        thresholds = card.get("metrics", {}).get("thresholds", {})
        self.review_at = float(thresholds.get("review_at", rules.review_at))
        self.decline_at = float(thresholds.get("decline_at", rules.decline_at))
        self.contrib_method = card.get("reasons", {}).get("method", METHOD_DEFAULT)
        self.state = FeatureState()
        self.online = OnlineFeatures()
        # Built on the first decide(): a replay never pays for the self-check. The row buffer
        # and the online state are shared, so concurrent decide() calls take turns.
        self._prepared: PreparedRow | None = None
        self._online_lock = threading.Lock()
        # Labels reach the online state only when decide() is first used: a replay that only
        # calls decide_batch never pays for a per-label Python loop.
        self._online_labels: list[tuple[pa.Array, pa.Array, pa.Array]] = []
        self._online_outcomes: list[pa.Table | pa.RecordBatch] = []
        self._batch_used = False

    # -- the port ------------------------------------------------------------------------------

    def observe_labels(self, labels: pa.Table | pa.RecordBatch) -> None:
        """Remember labels (merchant_id, label_ts, is_fraud); each counts from its label_ts on."""
        missing = [c for c in LABEL_COLUMNS if c not in labels.schema.names]
        if missing:
            raise InputError(f"labels: missing columns {missing}")
        merchants = _array(labels.column("merchant_id"))
        label_ts = _array(labels.column("label_ts")).cast(pa.int64())
        fraud = _array(labels.column("is_fraud"))
        self.state.observe_labels(merchants, label_ts, fraud)
        # Same reason as for outcomes: once the stack decides in batches it never turns online,
        # and a long replay observes a label for nearly every row, so holding them for a flush
        # that will not come would grow with the run's length.
        if not self._batch_used:
            self._online_labels.append((merchants, label_ts, fraud))

    def _flush_online_labels(self) -> None:
        for merchants, label_ts, fraud in self._online_labels:
            for m, t, f in zip(merchants.to_pylist(), label_ts.to_pylist(), fraud.to_pylist(),
                               strict=True):
                if t is not None and f is not None:
                    self.online.observe_label(m, t, f)
        self._online_labels.clear()

    def observe_outcomes(self, outcomes: pa.Table | pa.RecordBatch) -> None:
        """Remember gateway outcomes (ts, gateway, gateway_ok); each counts from ts + settle delay."""
        self.health.observe(outcomes)
        # A stack that already decides in batches never turns online (module docstring), so
        # it does not hold every outcome of a long replay for a flush that will not come.
        if not self._batch_used:
            self._online_outcomes.append(outcomes.select(list(OUTCOME_COLUMNS)))

    def _flush_online(self) -> None:
        if self._online_labels:
            self._flush_online_labels()
        for outcomes in self._online_outcomes:
            names, idx, ts_us, ok = outcome_arrays(outcomes)
            for code, t, flag in zip(idx.tolist(), ts_us.tolist(), ok.tolist(), strict=True):
                self.online_health.add(names[code], t, flag)
        self._online_outcomes.clear()

    def warm(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Fill the look-back state with earlier traffic; no decisions."""
        self.state.warm(batch)

    def decide_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Decisions (DECISION schema) for a time-ordered batch, in the same row order."""
        start = time.perf_counter_ns()
        self._batch_used = True
        self._online_labels.clear()
        self._online_outcomes.clear()
        X = self.state.features(batch)
        out = self._decide_rows(batch, X)
        n = batch.num_rows
        per_row_us = (time.perf_counter_ns() - start) // 1000 // max(n, 1)
        out["latency_us"] = pa.array(np.full(n, per_row_us, np.int64))
        return pa.RecordBatch.from_pydict(out, schema=DECISION)

    def online_features(self, txn: dict[str, Any]) -> list[float]:
        """The features decide() would use for ``txn`` (advances the online state, like decide)."""
        self._flush_online()
        row = {c: txn.get(c) for c in INPUT_COLUMNS}
        row["ts"] = ts_us_of(txn.get("ts"))
        return self.online.features(row)

    def decide(self, txn: dict[str, Any]) -> dict[str, Any]:
        """One online decision from the online state; the same result as decide_batch.

        Scalar twins of the batch steps (same arithmetic, checked row by row in the tests):
        a batch of one through Arrow would cost more than the 0.5 ms budget. The score comes
        from a prepared row (``cutover.stack.scoring``), with no per-call frame or matrix.
        """
        with self._online_lock:
            return self._decide_one(txn)

    def _decide_one(self, txn: dict[str, Any]) -> dict[str, Any]:
        self._flush_online()
        start = time.perf_counter_ns()
        row = {c: txn.get(c) for c in INPUT_COLUMNS}
        row["ts"] = ts_us_of(txn.get("ts"))
        prepared = self._prepared_row()
        # Slice assignment casts each float to float32 as np.asarray(..., float32) would.
        prepared.row[0, :] = self.online.features(row)
        score = prepared.score()
        skip = self.online_health.skipped(self.gateways.names, row["ts"])
        route, fee, p_success, alt, skipped = choose_route_one(
            self.gateways, self.success, row["card_country"], row["currency"],
            row["amount_minor"], row["ts"], skip)
        decision, rule = rule_one(self.rules, row, float(prepared.row[0, CARD_N_1H]),
                                  route is not None, score, self.review_at, self.decline_at)
        reasons: list[str] = []
        if decision != "approve":
            contribs = prepared.contributions(self.contrib_method)
            reasons = [f"rule:{rule}", *top_features(contribs, FEATURES)[0]]
        if skipped is not None:
            reasons.append(f"{SKIPPED_UNHEALTHY}:{skipped}")
        return {"txn_id": row["txn_id"], "decision": decision, "reason_codes": reasons,
                "score": score, "route": route, "fee_minor": fee if decision == "approve" else 0,
                "p_success": None if p_success != p_success else p_success,  # NaN: no route
                "model_version": self.model_version,
                "retry_plan": retry_plan_one(decision, rule, route, alt, p_success),
                "latency_us": (time.perf_counter_ns() - start) // 1000}

    def _prepared_row(self) -> PreparedRow:
        if self._prepared is None:
            self._prepared = PreparedRow(self.booster, FEATURES, NTHREAD_PREDICT)
        return self._prepared

    # -- the shared core -----------------------------------------------------------------------

    def features(self, batch: pa.RecordBatch) -> np.ndarray:
        """The feature matrix of a batch (advances the batch state, like decide_batch)."""
        return self.state.features(batch)

    def _decide_rows(self, batch: pa.RecordBatch | pa.Table, X: np.ndarray) -> dict[str, Any]:
        n = len(X)
        score = self.booster.inplace_predict(X).astype(np.float64) if n else np.zeros(0)
        ts = batch.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
        amount = batch.column("amount_minor").to_numpy(zero_copy_only=False)
        skip = self.health.skip_matrix(self.gateways.names, ts)
        routes = choose_routes(self.gateways, self.success, _array(batch.column("card_country")),
                               _array(batch.column("currency")), amount, ts, skip)
        decision, rule = apply_rules(self.rules, batch, X[:, CARD_N_1H], routes.route != None,  # noqa: E711
                                     score, self.review_at, self.decline_at)
        return {
            "txn_id": _array(batch.column("txn_id")),
            "decision": _strings(decision),
            "reason_codes": self._reasons(X, decision, rule, routes.skipped),
            "score": score,
            "route": _strings(routes.route),
            "fee_minor": np.where(decision == "approve", routes.fee_minor, 0).astype(np.int64),
            "p_success": pa.array(routes.p_success, pa.float64(), from_pandas=True),  # NaN -> null
            "retry_plan": _strings(retry_plans(decision, rule, routes.route, routes.alt_route,
                                               routes.p_success)),
            "model_version": pa.repeat(pa.scalar(self.model_version, pa.string()), n),
        }

    def _reasons(self, X: np.ndarray, decision: np.ndarray, rule: np.ndarray,
                 skipped: np.ndarray | None) -> pa.ListArray:
        """Rule reason then top model features for declines and reviews; then, on any row
        whose best gateway was skipped for health, the route code (last, so the canonical
        reason of a decline stays its rule)."""
        flagged = decision != "approve"
        noted = flagged if skipped is None else flagged | (skipped != None)  # noqa: E711
        rows = np.flatnonzero(noted)
        lengths = np.zeros(len(X), np.int32)
        values: list[str] = []
        if len(rows) == 0:
            return pa.ListArray.from_arrays(pa.array(np.zeros(len(X) + 1, np.int32)),
                                            pa.array([], pa.string()))
        explained = np.flatnonzero(flagged)
        feats = dict(zip(explained.tolist(), top_features(self.contributions(X[explained]), FEATURES),
                         strict=True)) if len(explained) else {}
        for i in rows.tolist():
            codes = [f"rule:{rule[i]}", *feats[i]] if flagged[i] else []
            if skipped is not None and skipped[i] is not None:
                codes.append(f"{SKIPPED_UNHEALTHY}:{skipped[i]}")
            values.extend(codes)
            lengths[i] = len(codes)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.string()))

    def contributions(self, X: np.ndarray, method: str | None = None) -> np.ndarray:
        """Per-row feature contributions (last column: bias) by the card's method."""
        import xgboost as xgb

        approx = (method or self.contrib_method) == "approx_contribs"
        matrix = xgb.DMatrix(X, feature_names=list(FEATURES), nthread=NTHREAD_PREDICT)
        return self.booster.predict(matrix, pred_contribs=True, approx_contribs=approx)


def _strings(values: np.ndarray) -> pa.Array:
    """An object array of strings or None as an Arrow string array."""
    return pa.array(values, pa.string())


def _array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def load_stack(models: str | Path | None = None, version: str | None = None,
               rules: str | Path | None = None) -> DefaultStack:
    """Load a model version (default: latest) from the registry with its rules."""
    import xgboost as xgb

    reg = registry.models_dir(models)
    folder = registry.version_dir(reg, version)
    card = registry.read_card(reg, folder.name)
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray((folder / registry.MODEL_FILE).read_bytes()))
        success = SuccessTable.from_json(json.loads((folder / registry.ROUTING_FILE).read_text()))
    except (OSError, ValueError, KeyError, xgb.core.XGBoostError) as exc:
        raise ConfigError(f"model {folder}: cannot load: {exc}") from exc
    if card.get("features") != list(FEATURES):
        raise ConfigError(f"model {folder}: trained on features {card.get('features')}, this code "
                          f"computes {list(FEATURES)}: retrain with `cutover train`")
    return DefaultStack(booster, card, success, load_rules(Path(rules) if rules else None))


def default_stack(models: str | Path | None = None, version: str | None = None,
                  rules: str | Path | None = None) -> DefaultStack:
    """The reference candidate: $CUTOVER_MODELS (else ./models), latest version, default rules."""
    return load_stack(models, version, rules)


