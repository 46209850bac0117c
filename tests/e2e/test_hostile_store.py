"""A store that already holds implausible rows (written before the checks existed) still
replays and reports: those rows are quarantined, never a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa

from cutover.domain import TRAFFIC
from tests.cli_support import run_cli
from tests.replay_support import make_traffic, write_store


def _with_extreme_times(table: pa.Table) -> pa.Table:
    rows = table.to_pylist()
    rows[5]["ts"] = datetime(1, 1, 1, tzinfo=UTC)
    rows[9]["ts"] = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    return pa.Table.from_pylist(rows, schema=TRAFFIC)


def test_year_0001_and_9999_rows_are_quarantined_by_replay_and_report(tmp_path):
    """300 rows, two at year 1 and 9999: replay exits 0 with 2 quarantined and
    conservation intact; `report` rebuilds the report without error."""
    store = write_store(tmp_path / "store", _with_extreme_times(make_traffic(300, seed=4)))
    run = tmp_path / "run"
    code, _, message = run_cli(["replay", store, "--out", run, "--quiet", "--json",
                                "--candidate", "tests.replay_support:mirror_candidate"])
    assert code == 0, message
    report = json.loads((run / "report.json").read_text())
    assert report["counts"]["in"] == 300 and report["counts"]["by_category"]["quarantined"] == 2
    assert report["counts"]["conservation_ok"] is True
    code, _, message = run_cli(["report", run])
    assert code == 0, message
    assert all(b["bucket_start"] >= "2000" for b in report.get("timeline", []))


def test_recorded_legacy_error_reimports_as_legacy_error(tmp_path, monkeypatch):
    """A cassette's recorded SOAP fault imports as legacy_decision error with its fault
    reason (not quarantined as a missing fee); a POST without a txn id is counted."""
    import pyarrow.parquet as pq

    from tests.adapters_support import ROOT
    hostile = ROOT / "tests" / "data" / "hostile" / "cassette"
    mapping = ROOT / "cutover" / "fixtures" / "mappings" / "legacy_auth.toml"
    store = tmp_path / "store"
    code, out, message = run_cli(["import", hostile / "legacy_fault.yaml", "--into", store,
                                  "--mapping", mapping, "--json", "--quiet"])
    assert code == 0, message
    assert json.loads(out)["total"]["imported"] == 4
    rows = [r for p in store.glob("day=*/*.parquet") for r in pq.read_table(p).to_pylist()]
    fault = next(r for r in rows if r["txn_id"] == "HOSTILE0009")
    assert (fault["legacy_decision"], fault["legacy_fee_minor"]) == ("error", 0)
    assert fault["legacy_reason"].startswith(("soap_fault", "http_"))
    code, out, _ = run_cli(["import", hostile / "no_txn_id.yaml", "--into", tmp_path / "s2",
                            "--mapping", mapping, "--json", "--quiet"])
    total = json.loads(out)["total"]
    assert (code, total["read"], total["quarantined"]) == (0, 4, 1)
