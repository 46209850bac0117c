"""Unit tests of plan validation and the cohort splitter (uniform, sticky, monotonic)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from cutover.errors import ConfigError
from cutover.migrate import cohort
from cutover.migrate.plan import export_rule, load_plan, parse_plan
from tests.migrate_support import DEMO_PLAN, write_plan

#: Chi-square critical value for 1 degree of freedom at alpha = 0.001: a fair splitter fails
#: this test once in a thousand seeds, and the ids are fixed, so it is deterministic.
CHI2_CRIT_1DF_001 = 10.828
#: Critical value for 99 degrees of freedom at alpha = 0.001 (bucket-range uniformity).
CHI2_CRIT_99DF_001 = 148.23
IDS = [f"M{i:07d}" for i in range(100_000)]


def _buckets(salt: str = "s1") -> np.ndarray:
    return np.array([cohort.bucket_of(salt, key) for key in IDS])


def test_demo_plan_loads_with_six_phases():
    """The demo plan validates: six phases, percents 0..100, canary-1 needs 1 approval, 30m bake."""
    plan = load_plan(DEMO_PLAN)
    assert [p.name for p in plan.phases] == ["shadow", "canary-1", "canary-5", "ramp-25",
                                             "ramp-50", "full"]
    assert [p.cohort.threshold for p in plan.phases] == [0, 100, 500, 2500, 5000, 10000]
    canary = plan.phase("canary-1")
    assert (canary.approvals, canary.bake_s, canary.gate.min_sample) == (1, 1800, 20000)


#: A gate that can fail (a sample floor and one check), for plans whose test is elsewhere.
GATE = "gate = { min_sample = 1, max_rate = { mismatch = 1.0 } }"


@pytest.mark.parametrize(("phase_body", "message"), [
    ('percent = 150\n' + GATE, 'x.toml: phase "p2": percent must be between 0 and 100, got 150'),
    ('percent = 50\nbake = "2 weeks"\n' + GATE, 'x.toml: phase "p2": bake must be a duration'),
    ('percent = 50', 'x.toml: phase "p2": gate is missing'),
    ('percent = 50\ngate = { max_rate = { nope = 0.1 } }',
     "x.toml: phase \"p2\": gate.max_rate: unknown category 'nope'"),
    ('percent = 50\ngate = { max_false_decline = ["5.001 USD"] }',
     'x.toml: phase "p2": gate.max_false_decline: \'5.001 USD\' has 3 decimals but USD has 2'),
    ('percent = 50\ngate = { min_sampel = 3 }',
     "x.toml: phase \"p2\": unknown gate field 'min_sampel'"),
    ('percent = 5\n' + GATE, 'x.toml: phase "p2": percent must not decrease'),
    ('percent = 50\ncountries = ["US"]\n' + GATE,
     'x.toml: phase "p2": countries must keep every entry of "p1"'),
])
def test_bad_plan_names_file_phase_and_field(tmp_path, phase_body, message):
    """Each invalid plan is refused with a message naming the file, the phase and the field."""
    body = ('name = "x"\nsalt = "s"\n[[phases]]\nname = "p1"\npercent = 10\n'
            f'[[phases]]\nname = "p2"\n{phase_body}\n')
    path = write_plan(tmp_path / "x.toml", body)
    with pytest.raises(ConfigError) as info:
        load_plan(path)
    assert str(info.value).replace(str(tmp_path) + "/", "").startswith(message)


@pytest.mark.parametrize("percent", [1, 5, 25, 50])
def test_splitter_share_is_uniform(percent):
    """Chi-square on candidate/legacy counts over 100,000 ids is under the critical value."""
    inside = (_buckets() < percent * 100).sum()
    expected = np.array([len(IDS) * percent / 100, len(IDS) * (100 - percent) / 100])
    observed = np.array([inside, len(IDS) - inside])
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < CHI2_CRIT_1DF_001, (percent, inside, chi2)


def test_buckets_are_uniform_over_100_ranges():
    """Chi-square of bucket counts over 100 equal ranges (99 df) is under the critical value."""
    counts = np.bincount(_buckets() // 100, minlength=100)
    expected = len(IDS) / 100
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < CHI2_CRIT_99DF_001, chi2


def test_monotonic_and_sticky_over_100k_ids():
    """Every id inside 1% stays inside 5%, 25%, 50%, 100%; the same ids twice agree."""
    plan = load_plan(DEMO_PLAN)
    batch = pa.RecordBatch.from_pydict({"merchant_id": IDS, "customer_id": IDS,
                                        "merchant_country": ["US"] * len(IDS),
                                        "channel": ["ecom"] * len(IDS)})
    previous = np.zeros(len(IDS), dtype=bool)
    for phase in plan.phases:
        now = np.asarray(plan.assign_batch(batch, phase.name).to_pylist()) == "candidate"
        assert not (previous & ~now).any(), f"an id left the candidate entering {phase.name}"
        previous = now
    assert previous.all()
    again = plan.assign_batch(batch, "canary-5").to_pylist()
    assert again == plan.assign_batch(batch, "canary-5").to_pylist()


def test_batch_agrees_with_single_and_allow_lists():
    """assign_batch equals assign row by row, allow-lists included, and nulls go to legacy."""
    body = ('name = "x"\nsalt = "s"\n[[phases]]\nname = "p1"\npercent = 50\n'
            'countries = ["US"]\nchannels = ["ecom", "pos"]\n')
    plan = parse_plan(__import__("tomllib").loads(body), "x")
    rows = [{"merchant_id": f"M{i}", "merchant_country": ("US", "DE")[i % 2],
             "channel": ("ecom", "pos", "moto")[i % 3]} for i in range(3000)]
    rows.append({"merchant_id": None, "merchant_country": "US", "channel": "ecom"})
    batch = pa.RecordBatch.from_pylist(rows)
    vector = plan.assign_batch(batch, "p1").to_pylist()
    assert vector == [plan.assign(r, "p1") for r in rows]
    assert vector.count("candidate") > 0 and vector[-1] == "legacy"
    assert all(v == "legacy" for r, v in zip(rows, vector, strict=True)
               if r["merchant_country"] == "DE" or r["channel"] == "moto")


def test_export_vectors_reproduce_with_hashlib():
    """The exported rule's documented recipe recomputes every test vector's bucket."""
    import hashlib

    rule = export_rule(load_plan(DEMO_PLAN), "canary-5")
    assert (rule["threshold"], rule["hash"]["buckets"]) == (500, 10000)
    assert rule["salt"] == "demo-2026-11"
    for vector in rule["test_vectors"]:
        digest = hashlib.sha256(f"{rule['salt']}:{vector['key']}".encode()).digest()
        assert int.from_bytes(digest[:8], "big") % 10000 == vector["bucket"]
        assert vector["in_bucket_range"] == (vector["bucket"] < 500)


def test_customer_sticky_key_routes_a_customer_the_same_way_at_every_merchant():
    """With sticky_key = "customer_id" the bucket follows the customer, not the merchant: one
    customer lands on one side at all 50 merchants, and about 25% of customers are inside."""
    body = ('name = "x"\nsalt = "s"\nsticky_key = "customer_id"\n[[phases]]\nname = "p1"\n'
            'percent = 25\n')
    plan = parse_plan(__import__("tomllib").loads(body), "x")
    customers = [f"C{i:06d}" for i in range(2000)]
    sides = {c: {plan.assign({"merchant_id": f"M{m}", "customer_id": c}, "p1")
                 for m in range(50)} for c in customers[:40]}
    assert all(len(s) == 1 for s in sides.values())
    inside = sum(plan.assign({"customer_id": c}, "p1") == "candidate" for c in customers)
    assert 400 < inside < 600
    assert plan.assign({"merchant_id": "M1"}, "p1") == "legacy"
