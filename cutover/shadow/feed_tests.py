"""The statistical tests feed health judges segments with, vectorised over every segment.

A row floor ("judge only segments over 500 rows") misses a 400-row merchant whose amounts fell a
hundredfold and still judges noise in big ones. Instead every segment gets a test that fits its
size: exact tests for counts (one-sided Fisher via the hypergeometric tail, binomial against a
Good-Turing rate for values never seen), a rank test (Mann-Whitney, from histograms) for
amounts, a G-test for hour-of-day profiles. The p-values of all tests of a report then go
through Benjamini-Hochberg, so random noise across hundreds of segments stays below the
false-discovery rate while a real break (p around 1e-30) clears it at any size.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from scipy import special

PSI_EPS: Final = 1e-4


def fisher_greater(a: np.ndarray, n_ref: np.ndarray, b: np.ndarray,
                   n_rep: np.ndarray) -> np.ndarray:
    """One-sided Fisher exact p of "the replay has more of this than the reference": b of n_rep
    against a of n_ref, as the hypergeometric upper tail of the 2x2 table, summed exactly in
    log space (scipy.special only: scipy.stats costs most of a second to import)."""
    out = np.empty(len(b))
    for i, (ai, na, bi, nb) in enumerate(zip(np.asarray(a, np.int64).tolist(),
                                             np.asarray(n_ref, np.int64).tolist(),
                                             np.asarray(b, np.int64).tolist(),
                                             np.asarray(n_rep, np.int64).tolist(), strict=True)):
        out[i] = _hypergeom_upper(int(bi), na + nb, ai + bi, nb)
    return np.clip(out, 0.0, 1.0)


def _ln_choose(n: np.ndarray | float, k: np.ndarray | float) -> np.ndarray:
    return special.gammaln(np.add(n, 1)) - special.gammaln(np.add(k, 1)) - \
        special.gammaln(np.subtract(n, k) + 1)


def _hypergeom_upper(x: int, total: int, successes: int, draws: int) -> float:
    """P(X >= x) for X hypergeometric (total, successes, draws)."""
    high = min(successes, draws)
    low = max(x, draws - (total - successes), 0)
    if low > high:
        return 0.0 if x > high else 1.0
    k = np.arange(low, high + 1, dtype=np.float64)
    terms = _ln_choose(successes, k) + _ln_choose(total - successes, draws - k) - \
        _ln_choose(total, draws)
    top = terms.max()
    return float(np.exp(top) * np.exp(terms - top).sum())


def good_turing_rate(singletons: np.ndarray, n_ref: np.ndarray) -> np.ndarray:
    """The chance that a row shows a value its segment never showed in the reference: values
    seen once estimate it (Good-Turing), plus one to stay above zero in constant fields."""
    return np.minimum((singletons + 1.0) / (n_ref + 2.0), 1.0)


def binomial_greater(k: np.ndarray, n: np.ndarray, p0: np.ndarray) -> np.ndarray:
    """Exact binomial p of at least ``k`` of ``n`` at rate ``p0``."""
    k, n, p0 = np.asarray(k, np.int64), np.asarray(n, np.int64), np.asarray(p0, np.float64)
    tail = special.bdtrc(np.maximum(k - 1, 0), n, p0)
    return np.clip(np.where(k <= 0, 1.0, tail), 0.0, 1.0)


def mann_whitney(ref: np.ndarray, rep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(AUC, two-sided p) of the rank test between two histograms over the same ordered bins,
    one pair per row; ties (same bin) count one half, with the tie correction of the variance."""
    ref, rep = ref.astype(np.float64), rep.astype(np.float64)
    n1, n2 = ref.sum(axis=1), rep.sum(axis=1)
    below = np.cumsum(ref, axis=1) - ref
    u = (rep * (below + 0.5 * ref)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = np.where(n1 * n2 > 0, u / (n1 * n2), 0.5)
        t = ref + rep
        n = n1 + n2
        ties = (t ** 3 - t).sum(axis=1)
        var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1)))
        z = np.where(var > 0, (u - n1 * n2 / 2.0) / np.sqrt(var), 0.0)
    return auc, np.clip(2 * special.ndtr(-np.abs(z)), 0.0, 1.0)


def g_test(ref: np.ndarray, rep: np.ndarray) -> np.ndarray:
    """p of the G-test of homogeneity of two count rows over the same bins, one pair per row."""
    ref, rep = ref.astype(np.float64), rep.astype(np.float64)
    table = np.stack([ref, rep], axis=1)  # (segments, 2, bins)
    total = table.sum(axis=(1, 2), keepdims=True)
    expected = table.sum(axis=2, keepdims=True) * table.sum(axis=1, keepdims=True) / \
        np.maximum(total, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = 2 * np.where(table > 0, table * np.log(table / expected), 0.0).sum(axis=(1, 2))
    df = np.maximum((table.sum(axis=1) > 0).sum(axis=1) - 1, 1)
    return np.clip(special.chdtrc(df, g), 0.0, 1.0)


def psi_rows(ref: np.ndarray, rep: np.ndarray) -> np.ndarray:
    """Population stability index per row of two count matrices over the same bins."""
    p = np.maximum(ref / np.maximum(ref.sum(axis=1, keepdims=True), 1), PSI_EPS)
    q = np.maximum(rep / np.maximum(rep.sum(axis=1, keepdims=True), 1), PSI_EPS)
    return ((q - p) * np.log(q / p)).sum(axis=1)


def equal_mass_bins(ref: np.ndarray, rep: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge fine bins of one segment into about ``bins`` bins of equal reference mass, so PSI
    is not driven by empty tails."""
    total = ref.sum()
    if total == 0:
        return ref[None, :], rep[None, :]
    cut = np.searchsorted(np.cumsum(ref), np.arange(1, bins) * total / bins, side="left")
    edges = np.unique(np.concatenate([[0], cut + 1]))
    edges = edges[edges < len(ref)]
    return np.add.reduceat(ref, edges)[None, :], np.add.reduceat(rep, edges)[None, :]


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values) of all tests together."""
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out
