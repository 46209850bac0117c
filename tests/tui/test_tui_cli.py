"""`cutover tui`: its options, its refusal of a missing run, and a lazy Textual import."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from cutover.cli import app


def test_help_lists_the_options():
    """RUN_DIR, --plan-db, --ledger and --follow are all documented."""
    result = CliRunner().invoke(app, ["tui", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    for option in ("RUN_DIR", "--plan-db", "--ledger", "--follow"):
        assert option in result.output


def test_missing_run_dir_is_an_input_error(tmp_path):
    """A run directory that does not exist exits 2 (InputError) before any UI starts."""
    from cutover.errors import StoreError
    result = CliRunner().invoke(app, ["tui", str(tmp_path / "nope")])
    assert isinstance(result.exception, StoreError)
    assert "does not exist" in str(result.exception)


def test_cli_module_does_not_import_textual():
    """`cutover --help` stays fast: Textual loads only when the TUI starts."""
    code = "import sys, cutover.cli.tui; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
