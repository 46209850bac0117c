"""The stack's rules gate, routing (residency, exact fees) and retry plans, on plain data."""

import numpy as np
import pyarrow as pa
import pytest

from cutover.errors import ConfigError
from cutover.stack import metrics
from cutover.stack.reasons import load_reasons, top_features
from cutover.stack.retries import retry_plans
from cutover.stack.routing import SuccessTable, choose_routes, fee_minor, fit_success, load_gateways
from cutover.stack.rules import RULE_ORDER, Rules, apply_rules, load_rules

RULES = Rules(amount_max_minor={"USD": 1_000}, card_countries=frozenset({"NG"}),
              card_bins=frozenset({"999999"}), card_n_1h_max=3, review_at=0.5, decline_at=0.9)


def _batch(**cols):
    n = len(next(iter(cols.values())))
    base = {"amount_minor": [10] * n, "currency": ["USD"] * n, "card_country": ["US"] * n,
            "card_bin": ["400100"] * n}
    base.update(cols)
    return pa.table({k: pa.array(v, pa.int64() if k == "amount_minor" else pa.string())
                     for k, v in base.items()})


def test_rules_fire_in_order_and_the_first_decides():
    """Each row trips the rules from one position on; the earliest firing rule names the reason."""
    batch = _batch(amount_minor=[5_000, 5_000, 10, 10, 10, 10, 10, 10, 10],
                   card_country=["NG", "US", "NG", "US", "US", "US", "US", "US", "US"],
                   card_bin=["999999", "400100", "999999", "999999", "400100", "400100", "400100",
                             "400100", "400100"])
    n_1h = np.array([9, 0, 9, 9, 9, 0, 0, 0, 0])
    has_route = np.array([True, True, True, True, True, False, True, True, True])
    score = np.array([0.99, 0.0, 0.99, 0.99, 0.99, 0.99, 0.95, 0.6, 0.1])
    decision, rule = apply_rules(RULES, batch, n_1h, has_route, score, 0.5, 0.9)
    assert rule.tolist() == ["amount_limit", "amount_limit", "blocked_country", "blocked_bin",
                             "velocity_cap_1h", "no_route", "score_decline", "score_review", ""]
    assert decision.tolist() == ["decline"] * 7 + ["review", "approve"]
    assert RULE_ORDER.index("amount_limit") < RULE_ORDER.index("score_decline")


def test_a_currency_without_a_limit_is_not_capped():
    """A currency missing from [limits] has no hard cap (and is not declined by it)."""
    decision, rule = apply_rules(RULES, _batch(amount_minor=[10**12], currency=["EUR"]),
                                 np.array([0]), np.array([True]), np.array([0.0]), 0.5, 0.9)
    assert rule.tolist() == [""] and decision.tolist() == ["approve"]


def test_rules_file_errors_name_the_file_and_field(tmp_path):
    """A rules file without [velocity] is a ConfigError naming the file and the key."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[limits]\namount_max_minor = {}\n[blocklist]\ncard_countries=[]\ncard_bins=[]\n')
    with pytest.raises(ConfigError, match=r"bad\.toml.*velocity"):
        load_rules(bad)
    rules = load_rules()
    assert rules.card_n_1h_max == 20 and len(rules.sha256) == 64


def test_fees_are_exact_integers_rounded_half_up():
    """bps of the amount rounded half up to a minor unit, plus the fixed part, in int64."""
    amount = np.array([1, 3_333, 10_000, 2_777_778, 10**13])
    fees = fee_minor(amount, 150, np.array([25] * 5))
    # 1*150=150 -> 0.015 -> 0; 3333*150=499950 -> 49.995 -> 50; 10000 -> 150;
    # 2777778*150=416666700 -> 41666.67 -> 41667; 1e13*150/1e4 = 1.5e11 exactly.
    assert fees.tolist() == [25, 75, 175, 41_692, 150_000_000_025]
    assert fees.dtype == np.int64


def _flat_table(gw, p_by_gateway):
    regions = sorted(set(gw.country_region.values())) + ["OTHER"]
    currencies = sorted({c for fx in gw.fixed_minor.values() for c in fx}) + ["OTHER"]
    p = np.zeros((len(gw.names), len(regions), len(currencies), 24))
    for i, name in enumerate(gw.names):
        p[i] = p_by_gateway[name]
    return SuccessTable(list(gw.names), regions, currencies, p)


def test_routing_respects_residency_and_maximises_expected_value():
    """A GB card never goes to GW_CORAL, a US card never to GW_BOREAL, even when they look best;
    an unknown card country gets no route; the fee is the chosen gateway's exact fee."""
    gw = load_gateways()
    table = _flat_table(gw, {"GW_ATLAS": 0.90, "GW_BOREAL": 0.99, "GW_CORAL": 0.99})
    routes = choose_routes(gw, table, pa.array(["GB", "US", "ZZ", "NG"]),
                           pa.array(["GBP", "USD", "USD", "NGN"]),
                           np.array([100_000, 100_000, 100_000, 5_000_000]), np.zeros(4, np.int64))
    assert routes.route.tolist() == ["GW_BOREAL", "GW_CORAL", None, "GW_CORAL"]
    assert routes.alt_route.tolist() == ["GW_ATLAS", "GW_ATLAS", None, "GW_ATLAS"]
    assert routes.fee_minor.tolist() == [(100_000 * 150 + 5_000) // 10_000 + 20,
                                         (100_000 * 120 + 5_000) // 10_000 + 20, 0,
                                         (5_000_000 * 120 + 5_000) // 10_000 + 8_000]
    for country, route in zip(["GB", "US"], routes.route[:2], strict=True):
        region = gw.country_region[country]
        assert region in gw.regions[route]


def test_success_table_learns_from_recorded_outcomes_with_smoothing():
    """A gateway that failed half its recorded payments in EU scores below one that never failed."""
    gw = load_gateways()
    n = 400
    route = pa.array(["GW_ATLAS"] * n + ["GW_BOREAL"] * n)
    ok = pa.array([i % 2 == 0 for i in range(n)] + [True] * n)
    table = fit_success(gw, route, pa.array(["DE"] * (2 * n)), pa.array(["EUR"] * (2 * n)),
                        np.zeros(2 * n, np.int64), ok)
    r, c = table.regions.index("EU"), table.currencies.index("EUR")
    atlas, boreal = table.p[0, r, c, 0], table.p[1, r, c, 0]
    assert 0.45 < atlas < 0.6 and boreal > 0.95 and table.rows == 2 * n
    assert SuccessTable.from_json(table.to_json()).p.shape == table.p.shape


def test_retry_plans_never_retry_hard_declines():
    """Hard: "none"; soft (velocity): same route after the hour; weak approval: failover."""
    decision = np.array(["decline", "decline", "approve", "approve", "review"], dtype=object)
    rule = np.array(["score_decline", "velocity_cap_1h", "", "", "score_review"], dtype=object)
    route = np.array(["GW_A", "GW_A", "GW_A", "GW_A", "GW_A"], dtype=object)
    alt = np.array(["GW_B"] * 5, dtype=object)
    p = np.array([0.99, 0.99, 0.5, 0.99, 0.5])
    assert retry_plans(decision, rule, route, alt, p).tolist() == [
        "none", "GW_A@+60m", "GW_B@+30m", None, None]


def test_metrics_on_known_rankings():
    """PR-AUC 1 for a perfect ranking; threshold at FPR keeps at most that share of negatives."""
    y = np.array([0] * 95 + [1] * 5)
    score = np.linspace(0, 1, 100)
    assert metrics.pr_auc(y, score) == 1.0
    t = metrics.threshold_at_fpr(y, score, 0.02)
    assert metrics.fpr_at(y, score, t) <= 0.02 and metrics.recall_at(y, score, t) == 1.0
    assert metrics.brier(np.array([1, 0]), np.array([1.0, 0.0])) == 0.0
    assert sum(b["rows"] for b in metrics.reliability(y, score)) == 100


def test_top_features_keep_only_positive_contributions_best_first():
    """Reason codes are the largest positive contributions; every feature has a text."""
    contribs = np.array([[0.5, -1.0, 2.0, 0.1], [-0.1, -0.2, -0.3, 9.0]])
    assert top_features(contribs, ("a", "b", "c")) == [["model:c", "model:a"], []]
    from cutover.stack.features import FEATURES
    from cutover.stack.rules import RULE_ORDER as rules_order
    texts = load_reasons()
    assert all(f"model:{f}" in texts for f in FEATURES)
    assert all(f"rule:{r}" in texts for r in rules_order)
