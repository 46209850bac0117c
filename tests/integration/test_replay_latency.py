"""The candidate's latency in report.json is timed on single decisions, and the gate uses it."""

import json

import pytest

from cutover.migrate.gate import evaluate
from cutover.migrate.policy import Policy
from cutover.replay.engine import run_replay
from tests.replay_support import make_traffic, write_store

SAMPLE = 8


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """600 recorded transactions."""
    return write_store(tmp_path_factory.mktemp("latency") / "store", make_traffic(600, seed=4))


def _replay(store, out, candidate):
    run_replay(store, out, candidate=f"tests.replay_support:{candidate}", batch_rows=200,
               latency_sample_max=SAMPLE)
    return json.loads((out / "report.json").read_text())


def _latency_check(report, limit_ms):
    result = evaluate(report, Policy(max_latency_p99_ms=limit_ms), phase="t")
    return next(c for c in result.checks if c.name == "candidate latency p99")


def test_a_candidate_sleeping_20_ms_a_decision_fails_a_10_ms_latency_gate(store, tmp_path):
    """20 ms per single decision: p99 >= 20 ms over the timed sample; the 10 ms check fails."""
    report = _replay(store, tmp_path / "slow", "sleepy_candidate")
    candidate = report["latency_ms"]["candidate"]
    assert candidate["n"] == SAMPLE and "single decide()" in candidate["how"]
    assert candidate["p99"] >= 20.0 and candidate["p50"] >= 20.0
    # The batch's time over its rows is kept beside it and says nothing about one payment.
    assert report["latency_ms"]["candidate_batch_per_row"]["p99"] < 1.0
    check = _latency_check(report, 10)
    assert not check.passed and f"{SAMPLE:,} timed single decisions" in check.message


def test_a_fast_candidate_passes_the_same_check_and_a_resumed_report_keeps_the_sample(store, tmp_path):
    """The mirror without sleep passes a 1 s limit (the check can pass; 10 ms would be flaky on a
    shared machine); rebuilding the report from the parts gives the same candidate latency
    (the sample lives in RUN_DIR/latency.json)."""
    from cutover.shadow.report import build_report

    report = _replay(store, tmp_path / "fast", "exact_candidate")
    assert _latency_check(report, 1000).passed
    assert build_report(tmp_path / "fast")["latency_ms"]["candidate"] == \
        report["latency_ms"]["candidate"]
