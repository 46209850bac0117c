"""`cutover import` of foreign CSV / JSONL: counts add up, bad rows quarantined, re-import no-op."""

from __future__ import annotations

import json
import random

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cutover.cli import app
from cutover.store.traffic import count_rows, store_files
from tests.adapters_support import ROOT, make_pan, scan_for_pans

MAPPING = ROOT / "cutover" / "fixtures" / "mappings" / "partner_export.toml"
HEADER = ("Reference,When,Merchant,MCC,Customer,Card,CardCountry,Amount,Ccy,MerchantCountry,"
          "Channel,Result,Gateway,Fee")


def _row(i: int, pan: str, amount: str = "12.34", when: str = "2026-10-01 10:00:00",
         channel: str = "ecom", code: str = "00") -> str:
    return f"P{i:05d},{when},M0001,5411,C{i},{pan},US,{amount},USD,US,{channel},{code},GW_A,0.30"


def _write_csv(path, rng):
    """20 good rows (2 days), 1 in-file duplicate, 1 conflict (same id, other card and time),
    5 bad rows, 1 wrong-width line."""
    rows = [_row(i, make_pan(rng), when=f"2026-10-0{1 + i % 2} 10:00:{i:02d}",
                 code="05" if i % 5 == 0 else "00") for i in range(20)]
    rows += [rows[3], _row(4, make_pan(rng))]
    rows += [_row(90, make_pan(rng), amount="1.234"), _row(91, make_pan(rng), when="yesterday"),
             _row(92, make_pan(rng), channel="fax"), _row(93, "12345")]
    rows += ["P00094,too,few", _row(95, make_pan(rng)).replace("C95", "C" + make_pan(rng))]
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("CUTOVER_TOKEN_KEY", "test-key-not-secret")


def test_import_counts_quarantine_and_reimport(tmp_path, env):
    """28 rows: 20 imported, 1 duplicate, 7 quarantined (one a conflict naming both versions);
    re-import imports 0; no PAN on disk."""
    source = tmp_path / "partner.csv"
    _write_csv(source, random.Random(3))
    store = tmp_path / "store"
    runner = CliRunner()
    first = runner.invoke(app, ["import", str(source), "--into", str(store), "--mapping",
                                str(MAPPING), "--json", "--quiet", "--max-quarantine-rate", "0.25"])
    assert first.exit_code == 0, first.output
    total = json.loads(first.stdout)["total"]
    got = (total["read"], total["imported"], total["duplicates"], total["quarantined"])
    assert got == (28, 20, 1, 7)
    assert count_rows(store) == 20 and len(store_files(store)) == 2
    table = pq.read_table(store_files(store)[0])
    assert table["amount_minor"].to_pylist()[0] == 1234
    assert table["legacy_fee_minor"].to_pylist()[0] == 30
    assert set(table["legacy_reason"].to_pylist()) <= {"approved", "do_not_honor"}
    assert all(t.startswith("tok_") for t in table["card_token"].to_pylist())
    quarantine = (store / "_quarantine" / "partner.csv.jsonl").read_text().splitlines()
    fields = sorted(json.loads(line)["field"] for line in quarantine)
    assert fields == ["", "amount_minor", "channel", "customer_id", "pan", "ts", "txn_id"]
    conflict = next(json.loads(line) for line in quarantine if "conflict" in line)
    assert conflict["this_version"]["ts"] != conflict["other_version"]["ts"]
    again = runner.invoke(app, ["import", str(source), "--into", str(store), "--mapping",
                                str(MAPPING), "--quiet", "--max-quarantine-rate", "0.25"])
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == "read 28 · imported 0 · duplicates 21 · quarantined 7"
    assert count_rows(store) == 20
    assert scan_for_pans(tmp_path / "store") == []


def test_import_jsonl_with_broken_line(tmp_path, env):
    """JSONL with one broken line: 3 imported, 1 quarantined with its line number."""
    rng = random.Random(5)
    keys = HEADER.split(",")
    lines = [json.dumps(dict(zip(keys, _row(i, make_pan(rng)).split(",")))) for i in range(3)]
    lines.insert(1, "{not json")
    source = tmp_path / "partner.jsonl"
    source.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["import", str(source), "--into", str(tmp_path / "s"),
                                      "--mapping", str(MAPPING), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "read 4 · imported 3 · duplicates 0 · quarantined 1"
    bad = json.loads((tmp_path / "s" / "_quarantine" / "partner.jsonl.jsonl").read_text())
    assert bad["line"] == 2


def test_pan_column_without_key_is_refused(tmp_path, monkeypatch):
    """A PAN column with no CUTOVER_TOKEN_KEY exits 2 and says how to set the key."""
    monkeypatch.delenv("CUTOVER_TOKEN_KEY", raising=False)
    source = tmp_path / "p.csv"
    _write_csv(source, random.Random(1))
    from cutover.errors import ConfigError
    result = CliRunner().invoke(app, ["import", str(source), "--into", str(tmp_path / "s"),
                                      "--mapping", str(MAPPING), "--quiet"])
    assert isinstance(result.exception, ConfigError)
    assert "export CUTOVER_TOKEN_KEY" in str(result.exception)
    assert not (tmp_path / "s").exists()


def test_import_legacy_authlog_batch_file(tmp_path, env):
    """An authlog of a 20-row store imports 20 rows into a new store and 20 dups into its own."""
    from cutover.sim.eod import export_eod

    source = tmp_path / "partner.csv"
    _write_csv(source, random.Random(3))
    store = tmp_path / "store"
    runner = CliRunner()
    runner.invoke(app, ["import", str(source), "--into", str(store), "--mapping", str(MAPPING),
                        "--quiet"])
    summary = export_eod(store, tmp_path / "eod")
    authlog = next((tmp_path / "eod").glob("authlog_*.txt"))
    fresh = runner.invoke(app, ["import", str(authlog), "--into", str(tmp_path / "b"),
                                "--layout", "legacy_authlog", "--json", "--quiet"])
    assert fresh.exit_code == 0, fresh.output
    total = json.loads(fresh.stdout)["total"]
    assert (total["read"], total["imported"], total["quarantined"]) == (20, 20, 0)
    again = runner.invoke(app, ["import", str(authlog), "--into", str(store), "--quiet"])
    assert again.stdout.strip() == "read 20 · imported 0 · duplicates 20 · quarantined 0"
    assert summary is not None
    original = pq.read_table(store_files(store)[0]).sort_by("txn_id")
    copied = pq.read_table(store_files(tmp_path / "b")[0]).sort_by("txn_id")
    for column in ("txn_id", "amount_minor", "legacy_reason", "legacy_fee_minor", "card_token"):
        assert copied[column].to_pylist() == original[column].to_pylist()


def test_unknown_legacy_codes_are_imported_counted_and_named(tmp_path, env):
    """Codes the table does not know: rows kept with reason unknown_code, codes listed per count."""
    rng = random.Random(5)
    rows = [_row(i, make_pan(rng), when=f"2026-10-01 10:00:{i:02d}",
                 code={3: "Z9", 4: "Z9", 7: "Q1"}.get(i, "00")) for i in range(10)]
    source = tmp_path / "codes.csv"
    source.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    result = CliRunner().invoke(app, ["import", str(source), "--into", str(tmp_path / "store"),
                                      "--mapping", str(MAPPING), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    total = json.loads(result.stdout)["total"]
    assert total["imported"] == 10 and total["unknown_codes"] == {"Q1": 1, "Z9": 2}
    assert "unknown legacy codes: Q1 x1, Z9 x2" in result.stderr
    table = pq.read_table(store_files(tmp_path / "store")[0])
    reasons = dict(zip(table["txn_id"].to_pylist(), table["legacy_reason"].to_pylist(), strict=True))
    assert [t for t, r in sorted(reasons.items()) if r == "unknown_code"] == ["P00003", "P00004",
                                                                             "P00007"]
