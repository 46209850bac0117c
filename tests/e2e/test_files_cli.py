"""End-to-end tests of `cutover files` and `cutover sim eod` through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cutover.cli import app
from cutover.store.traffic import write_day_partitions
from tests.files_support import REPO, ach_dir, traffic_table

runner = CliRunner()
CUTOVER = str(Path(sys.executable).with_name("cutover"))


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CUTOVER, *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


def test_layouts_json_lists_builtins():
    """`files layouts --json` prints one JSON line per built-in layout, exit 0."""
    result = runner.invoke(app, ["files", "layouts", "--json"])
    assert result.exit_code == 0
    names = [json.loads(line)["name"] for line in result.stdout.splitlines()]
    assert names == ["legacy_authlog", "legacy_balances", "legacy_settlement", "nacha"]


def test_inspect_good_file_exits_0():
    """A clean NACHA file prints its records and checks as JSON lines and exits 0."""
    result = runner.invoke(app, ["files", "inspect", str(ach_dir() / "web-debit.ach"),
                                 "--layout", "nacha", "--json", "--limit", "2"])
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    entries = [r for r in rows if r.get("record_type") == "entry"]
    checks = [r for r in rows if "control" in r]
    assert len(entries) == 2 and entries[0]["amount"] == 3521
    assert len(checks) == 16 and all(c["ok"] for c in checks)


def test_inspect_bad_control_total_exits_1_naming_it():
    """bad-control-total.ach exits 1 and stderr names the total with expected and actual."""
    result = _run("files", "inspect", str(ach_dir() / "bad-control-total.ach"), "-l", "nacha")
    assert result.returncode == 1
    assert "total_debit_amount in batch 1" in result.stderr
    assert "expected 100000001, actual 100000000" in result.stderr


def test_inspect_rejects_exit_1(tmp_path):
    """A file with a bad line exits 1, names the line on stderr and writes the rejects file."""
    lines = (ach_dir() / "ppd-debit.ach").read_bytes().splitlines()
    lines[2] = lines[2][:30] + b"00000X0000" + lines[2][40:]
    bad = tmp_path / "bad.ach"
    bad.write_bytes(b"\n".join(lines) + b"\n")
    rejects = tmp_path / "rejects.jsonl"
    result = _run("files", "inspect", str(bad), "-l", "nacha", "--rejects", str(rejects))
    assert result.returncode == 1
    assert "rejected line 3 (record type 6, entry, field amount, positions 30-39)" in result.stderr
    assert json.loads(rejects.read_text())["line"] == 3


def test_inspect_bad_input_exits_2(tmp_path):
    """A missing file or an unknown layout exits 2 with the reason on stderr."""
    missing = _run("files", "inspect", str(tmp_path / "nope.ach"), "-l", "nacha")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    layout = _run("files", "inspect", str(ach_dir() / "ppd-debit.ach"), "-l", "nope")
    assert layout.returncode == 2 and "no such built-in layout" in layout.stderr


def test_sim_eod_writes_both_files(tmp_path):
    """`sim eod STORE --out DIR --json` writes the two files and reports their counts."""
    write_day_partitions(traffic_table(120, seed=3, days=1), tmp_path / "store", "p")
    result = runner.invoke(app, ["sim", "eod", str(tmp_path / "store"), "--out",
                                 str(tmp_path / "eod"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["transactions"] == 120 and summary["as_of"] == "2026-10-01"
    assert Path(summary["authlog"]).is_file() and Path(summary["balances"]).is_file()
    inspected = _run("files", "inspect", summary["authlog"], "-l", "legacy_authlog", "--json")
    assert inspected.returncode == 0


def test_inspect_table_view_shows_records_and_checks():
    """Without --json, inspect prints a table per record type and the control table, exit 0."""
    result = runner.invoke(app, ["files", "inspect", str(ach_dir() / "return-WEB.ach"),
                                 "-l", "nacha"])
    assert result.exit_code == 0
    assert "addenda_99 (2 records)" in result.stdout and "control totals" in result.stdout
    assert "R01" in result.stdout and "FAIL" not in result.stdout


def test_inspect_delimited_file_exits_0_then_1_on_a_bad_column(tmp_path):
    """A pipe-delimited settlement report inspects clean (exit 0); a bad amount exits 1, named."""
    good = tmp_path / "settlement.txt"
    good.write_text("H|SETTLEMENT|20261003|GW_ATLAS\nD|T1|26276|1050|USD|D|25|411111|\n"
                    "T|1|1050\n")
    result = runner.invoke(app, ["files", "inspect", str(good), "-l", "legacy_settlement",
                                 "--json"])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0
    assert [r["amount_minor"] for r in rows if r.get("record_type") == "detail"] == [1050]
    bad = tmp_path / "bad.txt"
    bad.write_text(good.read_text().replace("|1050|USD", "|10.50|USD"))
    proc = _run("files", "inspect", str(bad), "-l", "legacy_settlement")
    assert proc.returncode == 1
    assert "rejected line 2 (record type D, detail, field amount_minor)" in proc.stderr


def test_inspect_levels_of_a_file_with_an_unknown_return_code():
    """return-r96.ach: --level layout exits 0; the default (all) exits 1 naming R96, its line,
    record type code, field and positions."""
    from tests.files_support import DATA_DIR

    path = str(DATA_DIR / "nacha" / "return-r96.ach")
    assert _run("files", "inspect", path, "-l", "nacha", "--level", "layout").returncode == 0
    proc = _run("files", "inspect", path, "-l", "nacha")
    assert proc.returncode == 1
    assert ("semantic error: line 4 (record type 799, field return_reason_code, positions"
            " 4-6): return reason code 'R96'") in proc.stderr
    assert "layout ok, structure ok, semantic invalid" in proc.stderr
    bad = _run("files", "inspect", path, "-l", "nacha", "--level", "fields")
    assert bad.returncode == 2 and "allowed values are all, layout, structure, semantic" in \
        bad.stderr


def test_inspect_masks_a_card_number_in_a_shr_entry(tmp_path):
    """An SHR entry carries the card account number at 55-76: inspect prints it masked."""
    from tests.files_support import nacha_file, small_ppd_lines

    lines = small_ppd_lines(1, sec="SHR")
    lines[2] = lines[2][:54] + "4111111111111111".ljust(22) + lines[2][76:]
    path = nacha_file(tmp_path / "shr.ach", lines)
    proc = _run("files", "inspect", str(path), "-l", "nacha", "--json")
    assert "4111111111111111" not in proc.stdout + proc.stderr
    assert proc.returncode == 0
