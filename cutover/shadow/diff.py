"""The diff engine: one columnar pass that gives every transaction exactly one category.

Pure and vectorised (pyarrow compute and numpy, no per-row Python): a batch of legacy
outcomes, candidate decisions and the traffic rows they answer go in, a DIFF table comes out,
row for row. Categories follow ``domain.CATEGORIES`` precedence (the first that applies wins),
which is what makes conservation hold by construction; ``check_conservation`` proves it again
on the counts.

Inputs are row-aligned with ``traffic``:

* ``legacy``: the legacy port's OUTCOME columns; decision ``error`` (or anything unreadable) is
  ``legacy_error`` with ``legacy_reason`` as the why.
* ``candidate``: DECISION columns plus an optional ``error`` text column; a row with an error,
  a missing decision or the decision ``error`` is ``candidate_error``.
* ``quarantine_reason``: rows that failed validation (non-null) are ``quarantined``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.domain import CATEGORIES, DIFF
from cutover.shadow.diff_rules import COMPARED_FIELDS, DiffRules, ExpectedRule

_DECIDED: Final = ("approve", "decline", "review")
_FIELD_BITS: Final = {name: 1 << i for i, name in enumerate(COMPARED_FIELDS)}
#: Every combination of changed fields as a list value, indexed by its bit mask.
_FIELD_LISTS: Final = pa.array([[n for n in COMPARED_FIELDS if code & _FIELD_BITS[n]]
                                for code in range(1 << len(COMPARED_FIELDS))],
                               pa.list_(pa.string()))
#: Categories whose whole amount is at stake: the payment itself is decided differently.
AMOUNT_AT_STAKE: Final = ("approve_to_decline", "decline_to_approve", "review_change",
                          "legacy_error", "candidate_error")
#: Categories where only the fee difference is at stake.
FEE_AT_STAKE: Final = ("route_change", "fee_change")
SEGMENT_COLUMNS: Final = ("merchant_id", "merchant_country", "channel", "mcc")


def _np_bool(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _col(table: pa.Table, name: str, type_: pa.DataType) -> pa.Array:
    """A column as one array of ``type_``; all nulls when the table lacks it."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, type_)
    column = table[name]
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return column.cast(type_)


def _differs(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Null-safe inequality: two nulls are equal, a null and a value differ."""
    equal = pc.fill_null(pc.equal(a, b), False)
    both_null = pc.and_(pc.is_null(a), pc.is_null(b))
    return ~_np_bool(pc.or_(equal, both_null))


def candidate_reasons(reason_codes: pa.Array, decision: pa.Array,
                      reason_map: dict[str, str]) -> pa.Array:
    """One canonical reason per candidate row: the first code the map knows, else the first
    code as itself, else "approved" for an approval with no codes (legacy's wording)."""
    n = len(reason_codes)
    flat = pc.list_flatten(reason_codes)
    parents = pc.list_parent_indices(reason_codes).to_numpy(zero_copy_only=False)
    keys = pa.array(list(reason_map), pa.string())
    mapped = pc.index_in(flat, value_set=keys)
    known = _np_bool(pc.is_valid(mapped))
    first_any = np.full(n, -1, np.int64)
    first_known = np.full(n, -1, np.int64)
    positions = np.arange(len(flat), dtype=np.int64)
    # Walk backwards so the earliest position of each parent is the one left standing.
    first_any[parents[::-1]] = positions[::-1]
    first_known[parents[known][::-1]] = positions[known][::-1]
    pick = np.where(first_known >= 0, first_known, first_any)
    translated = pc.coalesce(pc.take(pa.array(list(reason_map.values()), pa.string()), mapped),
                             flat) if len(flat) else flat.cast(pa.string())
    chosen = pc.take(translated, pa.array(np.where(pick >= 0, pick, 0))) if len(flat) else \
        pa.nulls(n, pa.string())
    chosen = pc.if_else(pa.array(pick >= 0), chosen, pa.nulls(n, pa.string()))
    approved = pc.fill_null(pc.equal(decision, "approve"), False)
    return pc.if_else(pc.and_(approved, pc.is_null(chosen)), pa.scalar("approved"), chosen)


def _fee_differs(legacy_fee: pa.Array, cand_fee: pa.Array, rules: DiffRules) -> np.ndarray:
    lf = pc.fill_null(legacy_fee, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    cf = pc.fill_null(cand_fee, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    allowed = np.maximum(float(rules.fee_abs_minor), rules.fee_rel * np.abs(lf))
    return np.abs(cf - lf) > allowed


def _changed_fields(sides: dict[str, pa.Array], rules: DiffRules) -> dict[str, np.ndarray]:
    """Per compared field, the rows where it changed (ignored fields never change)."""
    ld, cd = sides["legacy_decision"], sides["candidate_decision"]
    same = ~_differs(ld, cd)
    route_on = _np_bool(pc.is_in(ld, value_set=pa.array(list(rules.route_decisions), pa.string())))
    declined_or_reviewed = _np_bool(pc.is_in(ld, value_set=pa.array(["decline", "review"])))
    changed = {
        "decision": ~same,
        "route": same & route_on & _differs(sides["legacy_route"], sides["candidate_route"]),
        "fee_minor": same & _fee_differs(sides["legacy_fee_minor"], sides["candidate_fee_minor"],
                                         rules),
        "reason": same & declined_or_reviewed & _differs(sides["legacy_reason"],
                                                         sides["candidate_reason"]),
    }
    for name in rules.ignore_fields & set(changed):
        changed[name] = np.zeros(len(same), bool)
    return changed


def _categories(sides: dict[str, pa.Array], changed: dict[str, np.ndarray],
                quarantined: np.ndarray, candidate_failed: np.ndarray) -> np.ndarray:
    """The first category that applies to each row, in ``domain.CATEGORIES`` order."""
    ld, cd = sides["legacy_decision"], sides["candidate_decision"]

    def is_(values: pa.Array, word: str) -> np.ndarray:
        return _np_bool(pc.equal(values, word))

    legacy_failed = ~_np_bool(pc.is_in(ld, value_set=pa.array(list(_DECIDED))))
    decision = changed["decision"]
    conditions = {
        "quarantined": quarantined,
        "legacy_error": legacy_failed,
        "candidate_error": candidate_failed,
        "approve_to_decline": decision & is_(ld, "approve") & is_(cd, "decline"),
        "decline_to_approve": decision & is_(ld, "decline") & is_(cd, "approve"),
        "review_change": decision & (is_(ld, "review") | is_(cd, "review")),
        "route_change": changed["route"],
        "fee_change": changed["fee_minor"],
        "reason_change": changed["reason"],
    }
    names = [c for c in CATEGORIES if c != "match"]
    return np.select([conditions[c] for c in names], names, default="match").astype(object)


def _predicate(name: str | None, sides: dict[str, pa.Array], traffic: pa.Table,
               rules: DiffRules) -> np.ndarray:
    n = traffic.num_rows
    if name is None:
        return np.ones(n, bool)
    fraud = _np_bool(_col(traffic, "is_fraud", pa.bool_()))
    if name == "labelled_fraud":
        return fraud
    if name == "not_labelled_fraud":
        return ~fraud
    lf = pc.fill_null(sides["legacy_fee_minor"], 0).to_numpy(zero_copy_only=False)
    cf = pc.fill_null(sides["candidate_fee_minor"], 0).to_numpy(zero_copy_only=False)
    p_success = pc.fill_null(sides["p_success"], -1.0).to_numpy(zero_copy_only=False)
    return (_differs(sides["legacy_route"], sides["candidate_route"]) & (cf < lf)
            & (p_success >= rules.p_success_min))


def _rule_matches(rule: ExpectedRule, category: np.ndarray, field_bits: np.ndarray,
                  sides: dict[str, pa.Array], traffic: pa.Table, rules: DiffRules) -> np.ndarray:
    mask = category == rule.category
    if rule.fields is not None:
        allowed = sum(_FIELD_BITS[f] for f in rule.fields)
        mask &= (field_bits & ~allowed) == 0
    for column, value in rule.segment.items():
        mask &= _np_bool(pc.equal(_col(traffic, column, pa.string()), value))
    return mask & _predicate(rule.when, sides, traffic, rules)


def expected_mask(category: np.ndarray, field_bits: np.ndarray, sides: dict[str, pa.Array],
                  traffic: pa.Table, rules: DiffRules) -> np.ndarray:
    """Rows that some ``[[expected]]`` rule explains."""
    expected = np.zeros(len(category), bool)
    for rule in rules.expected:
        expected |= _rule_matches(rule, category, field_bits, sides, traffic, rules)
    return expected


def _sides(legacy: pa.Table, candidate: pa.Table, rules: DiffRules) -> dict[str, pa.Array]:
    cand_decision = _col(candidate, "decision", pa.string())
    error = _col(candidate, "error", pa.string())
    codes = _col(candidate, "reason_codes", pa.list_(pa.string()))
    reason = candidate_reasons(codes, cand_decision, rules.reason_map)
    return {
        "legacy_decision": _col(legacy, "legacy_decision", pa.string()),
        "legacy_reason": _col(legacy, "legacy_reason", pa.string()),
        "legacy_route": _col(legacy, "legacy_route", pa.string()),
        "legacy_fee_minor": _col(legacy, "legacy_fee_minor", pa.int64()),
        "legacy_latency_ms": _col(legacy, "legacy_latency_ms", pa.float64()),
        "candidate_decision": pc.if_else(pc.is_valid(error), pa.scalar("error"), cand_decision),
        "candidate_reason": pc.coalesce(error, reason),
        "candidate_route": _col(candidate, "route", pa.string()),
        "candidate_fee_minor": _col(candidate, "fee_minor", pa.int64()),
        "candidate_latency_ms": pc.divide(_col(candidate, "latency_us", pa.float64()), 1000.0),
        "p_success": _col(candidate, "p_success", pa.float64()),
    }


def classify(legacy: pa.Table, candidate: pa.Table, traffic: pa.Table, rules: DiffRules,
             *, quarantine_reason: pa.Array | None = None) -> pa.Table:
    """Compare both sides of ``traffic`` row by row; return the DIFF table in input order."""
    n = traffic.num_rows
    if legacy.num_rows != n or candidate.num_rows != n:
        raise ValueError(f"classify needs row-aligned inputs: traffic {n}, legacy"
                         f" {legacy.num_rows}, candidate {candidate.num_rows} rows")
    q_reason = quarantine_reason if quarantine_reason is not None else pa.nulls(n, pa.string())
    quarantined = _np_bool(pc.is_valid(q_reason))
    sides = _sides(legacy, candidate, rules)
    candidate_failed = ~_np_bool(pc.is_in(sides["candidate_decision"],
                                          value_set=pa.array(list(_DECIDED))))
    changed = _changed_fields(sides, rules)
    category = _categories(sides, changed, quarantined, candidate_failed)
    bits = sum(changed[name].astype(np.int64) * bit for name, bit in _FIELD_BITS.items())
    bits = np.where(quarantined, 0, bits)
    expected = expected_mask(category, bits, sides, traffic, rules) & ~quarantined
    severity = np.array([rules.severity[c] for c in CATEGORIES], dtype=object)
    category_index = pc.index_in(pa.array(category, pa.string()),
                                 value_set=pa.array(list(CATEGORIES))).to_numpy()
    severity_per_row = np.where(expected, rules.expected_severity, severity[category_index])
    columns = {
        "txn_id": _col(traffic, "txn_id", pa.string()),
        "ts": _col(traffic, "ts", DIFF.field("ts").type),
        "category": pa.array(category, pa.string()),
        "fields": _FIELD_LISTS.take(pa.array(bits)),
        "expected": pa.array(expected),
        "severity": pa.array(severity_per_row.astype(object), pa.string()),
        "quarantine_reason": q_reason.cast(pa.string()),
    }
    for name in DIFF.names:
        if name in columns:
            continue
        source = sides[name] if name in sides else _col(traffic, name, DIFF.field(name).type)
        columns[name] = source.cast(DIFF.field(name).type)
    return pa.Table.from_arrays([columns[name] for name in DIFF.names], schema=DIFF)


def field_bits(fields: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The ``fields`` list column back as bit masks (the form ``expected_mask`` reads)."""
    fields = fields.combine_chunks() if isinstance(fields, pa.ChunkedArray) else fields
    bits = np.zeros(len(fields), np.int64)
    flat = pc.list_flatten(fields)
    if len(flat) == 0:
        return bits
    parents = pc.list_parent_indices(fields).to_numpy(zero_copy_only=False)
    index = pc.index_in(flat, value_set=pa.array(list(COMPARED_FIELDS)))
    known = np.asarray(pc.is_valid(index).to_numpy(zero_copy_only=False), dtype=bool)
    values = np.left_shift(1, pc.fill_null(index, 0).to_numpy(zero_copy_only=False)[known])
    np.bitwise_or.at(bits, parents[known], values)
    return bits


def reapply_expected(diffs: pa.Table, p_success: pa.Array, rules: DiffRules) -> pa.Table:
    """DIFF rows with ``expected`` and ``severity`` recomputed under (newer) rules.

    Categories and fields never change: only which changes someone has since agreed to.
    """
    category = np.asarray(diffs["category"].to_numpy(zero_copy_only=False), dtype=object)
    sides = {name: _col(diffs, name, DIFF.field(name).type) for name in
             ("legacy_route", "candidate_route", "legacy_fee_minor", "candidate_fee_minor")}
    sides["p_success"] = p_success
    expected = expected_mask(category, field_bits(diffs["fields"]), sides, diffs, rules)
    expected &= category != "quarantined"
    severity = np.array([rules.severity.get(c, "none") for c in category], dtype=object)
    severity = np.where(expected, rules.expected_severity, severity)
    out = diffs.set_column(diffs.schema.get_field_index("expected"), "expected", pa.array(expected))
    return out.set_column(out.schema.get_field_index("severity"), "severity",
                          pa.array(severity.astype(object), pa.string()))


def at_stake_minor(diffs: pa.Table) -> np.ndarray:
    """Money at stake per diff row, minor units of the row's currency.

    A changed decision (or an error on either side) puts the whole amount at stake; a route or
    fee change puts the fee difference at stake; a reason change, a match or a quarantined row
    put nothing at stake.
    """
    category = diffs["category"]
    amount = pc.fill_null(diffs["amount_minor"], 0).to_numpy(zero_copy_only=False)
    lf = pc.fill_null(diffs["legacy_fee_minor"], 0).to_numpy(zero_copy_only=False)
    cf = pc.fill_null(diffs["candidate_fee_minor"], 0).to_numpy(zero_copy_only=False)
    whole = _np_bool(pc.is_in(category, value_set=pa.array(list(AMOUNT_AT_STAKE))))
    fee = _np_bool(pc.is_in(category, value_set=pa.array(list(FEE_AT_STAKE))))
    return np.where(whole, amount, np.where(fee, np.abs(cf - lf), 0)).astype(np.int64)


def count_categories(diffs: pa.Table) -> dict[str, int]:
    """Rows per category (every category present, zeros included)."""
    counts = {c: 0 for c in CATEGORIES}
    for entry in pc.value_counts(diffs["category"]).to_pylist():
        counts[entry["values"]] = counts.get(entry["values"], 0) + int(entry["counts"])
    return counts


def check_conservation(rows_in: int, by_category: dict[str, int]) -> bool:
    """True iff every input row sits in exactly one known category."""
    unknown = set(by_category) - set(CATEGORIES)
    return not unknown and sum(by_category.values()) == rows_in
