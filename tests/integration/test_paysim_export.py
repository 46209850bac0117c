"""A public dataset not made by cutover (a PaySim sample; tests/data/SOURCES.md) imports with a
column mapping using generated ids and hour offsets, trains and evaluates (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from tests.cli_support import run_cli

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "data" / "paysim_sample.csv"
MAPPING = ROOT / "cutover" / "fixtures" / "mappings" / "paysim_export.toml"


def test_paysim_imports_trains_and_evaluates(tmp_path):
    """203 rows imported (15 frauds), re-import imports none; train warns about labels without
    times and states it in the card; evaluate runs on the later window; --strict refuses."""
    store, models = tmp_path / "store", tmp_path / "models"
    code, stdout, error = run_cli(["import", SAMPLE, "--into", store, "--mapping", MAPPING,
                                   "--json", "--quiet"])
    assert code == 0, error
    assert json.loads(stdout)["total"]["imported"] == 203
    table = pq.read_table(store)
    assert table.num_rows == 203 and table["is_fraud"].to_pylist().count(True) == 15
    assert all(t.startswith("PS-") for t in table["txn_id"].to_pylist())
    assert set(table["mcc"].to_pylist()) == {"5999", "4829", "6011", "6012", "6010"}
    code, stdout, _ = run_cli(["import", SAMPLE, "--into", store, "--mapping", MAPPING, "--json",
                               "--quiet"])
    assert code == 0 and json.loads(stdout)["total"]["duplicates"] == 203
    code, stdout, error = run_cli(["train", store, "--models", models, "--until", "2026-09-20",
                                   "--json"])
    assert code == 0, error
    card = json.loads(stdout)
    assert card["checks"]["labels"]["label_times"] == "absent"
    assert "no label time" in error and "constant feature" in error
    code, stdout, error = run_cli(["evaluate", store, "--models", models, "--since",
                                   "2026-09-20", "--until", "2026-10-01", "--json"])
    assert code == 0, error
    assert json.loads(stdout)["sides"]["stack"]["rows"] > 0
    code, _, error = run_cli(["evaluate", store, "--models", models, "--since", "2026-09-10",
                              "--until", "2026-10-01", "--strict"])
    assert code == 1 and "before the end of model" in error
    code, _, error = run_cli(["train", store, "--models", tmp_path / "strict", "--until",
                              "2026-09-20", "--strict"])
    assert code == 1 and "--strict" in error and not (tmp_path / "strict" / "LATEST").exists()


def test_import_with_a_wrong_time_format_exits_1(tmp_path):
    """Every row quarantined (the mapping says ISO times, the file has hours): exit 1, with the
    expected format in the first reason."""
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(MAPPING.read_text().replace('format = "offset"', 'format = "iso"'))
    code, _, error = run_cli(["import", SAMPLE, "--into", tmp_path / "store", "--mapping", wrong,
                              "--quiet"])
    assert code == 1
    assert "203 of 203 records quarantined" in error
    assert "cannot read ts: expected ISO 8601 text" in error
