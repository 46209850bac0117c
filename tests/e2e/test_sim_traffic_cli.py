"""End-to-end tests of `cutover sim traffic` through the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from cutover.store.traffic import count_rows, store_files

REPO = Path(__file__).resolve().parents[2]
CUTOVER = str(Path(sys.executable).with_name("cutover"))


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CUTOVER, "sim", "traffic", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_generates_a_store_and_prints_json(tmp_path):
    """Exit 0; the JSON summary and the store agree on 3,000 rows over 7 days from --start."""
    out = tmp_path / "store"
    result = _run("--rows", "3000", "--seed", "4", "--out", str(out), "--start", "2026-10-01",
                  "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == 3000 == count_rows(out)
    assert summary["days"] == 7 and summary["first_day"] == "2026-10-01"
    assert summary["last_day"] == "2026-10-07"
    assert (summary["legacy_approved"] + summary["legacy_declined"] + summary["legacy_review"]
            == 3000)
    assert len(store_files(out)) == 7


def test_table_output_names_the_figures(tmp_path):
    """Without --json a summary table with rows, fraud and chargebacks goes to stdout."""
    result = _run("--rows", "500", "--seed", "4", "--out", str(tmp_path / "s"), "--days", "2")
    assert result.returncode == 0, result.stderr
    for label in ("rows", "500", "fraud rows", "chargeback rows", "legacy approved", "currencies"):
        assert label in result.stdout


def test_bad_input_exits_2_naming_the_option(tmp_path):
    """rows <= 0, a bad date and a foreign non-empty --out each exit 2 with a clear message."""
    bad_rows = _run("--rows", "0", "--seed", "1", "--out", str(tmp_path / "a"))
    assert bad_rows.returncode == 2 and "--rows" in bad_rows.stderr
    bad_date = _run("--rows", "10", "--seed", "1", "--out", str(tmp_path / "b"),
                    "--start", "2026-02-30")
    assert bad_date.returncode == 2 and "--start" in bad_date.stderr
    foreign = tmp_path / "c"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    refused = _run("--rows", "10", "--seed", "1", "--out", str(foreign))
    assert refused.returncode == 2 and "not a traffic store" in refused.stderr
    assert not (tmp_path / "a").exists()


def test_sample_requests_decided_by_the_soap_core_as_recorded(legacy_core):
    """Generated rows sent with their PANs to the live SOAP core get the recorded code, route
    and fee (velocity declines aside: the live core only sees the sample)."""
    import pyarrow.compute as pc

    from cutover.adapters.legacy import open_legacy
    from cutover.sim.traffic import generate_table, sample_requests

    table = generate_table(20_000, 8)
    unusual = table.filter(pc.not_equal(table["legacy_code"], "00"))
    chosen = table.filter(pc.equal(table["legacy_code"], "00")).slice(0, 2_000)
    requests = sample_requests(unusual, 40, 8) + sample_requests(chosen, 40, 8)
    recorded = {r["txn_id"]: r for r in table.filter(pc.is_in(
        table["txn_id"], value_set=pa.array([r["txn_id"] for r in requests]))).to_pylist()}
    legacy = open_legacy("soap", mapping=REPO / "cutover" / "fixtures" / "mappings" / "legacy_auth.toml",
                         wsdl=legacy_core.wsdl_url, address=legacy_core.url)
    compared = 0
    try:
        for request in requests:
            call = {k: v for k, v in request.items() if k != "pan"} | {"card_token": request["pan"]}
            raw = legacy.authorize_raw(call)
            want = recorded[request["txn_id"]]
            if want["legacy_code"] == "65":
                continue
            assert raw["error"] is None, raw
            assert (raw["response_code"], raw["route"], raw["fee_minor"]) == \
                (want["legacy_code"], want["legacy_route"], want["legacy_fee_minor"]), request["txn_id"]
            compared += 1
    finally:
        legacy.close()
    assert compared >= 60
    assert len({recorded[r["txn_id"]]["legacy_code"] for r in requests}) >= 4
