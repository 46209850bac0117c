"""``cutover evaluate``: the stack against the legacy rules on the same labelled transactions.

Over a held-out window [since, until) the stack decides every transaction exactly as replay
would (earlier traffic warms the look-back state, labels arrive in time), and both sides are
scored against the labels: fraud caught (declined or reviewed fraud), false declines (declined
non-fraud), approval rate, fees of approved payments, and the expected gateway success. The
success figures are model estimates (the stack's success table) and are labelled as such; the
legacy side's recorded settlement rate is shown beside them. Money stays per currency.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.domain import currency_exponent
from cutover.errors import ConfigError, InputError
from cutover.paths import fixtures_dir
from cutover.stack.default import load_stack
from cutover.stack.features import HISTORY_US
from cutover.stack.fx import default_fx_path, load_fx
from cutover.stack.money import SIDE_MEASURES, decision_masks, side_masks
from cutover.stack.routing import OTHER, region_of, vocab_index
from cutover.store.traffic import iter_batches

SIDES: Final = ("legacy", "stack")
TOTAL_KEYS: Final = ("fraud_minor", "fraud_caught_minor", "false_decline_minor", "approved_minor",
                     "fees_minor")
REQUEST_EXCLUDE: Final = ("is_fraud", "chargeback", "label_ts", "gateway_ok")


def _us(when: datetime) -> int:
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1_000_000)


def _request(batch: pa.RecordBatch) -> pa.RecordBatch:
    names = [n for n in batch.schema.names if not n.startswith("legacy_") and n not in REQUEST_EXCLUDE]
    return batch.select(names)


def _empty_side() -> dict[str, Any]:
    return {"rows": 0, "approved": 0, "declined": 0, "reviewed": 0, "fraud_rows": 0,
            "fraud_caught_count": 0, "false_decline_count": 0, "p_success_sum": 0.0,
            "p_true_sum": 0.0, "p_true_rows": 0,
            "by_currency": defaultdict(lambda: defaultdict(int))}


def _score_side(acc: dict[str, Any], decision: np.ndarray, fraud: np.ndarray,
                chargeback: np.ndarray, amount: np.ndarray, currency: np.ndarray, fee: np.ndarray,
                p_success: np.ndarray) -> None:
    """Fold one side's decisions; money by the money model (cutover.stack.money), as the
    replay report and the ledger count it."""
    approved, declined, reviewed = decision_masks(decision)
    masks = side_masks(approved, declined, reviewed, fraud, chargeback)
    acc["rows"] += len(decision)
    acc["approved"] += int(approved.sum())
    acc["declined"] += int(declined.sum())
    acc["reviewed"] += int(reviewed.sum())
    acc["fraud_rows"] += int(fraud.sum())
    acc["fraud_caught_count"] += int(masks["fraud_caught"].sum())
    acc["false_decline_count"] += int(masks["false_decline"].sum())
    acc["p_success_sum"] += float(np.nansum(np.where(approved, p_success, 0.0)))
    for cur in np.unique(currency):
        m = currency == cur
        bucket = acc["by_currency"][str(cur)]
        bucket["fraud_minor"] += int(amount[m & fraud].sum())
        for measure in SIDE_MEASURES:
            bucket[f"{measure}_minor"] += int(amount[m & masks[measure]].sum())
        bucket["fees_minor"] += int(fee[m & approved & (fee > 0)].sum())


def evaluate(store: Path, registry: Path, since: datetime, until: datetime,
             stack: Any = None) -> dict[str, Any]:
    """Both sides' figures over [since, until); ``stack`` defaults to the registry's latest."""
    stack = stack or load_stack(registry)
    since_us, until_us = _us(since), _us(until)
    if since_us >= until_us:
        raise InputError(f"evaluate: --since {since} must be before --until {until}")
    acc: dict[str, Any] = {side: _empty_side() for side in SIDES}
    acc["true_rates"] = simulator_rates()
    for batch in iter_batches(Path(store)):
        ts = batch.column("ts").cast(pa.int64()).to_numpy()
        if ts[0] >= until_us:
            break
        if ts[-1] < since_us - HISTORY_US:
            _observe(stack, batch)
            continue
        batch = batch.filter(pa.array(ts < until_us))
        ts = ts[ts < until_us]
        _observe(stack, batch)
        early = ts < since_us
        if early.any():
            stack.warm(_request(batch.filter(pa.array(early))))
        if (~early).any():
            _one_batch(stack, batch.filter(pa.array(~early)), acc)
    if acc["stack"]["rows"] == 0:
        raise InputError(f"evaluate: store {store} has no rows in [{since}, {until})")
    return _summary(acc, stack, since, until)


def _observe(stack: Any, batch: pa.RecordBatch) -> None:
    """What replay feeds a stack before it decides: labels, and gateway outcomes if it reads them."""
    stack.observe_labels(batch.select(["txn_id", "merchant_id", "label_ts", "is_fraud"]))
    if hasattr(stack, "observe_outcomes"):
        stack.observe_outcomes(pa.RecordBatch.from_arrays(
            [batch.column("ts"), batch.column("legacy_route"), batch.column("gateway_ok")],
            names=["ts", "gateway", "gateway_ok"]))


def _one_batch(stack: Any, batch: pa.RecordBatch, acc: dict[str, Any]) -> None:
    decisions = stack.decide_batch(_request(batch))
    fraud = pc.fill_null(batch.column("is_fraud"), False).to_numpy(zero_copy_only=False)
    amount = batch.column("amount_minor").to_numpy()
    currency = np.asarray(batch.column("currency").to_pylist(), dtype=object)
    legacy_ok = batch.column("gateway_ok")
    legacy_decision = np.asarray(batch.column("legacy_decision").to_pylist(), dtype=object)
    stack_decision = np.asarray(decisions.column("decision").to_pylist(), dtype=object)
    chargeback = pc.fill_null(batch.column("chargeback"), False).to_numpy(zero_copy_only=False)
    _score_side(acc["legacy"], legacy_decision, fraud, chargeback, amount, currency,
                pc.fill_null(batch.column("legacy_fee_minor"), 0).to_numpy(),
                _legacy_p(stack, batch))
    _score_side(acc["stack"], stack_decision, fraud, chargeback, amount, currency,
                pc.fill_null(decisions.column("fee_minor"), 0).to_numpy(),
                decisions.column("p_success").to_numpy(zero_copy_only=False))
    if acc["true_rates"]:
        for side, decision, route in (("legacy", legacy_decision, batch.column("legacy_route")),
                                      ("stack", stack_decision, decisions.column("route"))):
            p = _true_p(acc["true_rates"], stack, route, batch.column("card_country"))
            use = (decision == "approve") & ~np.isnan(p)
            acc[side]["p_true_sum"] += float(p[use].sum())
            acc[side]["p_true_rows"] += int(use.sum())
    ok = pc.fill_null(legacy_ok, False).to_numpy(zero_copy_only=False)
    acc["legacy"].setdefault("recorded_ok", 0)
    acc["legacy"]["recorded_ok"] += int(ok.sum())
    acc["legacy"].setdefault("recorded_outcomes", 0)
    acc["legacy"]["recorded_outcomes"] += int(pc.sum(pc.is_valid(legacy_ok)).as_py() or 0)


def _legacy_p(stack: Any, batch: pa.RecordBatch) -> np.ndarray:
    """The success table's estimate for the gateway legacy actually routed to."""
    table = stack.success
    g = vocab_index(batch.column("legacy_route"), [*table.gateways, OTHER])
    r = vocab_index(region_of(stack.gateways, batch.column("card_country")), table.regions)
    c = vocab_index(batch.column("currency"), table.currencies)
    h = (batch.column("ts").cast(pa.int64()).to_numpy() // 3_600_000_000) % 24
    known = g < len(table.gateways)
    return np.where(known, table.p[np.minimum(g, len(table.gateways) - 1), r, c, h], np.nan)


def _summary(acc: dict[str, Any], stack: Any, since: datetime, until: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {"model_version": stack.model_version, "since": since.isoformat(),
                           "until": until.isoformat(), "sides": {}}
    for side in SIDES:
        a = acc[side]
        approved = max(a["approved"], 1)
        side_out = {k: v for k, v in a.items()
                    if k not in ("by_currency", "p_success_sum", "p_true_sum", "p_true_rows")}
        if a["p_true_rows"]:
            side_out["simulator_true_success"] = a["p_true_sum"] / a["p_true_rows"]
        side_out["approval_rate"] = a["approved"] / max(a["rows"], 1)
        side_out["fraud_caught_rate"] = a["fraud_caught_count"] / max(a["fraud_rows"], 1)
        side_out["expected_success_estimate"] = a["p_success_sum"] / approved
        side_out["by_currency"] = {c: dict(v) for c, v in sorted(a["by_currency"].items())}
        out["sides"][side] = side_out
    legacy = out["sides"]["legacy"]
    if legacy.get("recorded_outcomes"):
        legacy["recorded_success_rate"] = legacy["recorded_ok"] / legacy["recorded_outcomes"]
    out["note"] = ("expected_success_estimate is a model estimate (the stack's success table); "
                   "recorded_success_rate is what legacy's gateways actually settled; "
                   "simulator_true_success is the simulator's own rate by gateway and card region "
                   "(cutover/fixtures/gateways.toml sim_success, without outages), shown for reference only")
    out["stack_better"] = _verdict(out["sides"])
    rates = load_report_rates()
    out["usd_indicative_rates"] = load_fx().label(str(default_fx_path().name))
    for side in SIDES:
        out["sides"][side]["usd_indicative"] = _usd_totals(out["sides"][side]["by_currency"], rates)
    lg_usd, st_usd = out["sides"]["legacy"]["usd_indicative"], out["sides"]["stack"]["usd_indicative"]
    # The verdict is the per-currency one, everywhere: a sum in indicative USD can say "better"
    # while every currency's own column says "no". The USD comparison is kept, named as such.
    out["stack_better_overall"] = bool(out["stack_better"]) and all(out["stack_better"].values())
    out["stack_better_usd_indicative"] = (st_usd["fraud_caught"] >= lg_usd["fraud_caught"]
                                          and st_usd["false_decline"] <= lg_usd["false_decline"])
    return out


def _verdict(sides: dict[str, Any]) -> dict[str, bool]:
    """Per currency: more fraud amount caught at an equal or lower false-decline amount."""
    out = {}
    for cur, s in sides["stack"]["by_currency"].items():
        lg = sides["legacy"]["by_currency"].get(cur, {})
        out[cur] = (s["fraud_caught_minor"] >= lg.get("fraud_caught_minor", 0)
                    and s["false_decline_minor"] <= lg.get("false_decline_minor", 0))
    return out


def simulator_rates(path: Path | None = None) -> dict[str, dict[str, float]]:
    """The simulator's true success rates by gateway and region, for the report ONLY.

    The stack never learns from these (it learns from recorded outcomes); on simulated data
    they are shown beside its estimates. Empty when the gateways file carries none.
    """
    path = Path(path) if path else fixtures_dir() / "gateways.toml"
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read gateways: {exc}") from exc
    return {g: {k: float(v) for k, v in spec.get("sim_success", {}).items()}
            for g, spec in doc.get("gateways", {}).items() if spec.get("sim_success")}


def _true_p(rates: dict[str, dict[str, float]], stack: Any, route: pa.Array,
            card_country: pa.Array) -> np.ndarray:
    regions = region_of(stack.gateways, card_country).to_pylist()
    out = np.full(len(regions), np.nan)
    for i, (g, r) in enumerate(zip(route.to_pylist(), regions, strict=True)):
        table = rates.get(g)
        if table is not None:
            out[i] = table.get(r, table.get("base", np.nan)) if r else table.get("base", np.nan)
    return out


def load_report_rates(path: Path | None = None) -> dict[str, float]:
    """Indicative units-per-USD rates for headline totals (cutover/fixtures/fx/indicative.toml,
    the same rates a plan's money limits use)."""
    fx = load_fx(path)
    if fx.reference != "USD":
        raise ConfigError(f"{path}: evaluate sums in USD; the rates file's reference is "
                          f"{fx.reference}")
    return dict(fx.units_per_reference)


def _usd_totals(by_currency: dict[str, dict[str, int]], rates: dict[str, float]) -> dict[str, Any]:
    """Sum each money figure over currencies in indicative USD; unknown currencies are listed."""
    totals = {k.removesuffix("_minor"): 0.0 for k in TOTAL_KEYS}
    skipped = []
    for cur, figures in by_currency.items():
        if cur not in rates:
            skipped.append(cur)
            continue
        scale = 10 ** currency_exponent(cur) * rates[cur]
        for k in TOTAL_KEYS:
            totals[k.removesuffix("_minor")] += figures.get(k, 0) / scale
    return {**{k: round(v, 2) for k, v in totals.items()}, "currencies_skipped": skipped}
