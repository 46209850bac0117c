"""report.json of a replay run: counts, rates with Wilson intervals, money, latency, segments,
timeline and drift, computed from RUN_DIR/diffs in batches (memory does not grow with rows).

Counting conventions (docs/contracts.md):

* ``counts.by_category`` counts every row in its category, expected changes included;
  ``counts.expected_by_category`` says how many of those an ``[[expected]]`` rule explains.
* ``rates.<category>.k`` counts only the NOT expected rows of the category, over
  ``n = counts.in``: that is what a gate judges. ``rates.mismatch`` sums them.
* money: volumes and fraud figures count every decided row; ``at_stake_minor`` counts the
  not-expected mismatches (``cutover.shadow.diff.at_stake_minor``).
* latency percentiles come from log-spaced histograms (relative error under 1%), so a
  billion rows cost the same memory as a thousand.

``counts.in`` is the number of rows the replay READ (from checkpoint.json); the categories
are counted again here from the diffs: conservation is judged on those two paths.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cutover.domain import CATEGORIES, MISMATCH_CATEGORIES, REPORT_VERSION
from cutover.errors import InvariantBroken, StoreError
from cutover.pan import mask_value
from cutover.shadow.diff import SEGMENT_COLUMNS, at_stake_minor, reapply_expected
from cutover.shadow.diff_rules import load_diff_rules
from cutover.shadow.drift import DriftState, plan_drift, scan_reference
from cutover.shadow.feed_section import SECTION_VERSION, feed_section
from cutover.shadow.latency import HOW, HOW_HTTP, HTTP_PREFIXES, NOT_MEASURED, read_sample
from cutover.shadow.report_md import write_markdown
from cutover.stack.money import SIDE_MEASURES, SIDES, side_masks
from cutover.stats import wilson
from cutover.store.checkpoint import write_json_atomic
from cutover.store.filters import Narrowing, parse_when
from cutover.store.quarantine import quarantine_reasons
from cutover.store.runinfo import read_run_json
from cutover.store.stream import iter_input
from cutover.store.traffic import store_files
from cutover.values import ts_out_of_range

READ_BATCH_ROWS: Final = 262_144
CONFIDENCE: Final = 0.95
LATENCY_EDGES_MS: Final = np.logspace(-3, 6, 1801)
SEGMENTS_PER_DIMENSION: Final = 10
TIMELINE_BUCKETS_MAX: Final = 200
BUCKET_MINUTES: Final = (1, 5, 15, 60, 360, 1440, 10080)
#: Per side and currency, the money model's measures (cutover.stack.money, docs/money.md)
#: and the fees the side's approvals pay: what the evaluation and the ledger books also count.
SIDE_FIELDS: Final = tuple(f"{m}_{side}_{unit}" for side in SIDES
                           for m in (*SIDE_MEASURES, "fees") for unit in ("minor", "count")
                           if not (m == "fees" and unit == "count"))
MONEY_FIELDS: Final = ("approved_volume_legacy_minor", "approved_volume_candidate_minor",
                       "false_decline_minor", "false_decline_count", "fraud_let_through_minor",
                       "fraud_let_through_count", "fraud_caught_minor", "fraud_caught_count",
                       "at_stake_minor", *SIDE_FIELDS,
                       "fraud_label_unknown_count", "chargeback_label_unknown_count")
COLUMNS: Final = ["txn_id", "ts", "category", "expected", "amount_minor", "currency",
                  *SEGMENT_COLUMNS, "is_fraud", "chargeback", "legacy_decision", "legacy_fee_minor",
                  "legacy_latency_ms", "candidate_decision", "candidate_fee_minor",
                  "candidate_latency_ms"]


def _np(values: pa.ChunkedArray | pa.Array, fill: Any) -> np.ndarray:
    return pc.fill_null(values, fill).to_numpy(zero_copy_only=False)


def _is(values: pa.ChunkedArray | pa.Array, word: str) -> np.ndarray:
    """Rows equal to ``word`` as a numpy bool array (no string conversion to Python)."""
    return np.asarray(_np(pc.equal(values, word), False), dtype=bool)


_CATEGORY_VALUES: Final = pa.array(list(CATEGORIES), pa.string())
_IS_MISMATCH: Final = np.array([c in MISMATCH_CATEGORIES for c in CATEGORIES] + [False])
_QUARANTINED: Final = CATEGORIES.index("quarantined")


class _Totals:
    """Everything the report needs, folded in batch by batch with numpy counters."""

    def __init__(self) -> None:
        self.by_category = np.zeros(len(CATEGORIES) + 1, np.int64)  # last slot: unknown
        self.expected = np.zeros(len(CATEGORIES) + 1, np.int64)
        self.money: dict[str, Counter[str]] = defaultdict(Counter)
        self.latency = {"legacy": np.zeros(len(LATENCY_EDGES_MS) + 1, np.int64),
                        "candidate": np.zeros(len(LATENCY_EDGES_MS) + 1, np.int64)}
        # Timed single decisions (cutover.shadow.latency): what the gate's latency check reads.
        self.decide_latency = np.zeros(len(LATENCY_EDGES_MS) + 1, np.int64)
        self.segments = {d: defaultdict(Counter) for d in SEGMENT_COLUMNS}
        # Timeline counters per bucket of ``bucket_width`` minutes, buckets aligned on the epoch.
        self.bucket_width = BUCKET_MINUTES[0]
        self.bucket_base = 0
        self.buckets = np.zeros(0, np.int64)
        self.bucket_mismatches = np.zeros(0, np.int64)
        self.ts_min: int | None = None
        self.ts_max: int | None = None

    def add(self, t: pa.Table) -> None:
        index = pc.index_in(t["category"], value_set=_CATEGORY_VALUES)
        cat = _np(index, len(CATEGORIES)).astype(np.int64)
        expected = np.asarray(_np(t["expected"], False), dtype=bool)
        mismatch = _IS_MISMATCH[cat] & ~expected
        self.by_category += np.bincount(cat, minlength=len(CATEGORIES) + 1)
        self.expected += np.bincount(cat[expected], minlength=len(CATEGORIES) + 1)
        live = cat != _QUARANTINED
        # A quarantined row was never decided and may carry an unusable currency: no money.
        self._money(t.filter(pa.array(live)), mismatch[live])
        self._latency(t)
        self._segments(t, cat, mismatch)
        self._timeline(t, mismatch)

    def add_latency_sample(self, sample_ms: list[float]) -> None:
        """Fold one batch's timed single decisions (ms)."""
        if len(sample_ms):
            self.decide_latency += np.bincount(
                np.searchsorted(LATENCY_EDGES_MS, np.asarray(sample_ms, np.float64)),
                minlength=len(LATENCY_EDGES_MS) + 1)

    def _money(self, t: pa.Table, mismatch: np.ndarray) -> None:
        amount = _np(t["amount_minor"], 0).astype(np.int64)
        ld, cd = t["legacy_decision"], t["candidate_decision"]
        fraud = np.asarray(_np(t["is_fraud"], False), dtype=bool)
        legacy_approved, approved = _is(ld, "approve"), _is(cd, "approve")
        masks = {
            "approved_volume_legacy": legacy_approved, "approved_volume_candidate": approved,
            "false_decline": legacy_approved & _is(cd, "decline") & ~fraud,
            "fraud_let_through": approved & fraud,
            "fraud_caught": (_is(cd, "decline") | _is(cd, "review")) & fraud,
        }
        columns: dict[str, Any] = {"currency": pc.fill_null(t["currency"], "???")}
        for name, mask in masks.items():
            columns[f"{name}_minor"] = pa.array(np.where(mask, amount, 0))
            if not name.startswith("approved"):
                columns[f"{name}_count"] = pa.array(mask.astype(np.int64))
        columns["at_stake_minor"] = pa.array(np.where(mismatch, at_stake_minor(t), 0))
        columns.update(_side_columns(t, amount, fraud))
        grouped = pa.table(columns).group_by("currency").aggregate(
            [(c, "sum") for c in columns if c != "currency"])
        for row in grouped.to_pylist():
            currency = row.pop("currency")
            self.money[currency].update({k.removesuffix("_sum"): int(v) for k, v in row.items()})

    def _latency(self, t: pa.Table) -> None:
        for side in ("legacy", "candidate"):
            values = t[f"{side}_latency_ms"].drop_null().to_numpy(zero_copy_only=False)
            self.latency[side] += np.bincount(np.searchsorted(LATENCY_EDGES_MS, values),
                                              minlength=len(LATENCY_EDGES_MS) + 1)

    def _segments(self, t: pa.Table, cat: np.ndarray, mismatch: np.ndarray) -> None:
        # Category index of each mismatch, -1 for rows that are not one.
        code = pa.array(np.where(mismatch, cat, -1))
        for dim in SEGMENT_COLUMNS:
            table = pa.table({"value": pc.fill_null(t[dim], "<null>"), "code": code})
            grouped = table.group_by(["value", "code"]).aggregate([([], "count_all")])
            values = grouped["value"].to_pylist()
            codes = grouped["code"].to_pylist()
            counts = grouped["count_all"].to_pylist()
            seg = self.segments[dim]
            for value, c, k in zip(values, codes, counts, strict=True):
                seg[value][CATEGORIES[c] if c >= 0 else ""] += k

    def _timeline(self, t: pa.Table, mismatch: np.ndarray) -> None:
        us = pc.cast(t["ts"], pa.int64())
        # A time outside the plausible range (a quarantined year-0001 row) has no place on a
        # timeline, and would stretch it past what dates and charts can hold.
        valid = np.asarray(_np(pc.is_valid(us), False), dtype=bool) & ~ts_out_of_range(t["ts"])
        if not valid.any():
            return
        kept = us.filter(pa.array(valid))
        low, high = int(pc.min(kept).as_py()), int(pc.max(kept).as_py())
        self.ts_min = low if self.ts_min is None else min(self.ts_min, low)
        self.ts_max = high if self.ts_max is None else max(self.ts_max, high)
        # Per-minute counters would grow with the span of the traffic (two int64 per minute:
        # 18 MB for 800 days). The report only shows buckets of the width the whole span
        # calls for, and a span only widens, so counting at the width the span so far calls
        # for is exact: each width divides the next, so it merges into the final one.
        self._coarsen(_bucket_width(_minute(self.ts_max) - _minute(self.ts_min) + 1))
        bucket = (_np(us, 0) // 60_000_000).astype(np.int64)[valid] // self.bucket_width
        self._grow(int(bucket.min()), int(bucket.max()))
        offset = bucket - self.bucket_base
        self.buckets += np.bincount(offset, minlength=len(self.buckets))
        self.bucket_mismatches += np.bincount(offset[mismatch[valid]],
                                              minlength=len(self.buckets))

    def _coarsen(self, width: int) -> None:
        """Merge the bucket counters into buckets of ``width`` minutes (a multiple of the
        current width); an epoch-aligned bucket falls whole into one wider bucket."""
        if width == self.bucket_width:
            return
        if len(self.buckets):
            merged = (self.bucket_base + np.arange(len(self.buckets))) * self.bucket_width // width
            base = int(merged[0])
            size = int(merged[-1]) - base + 1
            buckets, mismatches = np.zeros(size, np.int64), np.zeros(size, np.int64)
            np.add.at(buckets, merged - base, self.buckets)
            np.add.at(mismatches, merged - base, self.bucket_mismatches)
            self.bucket_base, self.buckets, self.bucket_mismatches = base, buckets, mismatches
        self.bucket_width = width

    def _grow(self, low: int, high: int) -> None:
        """Make the bucket counters cover buckets [low, high] (one slot per bucket: about
        TIMELINE_BUCKETS_MAX of them whatever the span)."""
        if not len(self.buckets):
            self.bucket_base = low
        end = self.bucket_base + len(self.buckets) - 1
        before, after = max(0, self.bucket_base - low), max(0, high - end)
        if before or after:
            pad = (before, after)
            self.buckets = np.pad(self.buckets, pad)
            self.bucket_mismatches = np.pad(self.bucket_mismatches, pad)
            self.bucket_base -= before


def _side_columns(t: pa.Table, amount: np.ndarray, fraud: np.ndarray) -> dict[str, pa.Array]:
    """Both sides' money-model measures (amount and count) and fees, per row."""
    chargeback = np.asarray(_np(t["chargeback"], False), dtype=bool)
    columns: dict[str, pa.Array] = {}
    for side in SIDES:
        decision = t[f"{side}_decision"]
        masks = side_masks(_is(decision, "approve"), _is(decision, "decline"),
                           _is(decision, "review"), fraud, chargeback)
        for measure, mask in masks.items():
            columns[f"{measure}_{side}_minor"] = pa.array(np.where(mask, amount, 0))
            columns[f"{measure}_{side}_count"] = pa.array(mask.astype(np.int64))
        fee = _np(t[f"{side}_fee_minor"], 0).astype(np.int64)
        columns[f"fees_{side}_minor"] = pa.array(np.where(masks["approved"] & (fee > 0), fee, 0))
    columns["fraud_label_unknown_count"] = pa.array(
        t["is_fraud"].is_null().to_numpy(zero_copy_only=False).astype(np.int64))
    columns["chargeback_label_unknown_count"] = pa.array(
        t["chargeback"].is_null().to_numpy(zero_copy_only=False).astype(np.int64))
    return columns


def _minute(us: int) -> int:
    return us // 60_000_000


def _bucket_width(span_minutes: int) -> int:
    """The finest bucket width that shows ``span_minutes`` in at most TIMELINE_BUCKETS_MAX
    buckets (the widest one when none does)."""
    return next((w for w in BUCKET_MINUTES if span_minutes / w <= TIMELINE_BUCKETS_MAX),
                BUCKET_MINUTES[-1])


def _percentiles(hist: np.ndarray) -> dict[str, float]:
    total = hist.sum()
    if total == 0:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    cumulative = np.cumsum(hist)
    out = {}
    for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        i = int(np.searchsorted(cumulative, q * total, side="left"))
        # Bin i holds values in (edges[i-1], edges[i]]: report its upper edge (conservative).
        out[name] = round(float(LATENCY_EDGES_MS[min(i, len(LATENCY_EDGES_MS) - 1)]), 3)
    return out


def _segments_section(totals: _Totals) -> list[dict[str, Any]]:
    out = []
    for dim, values in totals.segments.items():
        rows = []
        for value, cats in values.items():
            n = sum(cats.values())
            by_cat = {c: k for c, k in cats.items() if c}
            mismatches = sum(by_cat.values())
            rows.append({"dimension": dim, "value": value, "n": n, "mismatches": mismatches,
                         "rate": round(mismatches / n, 6) if n else 0.0,
                         "by_category": dict(sorted(by_cat.items()))})
        rows.sort(key=lambda r: (-r["mismatches"], -r["rate"], r["value"]))
        out.extend(rows[:SEGMENTS_PER_DIMENSION])
    return out


def _timeline_section(totals: _Totals) -> list[dict[str, Any]]:
    if totals.ts_min is None or totals.ts_max is None:
        return []
    width = _bucket_width(_minute(totals.ts_max) - _minute(totals.ts_min) + 1)
    if width != totals.bucket_width:
        raise InvariantBroken(f"timeline counted in {totals.bucket_width}-minute buckets,"
                             f" the span calls for {width}")
    used = np.flatnonzero(totals.buckets)
    return [{"bucket_start": datetime.fromtimestamp(int(b) * width * 60, UTC).isoformat(),
             "bucket_minutes": width, "n": int(nn), "mismatches": int(kk),
             "rate": round(int(kk) / int(nn), 6) if nn else 0.0}
            for b, nn, kk in zip((totals.bucket_base + used).tolist(),
                                 totals.buckets[used].tolist(),
                                 totals.bucket_mismatches[used].tolist(), strict=True)]


def _rates(by_category: dict[str, int], expected: dict[str, int], n: int) -> dict[str, Any]:
    rates = {}
    for category in (*MISMATCH_CATEGORIES, "mismatch"):
        k = sum(by_category[c] - expected.get(c, 0) for c in MISMATCH_CATEGORIES) \
            if category == "mismatch" else by_category[category] - expected.get(category, 0)
        lo, hi = wilson(k, n, CONFIDENCE)
        rates[category] = {"k": k, "n": n, "rate": round(k / n, 8) if n else 0.0,
                           "lo": round(lo, 8), "hi": round(hi, 8)}
    return rates


def diff_parts(run_dir: Path) -> list[Path]:
    """The run's diffs parts in order; StoreError if there are none."""
    folder = Path(run_dir) / "diffs"
    if not folder.is_dir():
        raise StoreError(f"{run_dir} has no diffs/ folder: run `cutover replay` first")
    return sorted(folder.glob("part-*.parquet"))


class ReportState:
    """The report's running state: diff totals and the replayed rows' drift stats.

    The replay engine folds each committed batch in while it runs, so the report at the end
    needs no second pass; ``build_report`` folds the same data from disk, giving the same
    numbers (every aggregate is an order-independent sum of integers).
    """

    def __init__(self, plan: Any) -> None:
        self.totals = _Totals()
        self.drift = DriftState(plan)
        self.rules_reapplied = False
        self.reasons: Counter[str] = Counter()

    def add(self, diffs: pa.Table, traffic: pa.Table, decisions: pa.Table | None = None) -> None:
        """Fold one batch: its DIFF rows, the TRAFFIC rows they answer and the candidate's
        decisions (their reason codes)."""
        self.totals.add(diffs.select(COLUMNS))
        self.add_reasons(decisions)
        self.drift.add(traffic, _is(diffs["category"], "quarantined"))

    def add_reasons(self, decisions: pa.Table | None) -> None:
        """Count each reason code the candidate gave (declines, reviews, skipped gateways)."""
        if decisions is None or decisions.num_rows == 0:
            return
        counted = pc.value_counts(pc.list_flatten(decisions["reason_codes"]))
        for item in counted.to_pylist():
            self.reasons[item["values"]] += int(item["counts"])


def drift_plan_for(run: dict[str, Any]) -> Any:
    """The drift plan of a run, from run.json alone (store files, narrowing, training window)."""
    narrowing = run.get("narrowing") or {}
    return plan_drift(_store_files(run), _when(narrowing.get("since")),
                      _when(narrowing.get("until")), _training(run))


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _store_files(run: dict[str, Any]) -> list[Path]:
    return [Path(i["path"]) for i in run.get("inputs", []) if Path(i["path"]).is_file()]


def _fold_traffic(run: dict[str, Any], state: ReportState) -> None:
    """Re-read the replayed rows (same store, same narrowing) for the drift stats."""
    n = run.get("narrowing") or {}
    narrowing = Narrowing(parse_when(n.get("since")), parse_when(n.get("until"), "--until"),
                          n.get("merchant"), n.get("sample"), n.get("limit"))
    for table in iter_input(Path(run["store"]), narrowing, READ_BATCH_ROWS):
        refused = np.asarray(pc.is_valid(quarantine_reasons(table)).to_numpy(
            zero_copy_only=False), dtype=bool)
        state.drift.add(table, refused)


def _changed_rules(run_dir: Path, run: dict[str, Any]) -> Any:
    """The run's diff_rules.toml when it changed since the replay (an operator appended an
    expected rule), else None: the expected flags in the diffs are then still current."""
    path = Path(run_dir) / "diff_rules.toml"
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() == run.get(
            "rules_sha256"):
        return None
    return load_diff_rules(path)


def _reason_codes(part: Path) -> pa.Table | None:
    """The reason codes of a diffs part's decisions part (None when it is gone)."""
    decisions = part.parent.parent / "decisions" / part.name
    return pq.read_table(decisions, columns=["reason_codes"]) if decisions.is_file() else None


def _reasons_section(reasons: Counter[str]) -> dict[str, Any]:
    """How often the candidate gave each reason code; ``pushed:`` codes are features that moved
    the score without a truthful sentence (cutover.stack.reasons)."""
    ranked = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"counts": dict(ranked),
            "note": "model: codes passed their sentence's check against the model's reference "
                    "population; pushed: codes moved the score with no plain-language reason "
                    "claimed"}


def _p_success(part: Path) -> pa.Table:
    decisions = part.parent.parent / "decisions" / part.name
    if not decisions.is_file():
        return pa.table({"txn_id": pa.array([], pa.string()), "p_success": pa.array([], pa.float64())})
    return pq.read_table(decisions, columns=["txn_id", "p_success"])


def _reapplied(batch: pa.Table, decided: pa.Table, rules: Any) -> pa.Table:
    index = pc.index_in(batch["txn_id"], value_set=decided["txn_id"])
    p_success = pc.take(decided["p_success"], index)
    return reapply_expected(batch, p_success, rules)


def fold_run(run_dir: Path, run: dict[str, Any]) -> ReportState:
    """Fold every diffs part, and the replayed traffic when the store is still there.

    When RUN_DIR/diff_rules.toml changed since the replay, expected flags are recomputed
    under it, so a rule an operator agreed to in the TUI shows in the rebuilt report.
    """
    state = ReportState(drift_plan_for(run))
    rules = _changed_rules(run_dir, run)
    state.rules_reapplied = rules is not None
    columns = sorted(set(COLUMNS) | {"fields", "legacy_route", "candidate_route", "channel",
                                     "severity"}) if rules is not None else COLUMNS
    for part in diff_parts(run_dir):
        reader = pq.ParquetFile(part)
        decided = _p_success(part) if rules is not None else None
        for batch in reader.iter_batches(batch_size=READ_BATCH_ROWS, columns=columns):
            table = pa.Table.from_batches([batch])
            if rules is not None:
                table = _reapplied(table, decided, rules)
            state.totals.add(table.select(COLUMNS))
        state.add_reasons(_reason_codes(part))
    state.totals.add_latency_sample(read_sample(run_dir))
    if run.get("store") and _store_files(run):
        _fold_traffic(run, state)
    return state


def build_report(run_dir: Path) -> dict[str, Any]:
    """The report.json content of ``run_dir``, recomputed from its files."""
    run_dir = Path(run_dir)
    run = read_run_json(run_dir, "run.json")
    checkpoint = read_run_json(run_dir, "checkpoint.json")
    state = fold_run(run_dir, run)
    store_there = bool(run.get("store")) and bool(_store_files(run))
    reference = scan_reference(state.drift.plan) if store_there else None
    return finish_report(run_dir, run, checkpoint, state, reference, drift=store_there)


def finish_report(run_dir: Path, run: dict[str, Any], checkpoint: dict[str, Any],
                  state: ReportState, reference: Any, *, drift: bool = True) -> dict[str, Any]:
    """The report.json content from folded state (see docs/contracts.md)."""
    totals = state.totals
    rows_in = int(checkpoint["rows_in"])
    by_category = {c: int(totals.by_category[i]) for i, c in enumerate(CATEGORIES)}
    unknown = {"<unknown>": int(totals.by_category[-1])} if totals.by_category[-1] else {}
    expected = {c: int(totals.expected[i]) for i, c in enumerate(CATEGORIES) if totals.expected[i]}
    conservation_ok = not unknown and sum(by_category.values()) == rows_in \
        and bool(checkpoint.get("finished"))
    return {
        "report_version": REPORT_VERSION,
        "run": _run_section(Path(run_dir), run) | {"rules_reapplied": state.rules_reapplied},
        "counts": {"in": rows_in, "by_category": by_category | unknown,
                   "expected_by_category": expected, "conservation_ok": conservation_ok},
        "rates": _rates(by_category, expected, rows_in),
        "money": {"by_currency": {c: {f: int(v.get(f, 0)) for f in MONEY_FIELDS}
                                  for c, v in sorted(totals.money.items())}},
        "latency_ms": _latency_section(totals, str(run.get("candidate") or "")),
        "reasons": _reasons_section(state.reasons),
        "errors": {c: by_category[c] for c in ("candidate_error", "legacy_error", "quarantined")},
        "segments": _segments_section(totals), "timeline": _timeline_section(totals),
        "drift": state.drift.finish(reference) if drift else {
            "features": [], "new_values": {}, "null_spikes": [],
            "note": "the traffic store of this run is gone; drift not computed"},
        "feed_health": _feed_health(state, reference, run, drift),
    }


def _feed_health(state: ReportState, reference: Any, run: dict[str, Any],
                 drift: bool) -> dict[str, Any]:
    """The feed-health section (``shadow.feed_section``): findings per field and segment."""
    if not drift:
        return {"version": SECTION_VERSION, "findings": [],
                "note": "the traffic store of this run is gone; feed health not computed"}
    return feed_section(state.drift, reference, run)


def _latency_section(totals: _Totals, candidate_name: str = "") -> dict[str, Any]:
    """Legacy's recorded latency; the candidate's from timed single decisions, or for an
    HTTP candidate from its every call (None when neither, so a gate with a latency limit
    refuses the report rather than pass it); the batch time per row beside it."""
    n = int(totals.decide_latency.sum())
    if not n and candidate_name.startswith(HTTP_PREFIXES):
        calls = int(totals.latency["candidate"].sum())
        return {"legacy": _percentiles(totals.latency["legacy"]),
                "candidate": _percentiles(totals.latency["candidate"])
                | {"n": calls, "how": HOW_HTTP}}
    candidate: dict[str, Any] = _percentiles(totals.decide_latency) if n else \
        {"p50": None, "p95": None, "p99": None}
    return {"legacy": _percentiles(totals.latency["legacy"]),
            "candidate": candidate | {"n": n, "how": HOW if n else NOT_MEASURED},
            "candidate_batch_per_row": _percentiles(totals.latency["candidate"])
            | {"how": "the candidate's decide_batch time divided by the batch's rows"}}


def _run_section(run_dir: Path, run: dict[str, Any]) -> dict[str, Any]:
    keys = ("run_id", "started_at", "finished_at", "inputs", "candidate", "candidate_options",
            "legacy_mode", "model_version", "rules_sha256", "code_version", "timings_s",
            "narrowing", "batch_rows", "resumed_at", "engine", "training_window")
    section = {k: run.get(k) for k in keys}
    section["run_dir"] = str(run_dir.resolve())
    rules = run_dir / "diff_rules.toml"
    if rules.is_file():
        section["rules_sha256_now"] = hashlib.sha256(rules.read_bytes()).hexdigest()
    return section


def _training(run: dict[str, Any]) -> tuple[list[Path], datetime, datetime] | None:
    window = run.get("training_window") or {}
    try:
        files = store_files(Path(window["store"]))
        return (files, datetime.fromisoformat(window["from"]),
                datetime.fromisoformat(window["until"]))
    except (KeyError, TypeError, ValueError, StoreError):
        return None


#: Versions of a run's report beyond report.json: report-2.json ... (a bound on the search).
REPORT_VERSIONS_MAX: Final = 10_000


def report_path(run_dir: Path, version: int) -> Path:
    """RUN_DIR/report.json for version 1, RUN_DIR/report-N.json after it."""
    return Path(run_dir) / ("report.json" if version == 1 else f"report-{version}.json")


def next_report_version(run_dir: Path) -> int:
    """The first version whose report file does not exist yet."""
    for version in range(1, REPORT_VERSIONS_MAX + 1):
        if not report_path(run_dir, version).exists():
            return version
    raise StoreError(f"{run_dir}: {REPORT_VERSIONS_MAX} report versions already; start a new run")


def latest_report_path(run_dir: Path) -> Path | None:
    """The run's newest report version, or None when it has none."""
    version = next_report_version(Path(run_dir)) - 1
    return report_path(Path(run_dir), version) if version >= 1 else None


def write_reports(run_dir: Path, report: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the next version of the report (report.json, then report-2.json, ...) and its
    Markdown (with charts) into ``run_dir``; return the report (``run.report_version_of_run``
    is its version: ``report_path`` names its file).

    A report once written never changes: a plan may have recorded its sha256 as the evidence
    for a phase. ``report`` is the already-computed content (the engine's in-flight one);
    None rebuilds it from the run's files.
    """
    report = build_report(run_dir) if report is None else report
    # Segments carry merchant and customer ids from the store: masked on the way out, like
    # every writer, so a card number that slipped into an id never reaches a report.
    masked = mask_value(report)
    assert isinstance(masked, dict)
    report = masked
    version = next_report_version(Path(run_dir))
    path = report_path(Path(run_dir), version)
    report["run"]["report_version_of_run"] = version
    write_json_atomic(path, report)
    write_markdown(Path(run_dir), report, path.with_suffix(".md").name)
    return report
