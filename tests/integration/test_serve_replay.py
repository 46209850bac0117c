"""The reference stack behind `cutover serve`, replayed over HTTP: same diffs as in process."""

import json

import pytest
import requests

from cutover.replay.engine import run_replay
from tests.replay_support import drop_latency, read_parts
from tests.serve_support import SINCE, serving, train_small


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """12,000 generated rows over 8 days and a model trained on the first 4 days."""
    return train_small(tmp_path_factory.mktemp("serve"))


def _same_parts(a, b) -> None:
    for sub in ("decisions", "diffs"):
        left, right = drop_latency(read_parts(a, sub)), drop_latency(read_parts(b, sub))
        assert left.num_rows == right.num_rows > 0
        assert left.equals(right), sub


def test_http_replay_equals_in_process_replay(trained, tmp_path):
    """The same store through the stack in process and over HTTP (chunks of 700 rows, two in
    flight) gives identical decisions and diffs, latency aside, and real call latencies."""
    store, models = trained
    local = run_replay(store, tmp_path / "local", candidate_options={"models": str(models)},
                       since=SINCE, batch_rows=2_500, report=False)
    with serving(models) as service:
        remote = run_replay(store, tmp_path / "http", candidate=service.url,
                            candidate_options={"chunk_rows": "700", "concurrency": "2"},
                            since=SINCE, batch_rows=2_500)
        metrics = requests.get(service.url + "/metrics", timeout=5).text
    assert remote.by_category == local.by_category
    assert remote.by_category["candidate_error"] == 0 and remote.conservation_ok
    _same_parts(tmp_path / "local", tmp_path / "http")
    report = json.loads((tmp_path / "http" / "report.json").read_text())
    assert report["latency_ms"]["candidate"]["p99"] > 0
    decided = sum(int(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                  if line.startswith("cutover_serve_decisions_total{"))
    assert decided == remote.rows_in - remote.by_category["quarantined"]


def test_http_replay_resumes_exactly(trained, tmp_path):
    """Stopped after two batches and resumed against the service, the run equals an
    unbroken in-process run: the fresh session is warmed as an in-process stack would be."""
    store, models = trained
    options = {"models": str(models)}
    run_replay(store, tmp_path / "plain", candidate_options=options, since=SINCE,
               batch_rows=2_000, report=False)

    class Stop(Exception):
        pass

    def stop(done, total):
        if done >= 4_000:
            raise Stop

    with serving(models) as service:
        with pytest.raises(Stop):
            run_replay(store, tmp_path / "cut", candidate=service.url, since=SINCE,
                       batch_rows=2_000, report=False, on_progress=stop)
        resumed = run_replay(store, tmp_path / "cut", candidate=service.url, since=SINCE,
                             batch_rows=2_000, report=False, resume=True)
    assert resumed.resumed_from_batch == 2
    _same_parts(tmp_path / "plain", tmp_path / "cut")


def test_service_stopping_mid_replay_becomes_candidate_error(trained, tmp_path):
    """The service stops after the first batch: every later row is a candidate_error with a
    reason, no row is lost, and the replay itself finishes."""
    store, models = trained
    with serving(models) as service:
        url = service.url

        def stop_service(done, total):
            if done >= 2_000:
                service.stop()

        summary = run_replay(store, tmp_path / "run", candidate=url, since=SINCE,
                             batch_rows=2_000, report=False, on_progress=stop_service)
    assert summary.conservation_ok
    errors = summary.by_category["candidate_error"]
    assert 0 < errors < summary.rows_in
    diffs = read_parts(tmp_path / "run", "diffs")
    reasons = {r for r, c in zip(diffs["candidate_reason"].to_pylist(),
                                 diffs["category"].to_pylist(), strict=True)
               if c == "candidate_error"}
    assert all("connection_refused" in r or "session_lost" in r for r in reasons), reasons
