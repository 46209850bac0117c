"""`cutover record` then `cutover import` of the cassette, against the simulated legacy core."""

from __future__ import annotations

import json
import random

from typer.testing import CliRunner

from cutover.cli import app
from cutover.errors import ConfigError
from cutover.store.traffic import count_rows
from tests.adapters_support import ROOT, make_pan, sample_txn, scan_for_pans

MAPPING = ROOT / "cutover" / "fixtures" / "mappings" / "legacy_auth.toml"


def _requests(path, n: int, prefix: str = "REC") -> None:
    rng = random.Random(11)
    lines = []
    for i in range(n):
        txn = sample_txn(i) | {"txn_id": f"{prefix}{i:05d}", "merchant_id": f"M_{prefix}"}
        txn["pan"] = make_pan(rng)
        txn["card_bin"] = txn["pan"][:6]
        del txn["card_token"]
        lines.append(json.dumps(txn, default=str))
    path.write_text("\n".join(lines) + "\n")


def test_record_refuses_without_key(tmp_path, monkeypatch):
    """No CUTOVER_TOKEN_KEY: record stops before any call, with the way to set the key."""
    monkeypatch.delenv("CUTOVER_TOKEN_KEY", raising=False)
    _requests(tmp_path / "r.jsonl", 1)
    result = CliRunner().invoke(app, ["record", "--mapping", str(MAPPING), "--requests",
                                      str(tmp_path / "r.jsonl"), "--out", str(tmp_path / "c.yaml")])
    assert isinstance(result.exception, ConfigError)
    assert "export CUTOVER_TOKEN_KEY" in str(result.exception)
    assert not (tmp_path / "c.yaml").exists()


def test_record_then_import_no_pan_anywhere(tmp_path, monkeypatch, legacy_core):
    """Record 12 calls, import the cassette (12 rows), re-import (12 duplicates); no PAN on disk."""
    monkeypatch.setenv("CUTOVER_TOKEN_KEY", "test-key-not-secret")
    requests_file = tmp_path / "in" / "r.jsonl"
    requests_file.parent.mkdir()
    _requests(requests_file, 12)
    out = tmp_path / "out" / "c.yaml"
    runner = CliRunner()
    rec = runner.invoke(app, ["record", "--mapping", str(MAPPING), "--wsdl", legacy_core.wsdl_url,
                              "--address", legacy_core.url, "--requests", str(requests_file),
                              "--out", str(out), "--json"])
    assert rec.exit_code == 0, rec.output
    assert json.loads(rec.stdout)["calls"] == 12
    store = tmp_path / "out" / "store"
    imp = runner.invoke(app, ["import", str(out), "--into", str(store), "--mapping", str(MAPPING),
                              "--quiet"])
    assert imp.exit_code == 0, imp.output
    assert imp.stdout.strip() == "read 12 · imported 12 · duplicates 0 · quarantined 0"
    assert count_rows(store) == 12
    again = runner.invoke(app, ["import", str(out), "--into", str(store), "--mapping",
                                str(MAPPING), "--quiet"])
    assert again.stdout.strip() == "read 12 · imported 0 · duplicates 12 · quarantined 0"
    assert scan_for_pans(tmp_path / "out") == []


def test_exit_codes_through_the_console_script(tmp_path):
    """Through .venv/bin/cutover: no key -> exit 2 with the hint; missing source -> exit 2."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "cutover"
    env = {k: v for k, v in os.environ.items() if k != "CUTOVER_TOKEN_KEY"}
    rec = subprocess.run([exe, "record", "--mapping", MAPPING, "--requests",
                          ROOT / "cutover" / "fixtures" / "requests" / "sample.jsonl", "--out",
                          tmp_path / "c.yaml"], env=env, capture_output=True, text=True, timeout=60)
    assert rec.returncode == 2 and "CUTOVER_TOKEN_KEY" in rec.stderr and rec.stdout == ""
    imp = subprocess.run([exe, "import", tmp_path / "missing.csv", "--into", tmp_path / "s"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert imp.returncode == 2 and "missing.csv: no such file" in imp.stderr


def test_record_demo_sample_from_store(tmp_path, monkeypatch, legacy_core):
    """--demo-sample 5 --store records exactly 5 calls from an imported store."""
    monkeypatch.setenv("CUTOVER_TOKEN_KEY", "test-key-not-secret")
    requests_file = tmp_path / "r.jsonl"
    _requests(requests_file, 7, prefix="DMO")
    runner = CliRunner()
    out = tmp_path / "c.yaml"
    rec = runner.invoke(app, ["record", "--mapping", str(MAPPING), "--wsdl", legacy_core.wsdl_url,
                              "--address", legacy_core.url, "--requests", str(requests_file),
                              "--out", str(out)])
    assert rec.exit_code == 0, rec.output
    store = tmp_path / "store"
    runner.invoke(app, ["import", str(out), "--into", str(store), "--mapping", str(MAPPING)])
    # A fresh core: the session's core already saw these txn ids with the PAN, and refuses the
    # same ids with the token as a different request (a fault, which record now counts).
    from cutover.sim.legacy_server import start_server
    fresh = start_server()
    try:
        sample = runner.invoke(app, ["record", "--mapping", str(MAPPING), "--wsdl",
                                     fresh.wsdl_url, "--address", fresh.url,
                                     "--demo-sample", "5", "--store", str(store), "--out",
                                     str(tmp_path / "d.yaml"), "--json"])
    finally:
        fresh.stop()
    assert sample.exit_code == 0, sample.output
    assert json.loads(sample.stdout)["calls"] == 5
    assert json.loads(sample.stdout)["failed_calls"] == {}
