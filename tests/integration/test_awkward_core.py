"""The awkward second core, wired with files alone: record, import, calibrate, replay live,
try one call, describe, and say why when it fails (issue 15)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cutover.adapters.mapping import load_mapping
from cutover.sim.awkward_core import start_awkward
from tests.cli_support import run_cli
from tests.replay_support import make_traffic, write_store

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "cutover" / "fixtures" / "mappings" / "awkward_core.toml"
WSDL = ROOT / "cutover" / "fixtures" / "wsdl" / "awkward_core.wsdl"
#: The core's two volatile reply elements, neither of them mapped.
VOLATILE = {"Header/ServerMsgId", "Header/ProcessedAt"}
#: Visa's documented test card number (never a real card).
TEST_PAN = "4111111111111111"


@pytest.fixture(scope="module")
def awkward() -> Iterator[object]:
    """The awkward core on 127.0.0.1 (a free port) for this module."""
    core = start_awkward()
    try:
        yield core
    finally:
        core.stop()


@pytest.fixture
def token_key(monkeypatch):
    monkeypatch.setenv("CUTOVER_TOKEN_KEY", "test-key-not-secret")


def _requests(path: Path, rows: int, prefix: str) -> list[dict]:
    txns = make_traffic(rows, seed=21, prefix=prefix).to_pylist()
    with open(path, "w", encoding="utf-8") as handle:
        for txn in txns:
            call = {k: v for k, v in txn.items() if not k.startswith("legacy_")
                    and k not in ("is_fraud", "chargeback", "label_ts", "gateway_ok")}
            call["ts"] = txn["ts"].astimezone(UTC).isoformat()
            call["pan"] = TEST_PAN
            call.pop("card_token")
            handle.write(json.dumps(call) + "\n")
    return txns


def _bad_mapping(tmp_path: Path) -> Path:
    """The awkward mapping without the generated MsgId the core requires."""
    text = MAPPING.read_text().replace(
        '"Header/MsgId" = { kind = "uuid5_txn_id", template = "AWK-{value}" }', "")
    path = tmp_path / "no_msgid.toml"
    path.write_text(text.replace('"../wsdl/awkward_core.wsdl"', json.dumps(str(WSDL))))
    return path


def test_records_and_imports_with_files_alone(awkward, token_key, tmp_path):
    """30 calls recorded (no PAN in the cassette), imported back as canonical rows: numeric
    codes and letters mapped back, amounts in minor units, 3-digit codes translated."""
    requests = tmp_path / "requests.jsonl"
    txns = _requests(requests, 30, "AWR")
    cassette = tmp_path / "awk.yaml"
    code, stdout, error = run_cli(["record", "--mapping", MAPPING, "--wsdl", awkward.wsdl_url,
                                   "--address", awkward.url, "--requests", requests,
                                   "--out", cassette, "--json"])
    assert code == 0, error
    assert json.loads(stdout)["calls"] == 30
    assert TEST_PAN not in cassette.read_text()
    store = tmp_path / "store"
    code, stdout, error = run_cli(["import", cassette, "--into", store, "--mapping", MAPPING,
                                   "--json", "--quiet"])
    assert code == 0, error
    assert json.loads(stdout)["total"]["imported"] == 30
    table = pq.read_table(store).sort_by("txn_id").to_pylist()
    by_id = {t["txn_id"]: t for t in txns}
    for row in table:
        want = by_id[row["txn_id"]]
        assert (row["currency"], row["merchant_country"], row["channel"], row["amount_minor"]
                ) == (want["currency"], want["merchant_country"], want["channel"],
                      want["amount_minor"])
        assert row["legacy_code"] in ("A-000", "D-051", "D-059", "R-100")
        assert row["legacy_reason"] != "unknown_code"


def test_calibration_finds_exactly_the_volatile_elements(awkward, tmp_path):
    """20 requests sent twice: exactly ServerMsgId and ProcessedAt differ; neither is mapped,
    so no canonical field is ignored and the CLI names both elements."""
    store = write_store(tmp_path / "store", make_traffic(30, seed=22, prefix="AWC"))
    rules = tmp_path / "rules.toml"
    code, stdout, error = run_cli(["calibrate", "--wsdl", awkward.wsdl_url, "--address",
                                   awkward.url, "--mapping", MAPPING, "--store", store,
                                   "--sample", "20", "--out", rules, "--json"])
    assert code == 0, error
    result = json.loads(stdout)
    assert set(result["elements"]) == VOLATILE and result["fields"] == []
    assert result["pairs"] == 20 and result["failed_pairs"] == 0
    assert all(e["field"] == "(unmapped)" for e in result["evidence"])
    assert "Header/ServerMsgId" in rules.read_text()


def test_live_replay_through_the_awkward_core(awkward, tmp_path):
    """--legacy soap: 60 rows through the awkward core, no legacy errors, conservation holds."""
    store = write_store(tmp_path / "store", make_traffic(60, seed=23, prefix="AWL"))
    run = tmp_path / "run"
    code, stdout, error = run_cli(["replay", store, "--out", run, "--candidate",
                                   "tests.replay_support:exact_candidate", "--legacy", "soap",
                                   "--wsdl", awkward.wsdl_url, "--mapping", MAPPING,
                                   "--legacy-opt", f"address={awkward.url}", "--json",
                                   "--quiet"])
    assert code == 0, error
    summary = json.loads(stdout)
    assert summary["rows_in"] == 60 and summary["by_category"]["legacy_error"] == 0
    assert not (run / "legacy_errors.jsonl").exists()


def test_live_replay_with_a_broken_mapping_says_why_and_exits_3(awkward, tmp_path):
    """Every call refused by zeep (MsgId unmapped): replay prints the element path and exits 3."""
    store = write_store(tmp_path / "store", make_traffic(10, seed=24, prefix="AWB"))
    run = tmp_path / "run"
    code, _, error = run_cli(["replay", store, "--out", run, "--candidate",
                              "tests.replay_support:exact_candidate", "--legacy", "soap",
                              "--wsdl", awkward.wsdl_url, "--mapping", _bad_mapping(tmp_path),
                              "--legacy-opt", f"address={awkward.url}", "--quiet"])
    assert code == 3
    assert "10 of 10 rows failed" in error or "10 of 10 calls failed" in error
    assert "Missing element MsgId (Authorise.Header.MsgId)" in error
    lines = (run / "legacy_errors.jsonl").read_text().splitlines()
    assert len(lines) == 10 and json.loads(lines[0])["kind"] == "bad_request"


def test_soap_try_prints_request_response_and_outcome(awkward, tmp_path, monkeypatch):
    """One call: request XML (card number masked), response XML, outcome A-000 approve."""
    monkeypatch.delenv("CUTOVER_TOKEN_KEY", raising=False)
    txn = tmp_path / "txn.json"
    txn.write_text(json.dumps({
        "txn_id": "AWT-1", "ts": "2026-10-01T12:00:00+00:00", "amount_minor": 1250,
        "currency": "EUR", "channel": "ecom", "mcc": "5411", "merchant_id": "M0001",
        "merchant_country": "DE", "customer_id": "C0001", "pan": TEST_PAN,
        "card_bin": "411111"}))
    code, stdout, error = run_cli(["soap", "try", "--wsdl", awkward.wsdl_url, "--mapping",
                                   MAPPING, "--txn", f"@{txn}", "--address", awkward.url,
                                   "--json"])
    assert code == 0, error
    shown = json.loads(stdout)
    assert TEST_PAN not in stdout
    assert "<ns0:CcyNum>978</ns0:CcyNum>" in shown["request_xml"]
    assert "<a:Code>000</a:Code>" in shown["response_xml"]
    assert shown["outcome"]["legacy_code"] == "A-000"
    assert shown["outcome"]["legacy_fee_minor"] == 15


def test_soap_try_names_the_missing_element(awkward, tmp_path):
    """A mapping that leaves a required element out: exit 2 with zeep's path, nothing sent."""
    txn = tmp_path / "txn.json"
    txn.write_text(json.dumps({
        "txn_id": "AWT-2", "ts": "2026-10-01T12:00:00+00:00", "amount_minor": 1250,
        "currency": "EUR", "channel": "ecom", "mcc": "5411", "merchant_id": "M0001",
        "merchant_country": "DE", "customer_id": "C0001", "card_token": "tok_1",
        "card_bin": "411111"}))
    calls_before = awkward.calls
    code, _, error = run_cli(["soap", "try", "--wsdl", awkward.wsdl_url, "--mapping",
                              _bad_mapping(tmp_path), "--txn", f"@{txn}", "--address",
                              awkward.url])
    assert code == 2
    assert "Missing element MsgId (Authorise.Header.MsgId)" in error
    assert awkward.calls == calls_before


def test_calibrate_against_a_dead_core_exits_3_with_the_cause(tmp_path):
    """Nothing listens: every call fails, the refusal is printed and all are in the file."""
    store = write_store(tmp_path / "store", make_traffic(5, seed=25, prefix="AWD"))
    rules = tmp_path / "rules.toml"
    code, _, error = run_cli(["calibrate", "--wsdl", str(WSDL), "--address",
                              "http://127.0.0.1:9/awkward", "--mapping", MAPPING, "--store",
                              store, "--sample", "3", "--out", rules])
    assert code == 3
    assert "6 of 6 calls failed" in error and "connection_refused" in error
    assert len((tmp_path / "rules.errors.jsonl").read_text().splitlines()) == 6
    assert not rules.exists()


def test_describe_skeleton_loads(tmp_path):
    """`soap describe --skeleton` on the awkward WSDL writes a mapping that loads and whose
    paths are all in the WSDL."""
    out = tmp_path / "starter.toml"
    code, stdout, error = run_cli(["soap", "describe", WSDL, "--skeleton", out])
    assert code == 0, error
    assert "ServerMsgId" in stdout and "required" in stdout
    mapping = load_mapping(out)
    assert mapping.operation == "Authorise"
    assert {"Payment/Channel", "Payment/Mcc"} <= set(mapping.request_paths())


def test_describe_skeleton_of_a_real_bank_wsdl_loads(tmp_path):
    """The Bank of Russia's DailyInfo WSDL (an excerpt; tests/data/SOURCES.md): both
    operations are described, and the skeleton of the second loads and matches the WSDL."""
    from cutover.adapters.wsdl_tree import check_mapping_paths, open_wsdl
    wsdl = ROOT / "tests" / "data" / "cbr_dailyinfo_excerpt.wsdl"
    out = tmp_path / "cbr.toml"
    code, stdout, error = run_cli(["soap", "describe", wsdl, "--operation", "SaldoXML",
                                   "--skeleton", out])
    assert code == 0, error
    assert "fromDate" in stdout and "xsd:dateTime" in stdout and "GetCursOnDate" not in stdout
    mapping = load_mapping(out)
    check_mapping_paths(mapping, open_wsdl(str(wsdl)), str(wsdl))
    assert mapping.namespace == "http://web.cbr.ru/"
    assert set(mapping.request_paths()) == {"fromDate", "ToDate"}
