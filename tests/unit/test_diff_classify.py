"""The diff engine on hand-made rows: one category per row by precedence, fields, rules."""

import pyarrow as pa

from cutover.domain import CATEGORIES, DIFF
from cutover.shadow.diff import at_stake_minor, check_conservation, classify, count_categories
from cutover.shadow.diff_rules import parse_diff_rules

RULES = """
version = 1
[tolerance.fee_minor]
abs = 2
rel = 0.0
[reason_map]
"rule:amount_limit" = "exceeds_amount_limit"
[[expected]]
name = "cheaper"
category = "route_change"
fields = ["route", "fee_minor"]
when = "cheaper_route_same_success"
reason = "cheaper"
by = "test"
[[expected]]
name = "fraud-declines"
category = "approve_to_decline"
segment = { merchant_id = "M2" }
when = "labelled_fraud"
reason = "declining labelled fraud at M2 is the point"
by = "test"
"""

# (legacy decision, reason, route, fee) | (candidate decision, codes, route, fee, p_success)
ROWS = [
    ("approve", "approved", "GW_A", 30, "approve", [], "GW_A", 30, 0.9),        # match
    ("approve", "approved", "GW_A", 30, "decline", ["rule:x"], None, 0, 0.9),   # a2d
    ("decline", "exceeds_amount_limit", "GW_A", 0, "approve", [], "GW_A", 30, 0.9),  # d2a
    ("approve", "approved", "GW_A", 30, "review", [], "GW_A", 0, 0.9),          # review
    ("approve", "approved", "GW_A", 30, "approve", [], "GW_B", 20, 0.95),       # route, cheaper
    ("approve", "approved", "GW_A", 30, "approve", [], "GW_B", 40, 0.95),       # route, dearer
    ("approve", "approved", "GW_A", 30, "approve", [], "GW_A", 35, 0.9),        # fee beyond tol
    ("approve", "approved", "GW_A", 30, "approve", [], "GW_A", 32, 0.9),        # fee within tol
    ("decline", "exceeds_amount_limit", "GW_A", 0, "decline", ["rule:amount_limit"], None, 0,
     0.9),                                                                     # reason mapped: match
    ("decline", "suspected_fraud", "GW_A", 0, "decline", ["rule:amount_limit"], None, 0, 0.9),
    ("error", "timeout", None, 0, "approve", [], "GW_A", 30, 0.9),              # legacy error
    ("approve", "approved", "GW_A", 30, "error", [], None, 0, None),            # candidate error
    ("decline", "x", "GW_A", 0, "approve", [], "GW_A", 30, 0.9),                # quarantined
    ("approve", "approved", "GW_A", 30, "decline", [], None, 0, 0.9),           # a2d expected (M2)
]
EXPECTED_CATEGORY = ["match", "approve_to_decline", "decline_to_approve", "review_change",
                     "route_change", "route_change", "fee_change", "match", "match",
                     "reason_change", "legacy_error", "candidate_error", "quarantined",
                     "approve_to_decline"]


def _inputs():
    n = len(ROWS)
    legacy = pa.table({"txn_id": [f"T{i}" for i in range(n)],
                       "legacy_decision": [r[0] for r in ROWS],
                       "legacy_reason": [r[1] for r in ROWS], "legacy_route": [r[2] for r in ROWS],
                       "legacy_fee_minor": pa.array([r[3] for r in ROWS], pa.int64()),
                       "legacy_latency_ms": pa.array([100] * n, pa.int32())})
    candidate = pa.table({"txn_id": [f"T{i}" for i in range(n)], "decision": [r[4] for r in ROWS],
                          "reason_codes": pa.array([r[5] for r in ROWS], pa.list_(pa.string())),
                          "route": [r[6] for r in ROWS],
                          "fee_minor": pa.array([r[7] for r in ROWS], pa.int64()),
                          "p_success": [r[8] for r in ROWS],
                          "latency_us": pa.array([1500] * n, pa.int64())})
    traffic = pa.table({"txn_id": [f"T{i}" for i in range(n)],
                        "ts": pa.array([1_790_000_000_000_000 + i for i in range(n)],
                                       pa.timestamp("us", tz="UTC")),
                        "amount_minor": pa.array([1000 * (i + 1) for i in range(n)], pa.int64()),
                        "currency": ["USD"] * n,
                        "merchant_id": ["M2" if i == n - 1 else "M1" for i in range(n)],
                        "merchant_country": ["US"] * n, "channel": ["ecom"] * n,
                        "mcc": ["5411"] * n, "customer_id": ["C1"] * n,
                        "is_fraud": [i == n - 1 for i in range(n)]})
    quarantine = pa.array([None] * 12 + ["missing mcc", None], pa.string())
    return legacy, candidate, traffic, quarantine


def test_every_row_gets_the_first_category_that_applies():
    """Each hand-made row lands in its one category; the counts conserve the rows."""
    legacy, candidate, traffic, quarantine = _inputs()
    diffs = classify(legacy, candidate, traffic, parse_diff_rules(RULES),
                     quarantine_reason=quarantine)
    assert diffs.schema == DIFF
    assert diffs["category"].to_pylist() == EXPECTED_CATEGORY
    counts = count_categories(diffs)
    assert set(counts) == set(CATEGORIES)
    assert check_conservation(len(ROWS), counts)
    assert not check_conservation(len(ROWS) + 1, counts)


def test_fields_expected_and_severity():
    """Changed fields are listed; cheaper routes and fraud declines at M2 are expected."""
    legacy, candidate, traffic, quarantine = _inputs()
    diffs = classify(legacy, candidate, traffic, parse_diff_rules(RULES),
                     quarantine_reason=quarantine).to_pylist()
    assert diffs[4]["fields"] == ["route", "fee_minor"] and diffs[4]["expected"]
    assert diffs[4]["severity"] == "none"
    assert diffs[5]["fields"] == ["route", "fee_minor"] and not diffs[5]["expected"]
    assert diffs[5]["severity"] == "low"
    assert diffs[1]["severity"] == "high" and not diffs[1]["expected"]
    assert diffs[13]["expected"] and diffs[13]["category"] == "approve_to_decline"
    assert diffs[2]["severity"] == "critical"
    assert diffs[12]["fields"] == [] and diffs[12]["quarantine_reason"] == "missing mcc"
    assert diffs[9]["fields"] == ["reason"] and diffs[9]["candidate_reason"] == "exceeds_amount_limit"
    assert diffs[0]["candidate_latency_ms"] == 1.5 and diffs[0]["legacy_latency_ms"] == 100.0


def test_ignored_fields_are_never_compared():
    """With route and fee ignored, route and fee changes become matches."""
    legacy, candidate, traffic, quarantine = _inputs()
    rules = parse_diff_rules('version = 1\n[ignore]\nfields = ["route", "fee_minor"]\n')
    diffs = classify(legacy, candidate, traffic, rules, quarantine_reason=quarantine)
    assert diffs["category"].to_pylist()[4:8] == ["match"] * 4


def test_candidate_error_column_wins_and_carries_the_reason():
    """A batch the candidate failed on is candidate_error with the exception text."""
    legacy, candidate, traffic, _ = _inputs()
    failed = candidate.append_column("error", pa.array(["RuntimeError: boom"] * len(ROWS)))
    diffs = classify(legacy, failed, traffic, parse_diff_rules("version = 1\n"))
    cats = diffs["category"].to_pylist()
    assert cats.count("candidate_error") == len(ROWS) - 1  # the legacy error row keeps its own
    assert diffs["candidate_reason"][0].as_py() == "RuntimeError: boom"


def test_money_at_stake_per_row():
    """A changed decision puts the amount at stake, a route/fee change the fee difference."""
    legacy, candidate, traffic, quarantine = _inputs()
    diffs = classify(legacy, candidate, traffic, parse_diff_rules(RULES),
                     quarantine_reason=quarantine)
    stake = at_stake_minor(diffs).tolist()
    assert stake[0] == 0 and stake[1] == 2000 and stake[2] == 3000
    assert stake[5] == 10 and stake[6] == 5 and stake[12] == 0 and stake[9] == 0
