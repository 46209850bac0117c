"""The ledger's chain covers accounts and books, can be keyed, and can be pinned by an anchor."""

import shutil
import sqlite3

import pytest

from tests.cli_support import run_cli
from tests.ledger_support import make_diffs, write_run


def _applied(tmp_path, name="run", seed=21, env=None):
    """A one-part run applied to RUN/ledger.db; returns the run directory."""
    run = write_run(tmp_path / name, [make_diffs(300, seed=seed)])
    code, _, message = run_cli(["shadow", "apply", run, "--quiet"], env=env)
    assert code == 0, message
    return run


def test_changed_account_class_fails_verify(tmp_path):
    """Moving one account to another class (a measure) in raw SQL: verify exits 1."""
    run = _applied(tmp_path)
    with sqlite3.connect(run / "ledger.db") as raw:
        raw.execute("UPDATE ledger_accounts SET account_class = 'FEE_EXPENSE'"
                    " WHERE account_id = (SELECT MIN(account_id) FROM ledger_accounts)")
    code, _, message = run_cli(["shadow", "verify", run])
    assert code == 1 and "does not match its content" in message


def test_renamed_book_fails_verify(tmp_path):
    """Swapping the names of the two books in raw SQL: verify exits 1 naming the books."""
    run = _applied(tmp_path)
    with sqlite3.connect(run / "ledger.db") as raw:
        raw.execute("UPDATE ledger_books SET name = name || '_x'")
    code, _, message = run_cli(["shadow", "verify", run])
    assert code == 1 and "books table" in message


def test_keyed_chain_verifies_only_with_its_key(tmp_path):
    """Applied under CUTOVER_LEDGER_KEY: verify exits 0 with the key, 1 without or another."""
    keyed = {"CUTOVER_LEDGER_KEY": "ledger-key-for-tests"}
    run = _applied(tmp_path, env=keyed)
    assert run_cli(["shadow", "verify", run], env=keyed)[0] == 0
    code, _, message = run_cli(["shadow", "verify", run], env={"CUTOVER_LEDGER_KEY": ""})
    assert code == 1 and "CUTOVER_LEDGER_KEY" in message
    assert run_cli(["shadow", "verify", run], env={"CUTOVER_LEDGER_KEY": "other"})[0] == 1


def test_anchor_catches_a_ledger_rebuilt_with_cutovers_own_code(tmp_path):
    """A ledger rebuilt from other diffs verifies intact on its own, but not against the
    anchor exported before: exit 1 naming the anchor; the original passes with it."""
    run = _applied(tmp_path)
    anchor = tmp_path / "anchors" / "run.json"
    code, stdout, message = run_cli(["shadow", "anchor", run, "--out", anchor])
    assert code == 0 and anchor.is_file(), message
    assert run_cli(["shadow", "verify", run, "--anchor", anchor])[0] == 0
    forged = _applied(tmp_path, name="forged", seed=99)
    shutil.copy(forged / "ledger.db", run / "ledger.db")
    assert run_cli(["shadow", "verify", run])[0] == 0
    code, _, message = run_cli(["shadow", "verify", run, "--anchor", anchor])
    assert code == 1 and f"anchor {anchor}" in message


@pytest.mark.parametrize(("content", "fragment"), [
    ("not json", "cannot read an anchor"),
    ('{"version": 1, "head_seq": -3, "head_hash": "' + "0" * 64 + '"}', "head_seq"),
    ('{"version": 1, "head_seq": 3, "head_hash": "xyz"}', "head_hash"),
    ('{"version": 7}', "not an anchor of version 1"),
])
def test_unusable_anchor_is_exit_2(tmp_path, content, fragment):
    """A broken anchor file is unusable input (exit 2) naming the file and the field."""
    run = _applied(tmp_path)
    anchor = tmp_path / "a.json"
    anchor.write_text(content)
    code, _, message = run_cli(["shadow", "verify", run, "--anchor", anchor])
    assert code == 2 and str(anchor) in message and fragment in message
