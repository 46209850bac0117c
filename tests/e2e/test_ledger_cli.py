"""`cutover shadow ...` end to end: output, --json and the exit codes users script against."""

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from tests.cli_support import invoke
from tests.ledger_support import expected_legacy_figures, make_diffs, write_run

CUTOVER = str(Path(sys.executable).with_name("cutover"))



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
    """compare --json has captured/fees/fraud/dispute losses per currency (this run has no
    report.json to hold them against); balances lists accounts."""
    run, tables = applied_run
    code, stdout = invoke("shadow", "compare", str(run), "--json")
    rows = json.loads(stdout)["rows"]
    assert code == 0 and {r["measure"] for r in rows} == {"captured", "fees", "fraud_losses",
                                                         "dispute_losses"}
    assert json.loads(stdout)["against_report"] is None
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


def test_reconcile_save_writes_the_file_the_tui_reads(applied_run, tmp_path):
    """--save leaves RUN_DIR/reconcile.json (breaks or not) that the TUI's ledger view loads."""
    from cutover.tui.views.ledger import default_ledger_url, read_ledger
    run, tables = applied_run
    figures = expected_legacy_figures(tables)
    key = sorted(figures)[-1]
    figures[key] -= 250
    eod = tmp_path / "balances.txt"
    _write_balance_file(eod, figures)
    code, stdout = invoke("shadow", "reconcile", str(run), "--legacy-balances", str(eod),
                          "--save")
    assert code == 1 and "1 breaks" in stdout
    view = read_ledger(default_ledger_url(run), run, with_verify=False)
    assert view.reconcile is not None and view.reconcile["ok"] is False
    assert view.reconcile["accounts_compared"] == len(figures)
    assert [(b["account"], b["currency"], b["difference_minor"])
            for b in view.reconcile["breaks"]] == [(key[0], key[1], 250)]
    # A later clean reconciliation replaces the saved result rather than adding to it.
    figures[key] += 250
    _write_balance_file(eod, figures)
    code, _ = invoke("shadow", "reconcile", str(run), "--legacy-balances", str(eod), "--save",
                     "--json")
    saved = json.loads((run / "reconcile.json").read_text(encoding="utf-8"))
    assert code == 0 and saved["breaks"] == [] and saved["ok"] is True
    assert not list(run.glob(".reconcile-*"))


def test_reconcile_save_without_run_dir_exits_2(applied_run, tmp_path):
    """--save with only --db has nowhere to write: exit 2 naming RUN_DIR, before any work."""
    run, _ = applied_run
    proc = subprocess.run([CUTOVER, "shadow", "reconcile", "--db", f"sqlite:///{run}/ledger.db",
                           "--legacy-balances", str(tmp_path / "missing.txt"), "--save"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "give the RUN_DIR" in proc.stderr


async def test_the_tui_hint_is_a_command_that_fills_the_ledger_screen(applied_run, tmp_path):
    """The Ledger screen's hint, run as written, makes the screen show the reconciliation."""
    import re

    from textual.widgets import Static

    from cutover.tui.app import CutoverApp
    from cutover.tui.config import TuiConfig
    from tests.tui_support import settle
    run, tables = applied_run
    eod = tmp_path / "balances.txt"
    _write_balance_file(eod, expected_legacy_figures(tables))

    async def reconcile_line() -> str:
        app = CutoverApp(TuiConfig(run_dir=run))
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            await pilot.press("l")
            await settle(pilot)
            return str(app.screen.query_one("#reconcile-line", Static).render())

    hint = await reconcile_line()
    command = re.search(r"`cutover ([^`]+)`", " ".join(hint.split()))
    assert command is not None, hint
    args = [{"RUN_DIR": str(run), "FILE": str(eod)}.get(a, a) for a in command.group(1).split()]
    code, _ = invoke(*args)
    assert code == 0
    assert f"0 breaks over {len(expected_legacy_figures(tables))} accounts" in \
        " ".join((await reconcile_line()).split())


def test_reconcile_refuses_a_balance_file_with_an_unreadable_line_naming_it(applied_run,
                                                                            tmp_path):
    """A line the layout cannot read makes the file partial: exit 2 naming line and reason."""
    run, tables = applied_run
    eod = tmp_path / "balances.txt"
    _write_balance_file(eod, expected_legacy_figures(tables))
    lines = eod.read_bytes().split(b"\n")
    lines.insert(1, b"Z" * 80)
    eod.write_bytes(b"\n".join(lines))
    proc = subprocess.run([CUTOVER, "shadow", "reconcile", str(run), "--legacy-balances",
                           str(eod)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "1 balance records could not be read (first: line 2" in proc.stderr
    assert "unknown record type" in proc.stderr and str(eod) in proc.stderr
