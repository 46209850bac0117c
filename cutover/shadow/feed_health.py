"""Feed health: which input field changed, in which segment, how, and since when.

Compares the replay window's ``Profile`` with the reference window's (the model's training
window, a baseline before the replay, or the head of the replay) for every segment and field:
values never seen before, shares that grew, formats (null, empty, alphabet, length, the clock's
precision), amounts, hours of day, a merchant's inter-arrival times, and the quarantine rate.
Each test is exact or rank-based for its size (``feed_tests``); all p-values together go
through Benjamini-Hochberg. A finding is reported when its q-value is below ``REPORT_FDR`` and
its effect is large enough to matter (a share that moved, a PSI that says "moved", a rate);
``first_seen`` comes from a change-point search over the affected segment's rows
(``feed_changepoint``). The gate judges the findings again at the policy's FDR level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from cutover.shadow import feed_tests as ft
from cutover.shadow.feed_profile import (
    ALL,
    AMOUNT_BINS,
    AMOUNT_DECADES,
    GAP_LOG_MIN,
    HOURS_PER_BUCKET,
    NEW_ONLY,
    PAIRS,
    Coder,
    Counts,
    Profile,
)

REPORT_FDR: Final = 0.01
#: Effects below these are not findings however significant: a 3-point share move in a
#: 50,000-row segment is real and harmless.
NEW_SHARE_MIN: Final = 0.005
SHARE_SHIFT_MIN: Final = 0.10
ROWS_MIN: Final = 5
SEGMENT_REF_MIN: Final = 20
AMOUNT_PSI_MIN: Final = 0.2
AMOUNT_AUC_SHIFT_MIN: Final = 0.10
HOUR_PSI_MIN: Final = 0.1
GAP_PSI_MIN: Final = 0.5
QUARANTINE_RATE_MIN: Final = 0.01
QUARANTINE_BASE_RATE: Final = 0.001
PSI_BINS: Final = 10
#: A distribution finding needs this share of the segment's rows in the bins it over-fills.
AFFECTED_SHARE_MIN: Final = 0.05
#: A test whose p is above this cannot pass Benjamini-Hochberg at REPORT_FDR over any report
#: with more than one test; it is not described (saves work on thousands of segments).
SCREEN_P: Final = REPORT_FDR
#: A segment whose volume moved by more than this factor (against the windows' overall ratio)
#: changed its traffic mix (an attack, a promotion, an outage), which moves shares and
#: profiles for real; its shares and distributions are not judged, its new values still are.
VOLUME_FACTOR_MAX: Final = 1.5
VOLUME_EXPECTED_MIN: Final = 20.0
NEW_ONLY_REF_MIN: Final = 100
FINDINGS_MAX: Final = 200
NEW_VALUES_SHOWN: Final = 3
NULL_FORMATS: Final = ("null", "empty")


@dataclass
class Finding:
    """One judged change; the private fields say which rows show it (for the change point)."""

    field: str
    dimension: str
    segment: str
    metric: str
    before: str
    after: str
    effect: float
    p: float
    rows_reference: int
    rows_replay: int
    rows_affected: int
    q: float = 1.0
    first_seen: str | None = None
    seg_code: int = 0
    codes: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The report.json row."""
        return {"field": self.field, "dimension": self.dimension, "segment": self.segment,
                "metric": self.metric, "before": self.before, "after": self.after,
                "effect": round(float(self.effect), 6), "p": float(f"{self.p:.3g}"),
                "q": float(f"{self.q:.3g}"), "rows_reference": self.rows_reference,
                "rows_replay": self.rows_replay, "rows_affected": self.rows_affected,
                "first_seen": self.first_seen}


def segment_label(coder: Coder, dim: str, code: int) -> str:
    """The readable value of a segment code ("M00042", "FR×ecom", "all")."""
    if dim == ALL:
        return ALL
    if dim in PAIRS:
        key = int(coder.pairs[dim].values[code])
        left, right = PAIRS[dim]
        return f"{_text(coder, left, key >> 31)}×{_text(coder, right, key & ((1 << 31) - 1))}"
    return _text(coder, dim, code)


def _text(coder: Coder, name: str, code: int) -> str:
    value = coder.books[name].values[code]
    return "<null>" if value is None else str(value)


def _aligned(ref: Counts, rep: Counts) -> tuple[np.ndarray, np.ndarray]:
    rows = max(ref.matrix.shape[0], rep.matrix.shape[0])
    width = max(ref.matrix.shape[1], rep.matrix.shape[1])
    out = []
    for m in (ref.matrix, rep.matrix):
        grown = np.zeros((rows, width), np.int64)
        grown[:m.shape[0], :m.shape[1]] = m
        out.append(grown)
    return out[0], out[1]


def volume_steady(n_ref: np.ndarray, n_rep: np.ndarray, ratio: float) -> np.ndarray:
    """Segments whose replay volume is within VOLUME_FACTOR_MAX of what the reference predicts
    (small segments, where Poisson noise alone moves volume that much, count as steady)."""
    expected = n_ref * ratio
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(expected > 0, n_rep / np.maximum(expected, 1e-9), np.inf)
    return (expected < VOLUME_EXPECTED_MIN) | ((factor <= VOLUME_FACTOR_MAX)
                                               & (factor >= 1 / VOLUME_FACTOR_MAX))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _share_findings(ref_c: Counts, rep_c: Counts, dim: str, name: str, labels: list[Any],
                    coder: Coder, kind: str, ratio: float) -> list[Finding]:
    """Per segment, the strongest of: rows with values (or formats) the segment never showed,
    together, against a Good-Turing rate and a Fisher test; a known value whose share grew
    (volume-steady segments only), against Fisher."""
    ref, rep = _aligned(ref_c, rep_c)
    n_ref, n_rep = ref.sum(axis=1), rep.sum(axis=1)
    segs = np.flatnonzero((n_ref >= SEGMENT_REF_MIN) & (n_rep > 0))
    if not len(segs):
        return []
    a, b = ref[segs], rep[segs]
    na, nb = n_ref[segs], n_rep[segs]
    out = _new_values(a, b, na, nb, segs, single=name in NEW_ONLY.get(dim, ()))
    steady = volume_steady(n_ref, n_rep, ratio)[segs]
    if kind == "format":
        # A known format growing is judged only for null and empty (a null spike): the share
        # of "ecom" (a:4) in a corridor grows with a cross-border spike, for real.
        nulls = np.array([str(v) in NULL_FORMATS for v in labels] + [False] * max(
            0, a.shape[1] - len(labels)), bool)[:a.shape[1]]
        out += _grown_values(a * nulls, b * nulls, na, nb, segs, steady)
    elif name in NEW_ONLY.get(dim, ()):
        # Judged for new values in steady segments only: an attack brings new card countries.
        judged = steady & (na >= NEW_ONLY_REF_MIN)
        out = [o for o in out if judged[np.searchsorted(segs, o[2])]]
    else:
        out += _grown_values(a, b, na, nb, segs, steady)
    best: dict[int, tuple[float, str, int, list[int]]] = {}
    for p, metric, s, cs in out:
        if s not in best or p < best[s][0]:
            best[s] = (p, metric, s, cs)
    return [_share_finding(ref[s], rep[s], labels, coder, dim, name, kind, p, metric, s, cs)
            for p, metric, s, cs in best.values()]


def _new_values(a: np.ndarray, b: np.ndarray, na: np.ndarray, nb: np.ndarray,
                segs: np.ndarray, single: bool = False) -> list[tuple[float, str, int, list[int]]]:
    """Rows of values the segment never showed, all together (or only the most frequent one
    when ``single``: a sentinel is one value, travel brings many)."""
    new = (a == 0) & (b > 0)
    if single:
        top = np.argmax(np.where(new, b, 0), axis=1)
        new = new & (np.arange(new.shape[1])[None, :] == top[:, None])
    k = np.where(new, b, 0).sum(axis=1)
    rows = np.flatnonzero((k >= ROWS_MIN) & (k / nb >= NEW_SHARE_MIN))
    if not len(rows):
        return []
    fisher = ft.fisher_greater(np.zeros(len(rows)), na[rows], k[rows], nb[rows])
    singletons = (a[rows] == 1).sum(axis=1)
    gt = ft.binomial_greater(k[rows], nb[rows], ft.good_turing_rate(singletons, na[rows]))
    p = np.maximum(fisher, gt)
    return [(float(pi), "new_value", int(segs[r]), np.flatnonzero(new[r]).tolist())
            for r, pi in zip(rows.tolist(), p.tolist(), strict=True)]


def _grown_values(a: np.ndarray, b: np.ndarray, na: np.ndarray, nb: np.ndarray, segs: np.ndarray,
                  steady: np.ndarray) -> list[tuple[float, str, int, list[int]]]:
    grown = (a > 0) & (b >= ROWS_MIN) & (b / nb[:, None] - a / na[:, None] >= SHARE_SHIFT_MIN) \
        & steady[:, None]
    rows, cols = np.nonzero(grown)
    if not len(rows):
        return []
    p = ft.fisher_greater(a[rows, cols], na[rows], b[rows, cols], nb[rows])
    return [(float(pi), "share_shift", int(segs[r]), [int(c)])
            for r, c, pi in zip(rows.tolist(), cols.tolist(), p.tolist(), strict=True)]


def _share_finding(ref: np.ndarray, rep: np.ndarray, labels: list[Any], coder: Coder, dim: str,
                   name: str, kind: str, p: float, metric: str, s: int,
                   codes: list[int]) -> Finding:
    na, nb = int(ref.sum()), int(rep.sum())
    codes = sorted(codes, key=lambda c: -rep[c])
    shown = [str(labels[c]) if c < len(labels) else "?" for c in codes[:NEW_VALUES_SHOWN]]
    text = ", ".join(shown) + (f" (+{len(codes) - len(shown)} more)" if len(codes) > len(shown)
                               else "")
    k_ref, k_rep = int(ref[codes].sum()), int(rep[codes].sum())
    if kind == "format":
        metric = "null_rate" if set(shown) <= set(NULL_FORMATS) else "format"
    return Finding(name, dim, segment_label(coder, dim, s), metric, f"{text}: {_pct(k_ref / na)}",
                   f"{text}: {_pct(k_rep / nb)}", k_rep / nb - k_ref / na, p, na, nb, k_rep,
                   seg_code=s, codes=tuple(codes), extra={"kind": kind})


def _bin_centre_amount(b: float) -> str:
    return f"{10 ** ((b + 0.5) * AMOUNT_DECADES / AMOUNT_BINS):,.0f}"


def _median_bin(h: np.ndarray) -> int:
    c = np.cumsum(h)
    return int(np.searchsorted(c, c[-1] / 2.0)) if c[-1] else 0


def _distribution_findings(ref_c: Counts, rep_c: Counts, dim: str, name: str, coder: Coder,
                           metric: str, ratio: float) -> list[Finding]:
    """Per volume-steady segment: PSI over equal-reference-mass bins plus a rank test (amounts,
    gaps) or a G-test (hours); the bins the replay over-fills say which rows changed."""
    ref, rep = _aligned(ref_c, rep_c)
    n_ref, n_rep = ref.sum(axis=1), rep.sum(axis=1)
    segs = np.flatnonzero((n_ref >= SEGMENT_REF_MIN) & (n_rep >= ROWS_MIN)
                          & volume_steady(n_ref, n_rep, ratio))
    if not len(segs):
        return []
    if metric == "hour_profile":
        # Hours keep their buckets: merging by reference mass would hide a shifted clock.
        psi = ft.psi_rows(ref[segs], rep[segs])
        p, effect, ok = ft.g_test(ref[segs], rep[segs]), psi, psi >= HOUR_PSI_MIN
    else:
        auc, p = ft.mann_whitney(ref[segs], rep[segs])
        ok = np.abs(auc - 0.5) >= AMOUNT_AUC_SHIFT_MIN
        # PSI over equal-mass bins is a loop per segment: only where the rank test moved.
        effect = np.zeros(len(segs))
        for i in np.flatnonzero(ok & (p < SCREEN_P)):
            effect[i] = ft.psi_rows(*ft.equal_mass_bins(ref[segs[i]], rep[segs[i]], PSI_BINS))[0]
        floor = AMOUNT_PSI_MIN if metric == "amount_shift" else GAP_PSI_MIN
        ok &= effect >= floor
    ok &= p < SCREEN_P
    out = []
    for i in np.flatnonzero(ok):
        s = int(segs[i])
        over = np.flatnonzero(rep[s] / max(n_rep[s], 1) > 2 * ref[s] / max(n_ref[s], 1))
        if rep[s][over].sum() < AFFECTED_SHARE_MIN * n_rep[s]:
            continue  # a few odd rows (a card-testing run) move a rank test, not a feed
        before, after = _describe(metric, ref[s], rep[s])
        out.append(Finding(name, dim, segment_label(coder, dim, s), metric, before, after,
                           float(effect[i]), float(p[i]), int(n_ref[s]), int(n_rep[s]),
                           int(rep[s][over].sum()), seg_code=s,
                           codes=tuple(int(c) for c in over), extra={"kind": metric}))
    return out


def _describe(metric: str, ref: np.ndarray, rep: np.ndarray) -> tuple[str, str]:
    if metric == "amount_shift":
        return (f"median ~{_bin_centre_amount(_median_bin(ref))} minor",
                f"median ~{_bin_centre_amount(_median_bin(rep))} minor")
    if metric == "hour_profile":
        def peak(h: np.ndarray) -> str:
            start = int(np.argmax(h)) * HOURS_PER_BUCKET
            return f"busiest {start:02d}-{start + HOURS_PER_BUCKET:02d}h UTC " \
                   f"({_pct(h.max() / max(h.sum(), 1))})"
        return peak(ref), peak(rep)

    def gap(h: np.ndarray) -> str:
        m = _median_bin(h)
        zero = h[0] / max(h.sum(), 1)
        seconds = 0.0 if m == 0 else 10 ** ((m - 1) / 4 + GAP_LOG_MIN)
        return f"median gap ~{seconds:,.3g}s, {_pct(zero)} at the same instant"
    return gap(ref), gap(rep)


def _rate_matched(ref_c: Counts, rep_c: Counts, reference: Profile, replay: Profile) -> Counts:
    """The reference gap histograms moved by each segment's change of rate (rows per hour):
    twice the rows means half the gaps, which is traffic, not a feed change. What stays is the
    shape: gaps of zero, timestamps bunched into batches, a clock that stopped."""
    ref, rep = _aligned(ref_c, rep_c)
    per_ref = ref.sum(axis=1) / reference.span_us
    per_rep = rep.sum(axis=1) / replay.span_us
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where((per_ref > 0) & (per_rep > 0),
                         np.round(-4 * np.log10(per_rep / per_ref)), 0).astype(np.int64)
    moved = np.zeros_like(ref)
    moved[:, 0] = ref[:, 0]
    width = ref.shape[1]
    for s in np.flatnonzero(ref.sum(axis=1)):
        target = np.clip(np.arange(1, width) + shift[s], 1, width - 1)
        np.add.at(moved[s], target, ref[s, 1:])
    out = Counts(width)
    out.matrix = moved
    return out


def _quarantine_findings(ref_c: Counts, rep_c: Counts, dim: str, coder: Coder) -> list[Finding]:
    """Segments where replay refused more rows than the reference's rate allows (exact
    binomial test)."""
    ref, rep = _aligned(ref_c, rep_c)
    n_ref, n_rep = ref.sum(axis=1), rep.sum(axis=1)
    k = rep[:, 1]
    rate_ref = np.where(n_ref > 0, ref[:, 1] / np.maximum(n_ref, 1), 0.0)
    base = np.maximum(rate_ref, QUARANTINE_BASE_RATE)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n_rep > 0, k / np.maximum(n_rep, 1), 0.0)
    segs = np.flatnonzero((k >= 3) & (rate - rate_ref >= QUARANTINE_RATE_MIN))
    if not len(segs):
        return []
    p = ft.binomial_greater(k[segs], n_rep[segs], base[segs])
    return [Finding("quarantine", dim, segment_label(coder, dim, int(s)), "quarantine_rate",
                    _pct(rate_ref[s]), _pct(rate[s]), float(rate[s] - rate_ref[s]), float(pi),
                    int(n_ref[s]), int(n_rep[s]), int(k[s]), seg_code=int(s), codes=(1,),
                    extra={"kind": "quarantine"})
            for s, pi in zip(segs.tolist(), p.tolist(), strict=True)]


def find(reference: Profile, replay: Profile) -> list[Finding]:
    """Every finding of the replay window against the reference, q-values set, strongest
    first (at most FINDINGS_MAX)."""
    coder = replay.coder
    ratio = replay.rows / max(reference.rows, 1)
    found: list[Finding] = []
    for (dim, name), counts in replay.values.items():
        labels = coder.books[name].values
        found += _share_findings(reference.values[(dim, name)], counts, dim, name, labels,
                                 coder, "value", ratio)
    ref_formats, rep_formats = reference.formats, replay.formats
    for (dim, name), counts in rep_formats.items():
        found += _share_findings(ref_formats[(dim, name)], counts, dim, name,
                                 coder.formats[name].values, coder, "format", ratio)
    for dim, counts in replay.amount.items():
        found += _distribution_findings(reference.amount[dim], counts, dim, "amount_minor",
                                        coder, "amount_shift", ratio)
    for dim, counts in replay.hour.items():
        found += _distribution_findings(reference.hour[dim], counts, dim, "ts", coder,
                                        "hour_profile", ratio)
    for dim, counts in replay.gap.items():
        found += _distribution_findings(_rate_matched(reference.gap[dim], counts, reference,
                                                      replay), counts, dim, "ts", coder,
                                        "inter_arrival", ratio)
    for dim, counts in replay.quarantine.items():
        found += _quarantine_findings(reference.quarantine[dim], counts, dim, coder)
    return _adjusted(found, _tests_run(reference, replay, ref_formats, rep_formats))


def _tests_run(reference: Profile, replay: Profile, ref_formats: dict[Any, Counts],
               rep_formats: dict[Any, Counts]) -> int:
    """How many tests the report ran in all (every judged segment of every metric): the m of
    Benjamini-Hochberg, so screening out small effects first does not loosen the control."""
    m = 0
    pairs = [*((reference.values[k], v) for k, v in replay.values.items()),
             *((ref_formats[k], v) for k, v in rep_formats.items()),
             *((reference.amount[k], v) for k, v in replay.amount.items()),
             *((reference.hour[k], v) for k, v in replay.hour.items()),
             *((reference.gap[k], v) for k, v in replay.gap.items()),
             *((reference.quarantine[k], v) for k, v in replay.quarantine.items())]
    for ref_c, rep_c in pairs:
        ref, rep = _aligned(ref_c, rep_c)
        m += int(((ref.sum(axis=1) >= SEGMENT_REF_MIN) & (rep.sum(axis=1) > 0)).sum())
    return max(m, 1)


def _adjusted(found: list[Finding], tests: int) -> list[Finding]:
    """Benjamini-Hochberg over all ``tests`` (untested ones count as p = 1), keep q <= REPORT_FDR."""
    if not found:
        return []
    p = np.array([f.p for f in found])
    padded = np.concatenate([p, np.ones(max(tests - len(p), 0))])
    q = ft.benjamini_hochberg(padded)[:len(p)]
    for f, qi in zip(found, q.tolist(), strict=True):
        f.q = qi
    kept = [f for f in found if f.q <= REPORT_FDR]
    kept.sort(key=lambda f: (f.q, -f.rows_affected, f.dimension, f.segment, f.field))
    return kept[:FINDINGS_MAX]
