"""Replayed for real, feed changes fail the demo plan's canary-1 through the feed checks alone:
a units switch on a merchant with about 300 rows in the window (too small for the 500-row
segment check), and one merchant's rows refused by replay (a currency it does not know)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from cutover.migrate.gate import evaluate
from cutover.migrate.plan import load_policy
from cutover.paths import fixtures_dir
from cutover.replay.engine import run_replay
from cutover.sim.feed_change import apply_change, load_change
from cutover.sim.traffic import generate_table
from tests.migrate_support import DEMO_PLAN
from tests.replay_support import write_store

SINCE = datetime(2026, 9, 11, tzinfo=UTC)
ROWS, DAYS = 60_000, 14


def _gate(run_dir) -> dict:
    report = json.loads((run_dir / "report.json").read_text("utf-8"))
    return evaluate(report, load_policy(DEMO_PLAN, "canary-1"), phase="canary-1").to_dict()


def _replay(tmp_path, table: pa.Table, name: str):
    store = write_store(tmp_path / name / "store", table)
    run_replay(store, tmp_path / name / "run", candidate="tests.replay_support:exact_candidate",
               since=SINCE)
    return tmp_path / name / "run"


@pytest.fixture(scope="module")
def traffic():
    """14 days of simulated traffic; the last 4 are the replay window."""
    return generate_table(ROWS, 5, days=DAYS)


def test_units_switch_on_a_300_row_merchant_fails_canary_1(tmp_path, traffic):
    """The merchant with about 300 rows in the window sends major units from 40% of the window
    on: canary-1 fails on feed amount_minor @ merchant_id=<it>, first seen within 6 hours of
    the switch; the 500-row segment check never names that merchant."""
    change = load_change(fixtures_dir() / "feed_changes" / "units_small_merchant.toml")
    since_us = int(SINCE.timestamp() * 1_000_000)
    broken, info = apply_change(traffic, change, since_us)
    merchant = str(info["segment"]).split("=")[1]
    window = traffic.filter(pc.greater_equal(traffic["ts"], pa.scalar(SINCE, traffic["ts"].type)))
    in_window = pc.sum(pc.equal(window["merchant_id"], merchant)).as_py()
    assert 250 <= in_window <= 350
    result = _gate(_replay(tmp_path, broken, "units"))
    failed = [c for c in result["checks"] if not c["passed"]]
    assert not result["passed"]
    names = [c["name"] for c in failed]
    assert f"feed amount_minor @ merchant_id={merchant} (amount_shift)" in names
    # The 500-row segment check cannot judge it: only the feed check names the merchant.
    assert f"segment merchant_id={merchant}" not in names
    check = next(c for c in failed
                 if c["name"] == f"feed amount_minor @ merchant_id={merchant} (amount_shift)")
    first = datetime.fromisoformat(check["observed"].rsplit("first seen ", 1)[1]
                                   .replace("Z", "+00:00"))
    assert 0 <= first.timestamp() * 1e6 - info["first_us"] < 6 * 3.6e9


def test_one_merchants_refused_rows_fail_the_quarantine_checks(tmp_path, traffic):
    """The 6th largest merchant's currency arrives as XTS from mid-window: replay quarantines
    those rows; canary-1 fails on feed quarantine @ merchant_id=<it> (and names the new
    currency value), while the same traffic clean passes every feed check."""
    change = load_change(fixtures_dir() / "feed_changes" / "currency_refused.toml")
    broken, info = apply_change(traffic, change, int(SINCE.timestamp() * 1_000_000))
    merchant = str(info["segment"]).split("=")[1]
    result = _gate(_replay(tmp_path, broken, "refused"))
    failed = {c["name"]: c for c in result["checks"] if not c["passed"]}
    refused = failed[f"feed quarantine @ merchant_id={merchant} (quarantine_rate)"]
    assert refused["observed"].startswith("quarantine_rate: 0.0% -> ")
    assert f"feed currency @ merchant_id={merchant} (new_value)" in failed
    clean = _gate(_replay(tmp_path, traffic, "clean"))
    assert [c["name"] for c in clean["checks"] if c["name"].startswith("feed")] == ["feed health"]
    assert all(c["passed"] for c in clean["checks"] if c["name"].startswith(("feed", "rate q")))
