"""The feed-health statistics agree with their textbook definitions (scipy's own tests)."""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from cutover.shadow import feed_tests as ft


def test_fisher_greater_is_the_one_sided_exact_test():
    """The hypergeometric tail equals scipy's one-sided Fisher exact test on the 2x2 table."""
    p = ft.fisher_greater(np.array([3]), np.array([300]), np.array([20]), np.array([150]))
    expected = sps.fisher_exact([[20, 130], [3, 297]], alternative="greater").pvalue
    assert abs(p[0] - expected) < 1e-12


def test_exact_tails_match_scipy_stats_across_sizes():
    """Hypergeometric and binomial upper tails equal scipy.stats' to 1e-9 relative, from a
    10-row to a 200,000-row table (new values, k = 0, and the extreme tail)."""
    a = np.array([0, 3, 0, 500, 12])
    n_ref = np.array([10, 300, 5_000, 200_000, 40])
    b = np.array([2, 20, 0, 900, 1])
    n_rep = np.array([5, 150, 2_000, 100_000, 20])
    expected = sps.hypergeom.sf(b - 1, n_ref + n_rep, a + b, n_rep)
    assert np.allclose(ft.fisher_greater(a, n_ref, b, n_rep), expected, rtol=1e-9, atol=1e-300)
    p0 = np.array([0.01, 0.2, 0.003, 0.5, 0.9])
    assert np.allclose(ft.binomial_greater(b, n_rep, p0), sps.binom.sf(b - 1, n_rep, p0),
                       rtol=1e-9, atol=1e-300)


def test_good_turing_rate_stays_above_zero_in_a_constant_field():
    """No singletons in 300 rows: 1/302, not zero; 6 singletons: 7/302."""
    rate = ft.good_turing_rate(np.array([0, 6]), np.array([300, 300]))
    assert np.allclose(rate, [1 / 302, 7 / 302])


def test_mann_whitney_from_histograms_matches_the_rank_test_on_rows():
    """AUC and p from binned counts equal scipy's Mann-Whitney U on the expanded rows."""
    rng = np.random.default_rng(3)
    ref = rng.integers(0, 20, 400)
    rep = rng.integers(2, 22, 150)
    h_ref = np.bincount(ref, minlength=22)[None, :]
    h_rep = np.bincount(rep, minlength=22)[None, :]
    auc, p = ft.mann_whitney(h_ref, h_rep)
    result = sps.mannwhitneyu(rep, ref, alternative="two-sided", method="asymptotic",
                              use_continuity=False)
    assert abs(auc[0] - result.statistic / (400 * 150)) < 1e-12
    assert abs(p[0] - result.pvalue) < 1e-9


def test_benjamini_hochberg_matches_the_step_up_rule():
    """q-values of a known list: p*m/rank, made monotone from the top."""
    q = ft.benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5]))
    assert np.allclose(q, [0.04, 0.16 / 3, 0.16 / 3, 0.5])


def test_g_test_finds_a_shifted_profile_and_not_a_copy():
    """Same profile twice: p = 1; a profile shifted by three buckets: p below 1e-10."""
    ref = np.array([[100, 50, 10, 10, 60, 120, 130, 120]])
    assert ft.g_test(ref, ref)[0] > 0.99
    assert ft.g_test(ref, np.roll(ref, 3, axis=1))[0] < 1e-10
