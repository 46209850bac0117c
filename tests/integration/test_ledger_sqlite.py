"""The shadow ledger on a real SQLite file: apply, idempotence, chain, reversal, reconcile."""

import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cutover.errors import LedgerError
from cutover.shadow.ledger.apply import apply_run
from cutover.shadow.ledger.corrections import reverse
from cutover.shadow.ledger.reconcile import compare_balances, mirror_balances
from cutover.shadow.ledger.uow import default_url, make_engine
from cutover.shadow.ledger.verify import verify_ledger
from tests.ledger_support import (
    OUTCOME,
    check_apply_twice_equals_once,
    expected_legacy_figures,
    ledger_counts,
    make_diffs,
    table_from,
    tables_from_outcomes,
    write_run,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(st.lists(OUTCOME, min_size=1, max_size=12), min_size=1, max_size=3))
def test_random_outcomes_keep_books_at_zero_and_apply_twice_equals_once(parts):
    """Any outcome sequence: books sum to zero per currency, chain intact, reapply is a no-op."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        engine = make_engine(default_url(run))
        check_apply_twice_equals_once(engine, run, tables_from_outcomes(parts))
        engine.dispose()


def test_lost_progress_rows_still_never_post_twice(tmp_path):
    """With progress rows deleted, the unique key makes a reapply skip every entry."""
    tables = [make_diffs(300, seed=1), make_diffs(300, seed=2, start=300)]
    run = write_run(tmp_path, tables)
    engine = make_engine(default_url(run))
    apply_run(engine, run)
    before = ledger_counts(engine)
    with sqlite3.connect(run / "ledger.db") as raw:
        raw.execute("DELETE FROM ledger_progress")
    again = apply_run(engine, run)
    assert again.postings == 0 and again.duplicates_skipped == before["ledger_entries"]
    assert ledger_counts(engine) == before
    assert verify_ledger(engine).ok


def test_raw_sql_tamper_is_named_by_verify(tmp_path):
    """Changing one posting's amount behind the ledger's back breaks the chain at that entry."""
    run = write_run(tmp_path, [make_diffs(200, seed=3)])
    engine = make_engine(default_url(run))
    apply_run(engine, run)
    with sqlite3.connect(run / "ledger.db") as raw:
        seq, txn, kind = raw.execute("SELECT seq, txn_id, kind FROM ledger_entries"
                                     " WHERE seq = 42").fetchone()
        raw.execute("UPDATE ledger_postings SET amount_minor = amount_minor + 1"
                    " WHERE entry_seq = 42 AND line = 1")
        raw.execute("UPDATE ledger_postings SET amount_minor = amount_minor - 1"
                    " WHERE entry_seq = 42 AND line = 2")
    found = verify_ledger(engine).chain_break
    assert found is not None and (found.seq, found.txn_id, found.kind) == (42, txn, kind)
    assert "content" in found.reason


def test_balances_equal_postings_and_drift_is_reported(tmp_path):
    """After apply balances equal postings; a raw change to a balance shows as drift."""
    run = write_run(tmp_path, [make_diffs(400, seed=4)])
    engine = make_engine(default_url(run))
    apply_run(engine, run)
    assert verify_ledger(engine).balance_drift == []
    with sqlite3.connect(run / "ledger.db") as raw:
        raw.execute("UPDATE ledger_balances SET balance_minor = balance_minor + 5"
                    " WHERE (book_id, account_id) IN"
                    " (SELECT book_id, account_id FROM ledger_balances LIMIT 1)")
    drift = verify_ledger(engine).balance_drift
    assert len(drift) == 1 and drift[0]["stored_minor"] - drift[0]["postings_minor"] == 5


def test_reverse_posts_the_negation_once(tmp_path):
    """A reversal zeroes the entry's effect, keeps the chain intact and cannot repeat."""
    table = table_from({"txn_id": ["T1"], "amount_minor": [700], "currency": ["USD"],
                        "merchant_id": ["M1"], "customer_id": ["C1"],
                        "legacy_decision": ["approve"], "legacy_route": ["GW_A"],
                        "legacy_fee_minor": [0]})
    run = write_run(tmp_path, [table])
    engine = make_engine(default_url(run))
    apply_run(engine, run)
    assert mirror_balances(engine)[("MERCHANT_PAYABLE:M1", "USD")] == 700
    seq = reverse(engine, "legacy", "T1", "capture")
    assert seq == 3
    assert mirror_balances(engine)[("MERCHANT_PAYABLE:M1", "USD")] == 0
    assert verify_ledger(engine).ok
    with pytest.raises(LedgerError, match="already reversed"):
        reverse(engine, "legacy", "T1", "capture")
    with pytest.raises(LedgerError, match="no entry"):
        reverse(engine, "legacy", "T9", "capture")


def test_one_altered_figure_gives_exactly_one_break(tmp_path):
    """The mirror matches the independently computed legacy figures; altering one breaks one."""
    tables = [make_diffs(500, seed=5)]
    run = write_run(tmp_path, tables)
    engine = make_engine(default_url(run))
    apply_run(engine, run)
    figures = expected_legacy_figures(tables)
    assert compare_balances(figures, mirror_balances(engine)) == []
    key = sorted(figures)[0]
    figures[key] += 1
    breaks = compare_balances(figures, mirror_balances(engine))
    assert [(b.account, b.difference_minor) for b in breaks] == [(key[0], -1)]


def test_deleting_the_last_entries_is_caught_by_the_recorded_head(tmp_path):
    """A truncated tail leaves a valid-looking chain; the recorded head exposes it."""
    run = write_run(tmp_path, [make_diffs(100, seed=6)])
    engine = make_engine(default_url(run))
    apply_run(engine, run)
    with sqlite3.connect(run / "ledger.db") as raw:
        last = raw.execute("SELECT MAX(seq) FROM ledger_entries").fetchone()[0]
        raw.execute("DELETE FROM ledger_postings WHERE entry_seq = ?", (last,))
        raw.execute("DELETE FROM ledger_entries WHERE seq = ?", (last,))
    found = verify_ledger(engine).chain_break
    assert found is not None and found.seq == last and "missing" in found.reason


def test_an_apply_resumed_part_by_part_builds_the_same_chain(tmp_path):
    """Applying two parts, then all four, ends on the same head hash as one apply of four."""
    tables = [make_diffs(200, seed=s, start=200 * s) for s in range(4)]
    whole = write_run(tmp_path / "whole", tables)
    resumed = write_run(tmp_path / "resumed", tables[:2])
    apply_run(make_engine(default_url(resumed)), resumed)
    write_run(tmp_path / "resumed2", tables)  # the other two parts arrive later
    for i in (2, 3):
        (tmp_path / "resumed2" / "diffs" / f"part-{i:06d}.parquet").rename(
            resumed / "diffs" / f"part-{i:06d}.parquet")
    second = apply_run(make_engine(default_url(resumed)), resumed)
    apply_run(make_engine(default_url(whole)), whole)
    assert second.parts_skipped == 2 and second.parts_applied == 2

    def head(run):
        with sqlite3.connect(run / "ledger.db") as raw:
            return raw.execute("SELECT seq, hash FROM ledger_entries"
                               " ORDER BY seq DESC LIMIT 1").fetchone()
    assert head(resumed) == head(whole)


def test_entries_and_postings_are_only_ever_inserted(tmp_path):
    """Every SQL statement SQLite runs for apply, re-apply and a reversal is traced: none
    updates, deletes or replaces a row of ledger_entries or ledger_postings."""
    import re

    from sqlalchemy import event
    statements: list[str] = []
    run = write_run(tmp_path, [make_diffs(300, seed=21), make_diffs(300, seed=22, start=300)])
    engine = make_engine(default_url(run))
    event.listen(engine, "connect",
                 lambda dbapi, _record: dbapi.set_trace_callback(statements.append))
    apply_run(engine, run)
    apply_run(engine, run)
    approved = make_diffs(300, seed=21).to_pylist()
    txn = next(r["txn_id"] for r in approved
               if r["legacy_decision"] == "approve" and r["category"] != "quarantined")
    reverse(engine, "legacy", txn, "capture")
    engine.dispose()
    writes = re.compile(r"^\s*(UPDATE|DELETE\s+FROM|REPLACE|INSERT\s+OR\s+REPLACE|DROP|ALTER)"
                        r"\s+\"?(ledger_entries|ledger_postings)\b", re.IGNORECASE)
    assert len(statements) > 20 and any("ledger_postings" in s for s in statements)
    assert [s for s in statements if writes.search(s)] == []
    assert verify_ledger(make_engine(default_url(run))).ok
