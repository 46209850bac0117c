"""Gateway health on plain data: when a gateway trips and recovers, never from a later outcome,
the same on the batch path, the online path and across batch boundaries; routing skips it."""

import numpy as np
import pyarrow as pa
import pytest

from cutover.errors import ConfigError
from cutover.stack.health import GatewayHealth, HealthPolicy, OnlineHealth, load_health
from cutover.stack.reasons import explain
from cutover.stack.routing import SuccessTable, choose_route_one, choose_routes, load_gateways

MIN_US = 60_000_000
T0 = 1_790_000_000 * 1_000_000  # an arbitrary UTC instant, whole minutes
NAMES = ("GW_ATLAS", "GW_BOREAL", "GW_CORAL")
# The shipped policy (cutover/fixtures/routing.toml [health]); the test below checks it is this one.
POLICY = HealthPolicy(settle_delay_us=MIN_US, window_us=30 * MIN_US, outcomes_min=10,
                      trip_below=0.5, recover_window_us=10 * MIN_US, recover_outcomes_min=5,
                      recover_at=0.8)


def _outage(minutes=180, down=range(60, 120), gateway="GW_CORAL"):
    """One outcome a minute for ``gateway``, failing during ``down`` (minutes from T0)."""
    ts = T0 + np.arange(minutes, dtype=np.int64) * MIN_US
    ok = [m not in down for m in range(minutes)]
    return pa.table({"ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                     "gateway": [gateway] * minutes, "gateway_ok": ok})


def _decision_times(minutes=180):
    """Half past each minute: between two outcomes' known times, so no tie decides."""
    return T0 + np.arange(minutes, dtype=np.int64) * MIN_US + MIN_US // 2


def _online(outcomes, times):
    online = OnlineHealth(POLICY)
    for row in outcomes.to_pylist():
        online.add(row["gateway"], int(row["ts"].timestamp()) * 1_000_000, row["gateway_ok"])
    return [online.skipped(NAMES, int(t)) for t in times]


def test_the_shipped_policy_is_the_documented_one():
    """cutover/fixtures/routing.toml [health]: 60 s settlement, 30 min / 10 to trip below 50 %,
    10 min / 5 at 80 % to recover."""
    assert load_health() == POLICY


def test_an_outage_trips_after_the_threshold_and_recovers_after_it_ends():
    """Failures from minute 60 to 119: skipped from minute 76 (16 failures of the 30 known)
    to minute 127; at minute 128 the last 10 outcomes hold 8 successes (0.8) and it returns."""
    health = GatewayHealth(POLICY)
    health.observe(_outage())
    skip = health.skip_matrix(NAMES, _decision_times())
    assert not skip[:2].any()
    assert np.flatnonzero(skip[2]).tolist() == list(range(76, 128))


def test_batch_boundaries_and_the_online_path_give_the_same_answer():
    """Batches of 7 rows, one batch, and the online twin: the same skip per row."""
    times = _decision_times()
    whole = GatewayHealth(POLICY)
    whole.observe(_outage())
    expected = whole.skip_matrix(NAMES, times)
    split = GatewayHealth(POLICY)
    split.observe(_outage())
    parts = np.concatenate([split.skip_matrix(NAMES, times[i:i + 7])
                            for i in range(0, len(times), 7)], axis=1)
    assert (parts == expected).all()
    online = _online(_outage(), times)
    assert [("GW_CORAL" in s) for s in online] == expected[2].tolist()
    assert sum(len(s) for s in online) == 52


def test_an_outcome_known_only_after_the_decision_does_not_count():
    """At minute 75.5 the window holds 15 failures of 30 (0.5: not below). One more failure
    paid at 74.6 is known at 75.6, after the decision: no change. Paid at 74.5 it is known at
    75.5 exactly, so it counts: 15 of 31 succeed and the gateway is skipped."""
    t = np.array([T0 + 75 * MIN_US + MIN_US // 2])
    for paid_at_s, skipped in ((74 * 60 + 36, False), (74 * 60 + 30, True)):
        late = pa.table({"ts": pa.array([T0 + paid_at_s * 1_000_000], pa.timestamp("us", tz="UTC")),
                         "gateway": ["GW_CORAL"], "gateway_ok": [False]})
        health = GatewayHealth(POLICY)
        health.observe(_outage())
        health.observe(late)  # observed before the decision, as replay does for its batch
        assert health.skip_matrix(NAMES, t)[2, 0] == skipped
        assert ("GW_CORAL" in _online(pa.concat_tables([_outage(), late]), t)[0]) == skipped
    before = GatewayHealth(POLICY)
    before.observe(_outage())
    assert not before.skip_matrix(NAMES, t)[2, 0]


def test_outcomes_without_a_gateway_or_a_result_are_not_outcomes():
    """Declined payments have no gateway_ok: they never count, whatever the gateway."""
    table = _outage()
    health = GatewayHealth(POLICY)
    health.observe(table.set_column(2, "gateway_ok", pa.nulls(table.num_rows, pa.bool_())))
    health.observe(table.set_column(1, "gateway", pa.nulls(table.num_rows, pa.string())))
    assert health.rows == 0
    assert not health.skip_matrix(NAMES, _decision_times()).any()


def test_a_bad_policy_names_the_file_and_the_field(tmp_path):
    """A missing field and an inverted band are ConfigErrors naming routing.toml's [health]."""
    bad = tmp_path / "routing.toml"
    bad.write_text("[health]\nsettle_delay_s = 60\n")
    with pytest.raises(ConfigError, match=r"routing\.toml.*window_s"):
        load_health(bad)
    bad.write_text("[health]\nsettle_delay_s = 60\nwindow_s = 60\noutcomes_min = 1\n"
                   "trip_below = 0.9\nrecover_window_s = 60\nrecover_outcomes_min = 1\n"
                   "recover_at = 0.5\n")
    with pytest.raises(ConfigError, match="trip_below <= recover_at"):
        load_health(bad)


def _table(gw):
    regions = sorted(set(gw.country_region.values())) + ["OTHER"]
    currencies = sorted({c for fx in gw.fixed_minor.values() for c in fx}) + ["OTHER"]
    p = np.zeros((len(gw.names), len(regions), len(currencies), 24))
    p[:] = np.array([0.90, 0.95, 0.99])[:, None, None, None]
    return SuccessTable(list(gw.names), regions, currencies, p)


def test_routing_skips_a_sick_gateway_unless_no_other_may_carry_the_card():
    """A US card leaves GW_CORAL for GW_ATLAS and says why; a GB card (never on CORAL) is
    untouched; when CORAL and ATLAS are both sick the US card stays on its best gateway."""
    gw = load_gateways()
    table = _table(gw)
    args = (pa.array(["US", "GB", "US"]), pa.array(["USD", "GBP", "USD"]),
            np.array([100_000] * 3), np.zeros(3, np.int64))
    skip = np.array([[False, False, True], [False, False, False], [True, True, True]])
    routes = choose_routes(gw, table, *args, skip=skip)
    assert routes.route.tolist() == ["GW_ATLAS", "GW_BOREAL", "GW_CORAL"]
    assert routes.skipped.tolist() == ["GW_CORAL", None, None]
    assert routes.alt_route.tolist() == [None, "GW_ATLAS", "GW_ATLAS"]
    assert routes.fee_minor.tolist() == [(100_000 * 180 + 5_000) // 10_000 + 25,
                                         (100_000 * 150 + 5_000) // 10_000 + 20,
                                         (100_000 * 120 + 5_000) // 10_000 + 20]
    one = [choose_route_one(gw, table, c, cur, 100_000, 0,
                            frozenset(n for n, s in zip(gw.names, skip[:, i], strict=True) if s))
           for i, (c, cur) in enumerate([("US", "USD"), ("GB", "GBP"), ("US", "USD")])]
    assert [o[0] for o in one] == routes.route.tolist()
    assert [o[4] for o in one] == routes.skipped.tolist()
    assert [o[1] for o in one] == routes.fee_minor.tolist()
    assert explain(["route:skipped_unhealthy:GW_CORAL"])[0].endswith("(GW_CORAL)")
