"""The report's statistics on plain numbers: Wilson bounds, PSI, latency percentiles."""

import numpy as np
import pyarrow as pa
import pytest

from cutover import stats
from cutover.migrate.stats import wilson as gate_wilson
from cutover.shadow import report
from cutover.shadow.drift import psi_from_counts, psi_numeric
from cutover.shadow.report import LATENCY_EDGES_MS, _percentiles, _rates


def test_report_and_gates_share_one_wilson():
    """One implementation: the report's and the gates' wilson are the same function object."""
    assert report.wilson is stats.wilson and gate_wilson is stats.wilson


@pytest.mark.parametrize(("k", "n"), [(0, 100), (20, 1000), (999, 1000), (0, 0)])
def test_report_rates_carry_the_gates_interval(k, n):
    """The bounds report.json prints are exactly the ones a gate recomputes from k and n."""
    by_category = dict.fromkeys(report.CATEGORIES, 0) | {"route_change": k, "match": n - k}
    rate = _rates(by_category, {}, n)["route_change"]
    lo, hi = gate_wilson(k, n, 0.95)
    assert (rate["k"], rate["n"]) == (k, n)
    assert rate["lo"] == round(lo, 8) and rate["hi"] == round(hi, 8)


def test_rates_count_only_unexpected_changes():
    """k = category count minus the expected ones; mismatch sums the mismatch categories."""
    by_category = {"quarantined": 3, "legacy_error": 1, "candidate_error": 2,
                   "approve_to_decline": 10, "decline_to_approve": 0, "review_change": 0,
                   "route_change": 50, "fee_change": 4, "reason_change": 0, "match": 930}
    rates = _rates(by_category, {"route_change": 45}, 1000)
    assert rates["route_change"]["k"] == 5 and rates["approve_to_decline"]["k"] == 10
    assert rates["mismatch"]["k"] == 1 + 2 + 10 + 5 + 4
    assert rates["approve_to_decline"]["lo"] < 0.01 < rates["approve_to_decline"]["hi"]


def test_psi_is_zero_for_equal_and_large_for_shifted():
    """PSI of a distribution with itself is 0; a 100x shift of amounts is far above 0.25."""
    rng = np.random.default_rng(0)
    edges = np.linspace(0.0, 12.0, 241)
    amounts = np.log10(rng.lognormal(8, 1, 20_000))
    ref = np.histogram(amounts, edges)[0]
    assert psi_numeric(ref, ref) == pytest.approx(0.0)
    shifted = np.histogram(amounts - 2.0, edges)[0]
    assert psi_numeric(ref, shifted) > 1.0
    assert psi_from_counts(np.array([50, 50]), np.array([90, 10])) > 0.25


def test_latency_percentiles_from_the_histogram():
    """p50/p95/p99 land within one log bin (under 1.2%) of the exact values."""
    values = np.random.default_rng(1).lognormal(3, 0.5, 50_000)
    hist = np.bincount(np.searchsorted(LATENCY_EDGES_MS, values), minlength=len(LATENCY_EDGES_MS) + 1)
    got = _percentiles(hist)
    for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
        exact = np.percentile(values, q)
        assert exact <= got[name] <= exact * 1.012


def test_new_values_and_null_spikes_are_reported():
    """A country never seen in the reference and device hashes going missing both show."""
    import pyarrow.compute as pc

    from cutover.shadow.drift import COLUMNS, Window, compare
    from tests.replay_support import make_traffic
    reference, replay = Window(), Window()
    reference.add(make_traffic(2_000, seed=1).select(list(COLUMNS)))
    later = make_traffic(2_000, seed=2).select(list(COLUMNS))
    later = later.set_column(later.column_names.index("device_hash"), "device_hash",
                             pc.if_else(pc.equal(later["channel"], "ecom"),
                                        pa.nulls(2_000, pa.string()), later["device_hash"]))
    later = later.set_column(later.column_names.index("merchant_country"), "merchant_country",
                             pc.if_else(pc.equal(later["mcc"], "4829"), "XX",
                                        later["merchant_country"]))
    replay.add(later)
    drift = compare(reference, replay)
    assert drift["new_values"] == {"merchant_country": ["XX"]}
    spikes = {s["column"]: s for s in drift["null_spikes"]}
    assert set(spikes) == {"device_hash"}
    assert spikes["device_hash"]["replay_null_rate"] > 0.3 > 0.15 > spikes["device_hash"][
        "train_null_rate"]
