"""Calibration against the real simulated SOAP core: exactly its noisy fields, nothing else."""

from pathlib import Path

from cutover.shadow.calibrate import calibrate, write_calibrated_rules
from cutover.shadow.diff_rules import load_diff_rules
from tests.replay_support import make_traffic, write_store

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "cutover" / "fixtures" / "mappings" / "legacy_auth.toml"
#: The simulated core's noise: auth code (approvals), trace id and response time.
NOISY = {"auth_code", "trace_id", "response_ts"}


def test_calibration_finds_the_noisy_fields_and_writes_them(legacy_core, tmp_path):
    """40 requests sent twice: the three noisy fields differ, the outcome fields never do."""
    store = write_store(tmp_path / "store", make_traffic(60, seed=11, prefix="CAL"))
    result = calibrate(legacy_core.wsdl_url, MAPPING, store, 40, address=legacy_core.url)
    assert result.pairs == 40 and result.failed_pairs == 0
    assert sorted(result.fields) == sorted(NOISY)
    by_field = {e["field"]: e for e in result.evidence}
    assert by_field["trace_id"]["pairs_differing"] == 40
    assert 0 < by_field["auth_code"]["pairs_differing"] <= 40  # declines carry no auth code
    out = write_calibrated_rules(result, tmp_path / "rules.toml")
    rules = load_diff_rules(out)
    assert rules.ignore_fields == NOISY
    assert sorted(e["field"] for e in rules.ignore_evidence) == sorted(NOISY)
    assert rules.expected and rules.reason_map  # the rest of the base rules is kept


def test_replay_against_the_live_core_agrees_with_the_recorded_outcomes(legacy_core, tmp_path):
    """--legacy soap: 150 rows through the real SOAP core, every row categorised, and an
    exact candidate matches the live core wherever the core's outcome equals the recording."""
    from cutover.replay.engine import run_replay
    store = write_store(tmp_path / "store", make_traffic(150, seed=13, prefix="LIVE"))
    summary = run_replay(store, tmp_path / "run", candidate="tests.replay_support:exact_candidate",
                         legacy="soap", legacy_options={"wsdl": legacy_core.wsdl_url,
                                                        "mapping": str(MAPPING),
                                                        "address": legacy_core.url},
                         batch_rows=50, report=False)
    assert summary.conservation_ok and summary.rows_in == 150
    assert summary.by_category["legacy_error"] == 0
    assert summary.by_category["match"] >= 140


def test_replay_against_a_cassette_offline(legacy_core, tmp_path):
    """--legacy cassette: outcomes recorded from the live core are played back by TxnId."""
    from cutover.adapters.cassette import record_calls
    from cutover.adapters.soap import SoapOptions
    from cutover.replay.engine import run_replay
    from tests.replay_support import read_parts
    traffic = make_traffic(40, seed=14, prefix="CAS")
    store = write_store(tmp_path / "store", traffic)
    cassette = tmp_path / "core.yaml"
    live = record_calls(MAPPING, traffic.to_pylist(), cassette, b"test-key-not-secret",
                        wsdl=legacy_core.wsdl_url, options=SoapOptions(address=legacy_core.url))
    summary = run_replay(store, tmp_path / "run", candidate="tests.replay_support:exact_candidate",
                         legacy="cassette", legacy_options={"wsdl": legacy_core.wsdl_url,
                                                            "mapping": str(MAPPING),
                                                            "cassette": str(cassette),
                                                            "address": legacy_core.url},
                         report=False)
    assert summary.conservation_ok and summary.by_category["legacy_error"] == 0
    diffs = read_parts(tmp_path / "run", "diffs").sort_by("txn_id")
    recorded = sorted(zip((t["txn_id"] for t in traffic.to_pylist()),
                          (o["legacy_decision"] for o in live), strict=True))
    assert diffs["legacy_decision"].to_pylist() == [d for _, d in recorded]
