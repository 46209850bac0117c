"""`cutover shadow ...` end to end: output, --json and the exit codes users script against."""

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from cutover.cli import app
from cutover.errors import exit_code_for
from tests.ledger_support import expected_legacy_figures, make_diffs, write_run

CUTOVER = str(Path(sys.executable).with_name("cutover"))
runner = CliRunner()


def invoke(*args):
    """Run the CLI in process; return (exit code as cutover.cli.main maps it, stdout)."""
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return exit_code_for(result.exception), result.stdout
    return result.exit_code, result.stdout


@pytest.fixture
def applied_run(tmp_path):
    """A run of two parts, applied; returns (run dir, its DIFF tables)."""
    tables = [make_diffs(400, seed=11), make_diffs(400, seed=12, start=400)]
    run = write_run(tmp_path / "run", tables)
    code, stdout = invoke("shadow", "apply", str(run), "--quiet", "--json")
    assert code == 0, stdout
    return run, tables


def test_apply_reports_json_and_a_rerun_skips_every_part(applied_run):
    """apply --json counts parts and postings; the rerun applies nothing."""
    run, _ = applied_run
    code, stdout = invoke("shadow", "apply", str(run), "--quiet", "--json")
    payload = json.loads(stdout)
    assert code == 0 and payload["parts_skipped"] == 2 and payload["postings"] == 0


def test_verify_passes_then_fails_naming_the_tampered_entry_with_exit_1(applied_run):
    """verify exits 0 on an intact chain and 1 (real process) after a raw-SQL change."""
    run, _ = applied_run
    code, stdout = invoke("shadow", "verify", str(run))
    assert code == 0 and "chain intact" in stdout
    with sqlite3.connect(run / "ledger.db") as raw:
        raw.execute("UPDATE ledger_entries SET ts_us = ts_us + 1 WHERE seq = 5")
    proc = subprocess.run([CUTOVER, "shadow", "verify", str(run)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    assert "entry seq=5" in proc.stderr and "does not match its content" in proc.stderr


def _write_balance_file(path, figures):
    """Write the legacy end-of-day balance file with the real batch-file adapter."""
    from cutover.adapters.files import FileWriter, load_layout
    keys = sorted(figures)
    details = pa.table({"account_id": [k[0] for k in keys], "currency": [k[1] for k in keys],
                        "balance_minor": pa.array([figures[k] for k in keys], pa.int64())})
    with FileWriter(path, load_layout("legacy_balances")) as writer:
        writer.write("header", {"as_of": dt.date(2026, 10, 1)})
        writer.write("detail", details)
        writer.write("trailer", {"record_count": len(keys),
                                 "balance_total": sum(figures.values())})


def test_reconcile_zero_breaks_then_exactly_one_after_altering_a_balance(applied_run, tmp_path):
    """Matching figures give '0 breaks' (exit 0); one altered figure gives one break (exit 1)."""
    run, tables = applied_run
    figures = expected_legacy_figures(tables)
    eod = tmp_path / "balances.txt"
    _write_balance_file(eod, figures)
    code, stdout = invoke("shadow", "reconcile", str(run), "--legacy-balances", str(eod))
    assert code == 0 and "0 breaks" in stdout, stdout
    key = sorted(figures)[0]
    figures[key] += 100
    _write_balance_file(eod, figures)
    code, stdout = invoke("shadow", "reconcile", str(run), "--legacy-balances", str(eod),
                          "--json")
    breaks = json.loads(stdout)["breaks"]
    assert code == 1 and len(breaks) == 1
    assert breaks[0]["account"] == key[0] and breaks[0]["difference_minor"] == -100
    proc = subprocess.run([CUTOVER, "shadow", "reconcile", str(run), "--legacy-balances",
                           str(eod)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "1 breaks" in proc.stderr


def test_compare_and_balances_print_money_strings(applied_run):
    """compare --json has captured/fees/fraud per currency; balances lists accounts."""
    run, tables = applied_run
    code, stdout = invoke("shadow", "compare", str(run), "--json")
    rows = json.loads(stdout)["rows"]
    assert code == 0 and {r["measure"] for r in rows} == {"captured", "fees", "fraud_losses"}
    figures = expected_legacy_figures(tables)
    usd = next(r for r in rows if r["measure"] == "captured" and r["currency"] == "USD")
    assert usd["legacy_minor"] == sum(v for (a, c), v in figures.items()
                                      if a.startswith("MERCHANT_PAYABLE") and c == "USD")
    assert usd["legacy"].endswith(" USD")
    code, stdout = invoke("shadow", "balances", str(run), "--class", "FEE_EXPENSE", "--json")
    fees = json.loads(stdout)["balances"]
    assert code == 0 and fees and all(b["account"].startswith("FEE_EXPENSE:") for b in fees)


def test_unusable_input_exits_2(tmp_path):
    """A run dir without diffs/ or without a ledger is unusable input: exit 2, named."""
    (tmp_path / "empty").mkdir()
    code, _ = invoke("shadow", "apply", str(tmp_path / "empty"), "--quiet")
    assert code == 2
    proc = subprocess.run([CUTOVER, "shadow", "verify", str(tmp_path / "empty")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "has no ledger.db" in proc.stderr
