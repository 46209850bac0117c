"""The shadow ledger on a real PostgreSQL (COPY path): apply, idempotence, tamper, reconcile."""

import json
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cutover.shadow.ledger.apply import apply_run
from cutover.shadow.ledger.reconcile import compare_balances, mirror_balances
from cutover.shadow.ledger.uow import make_engine
from cutover.shadow.ledger.verify import verify_ledger
from tests.ledger_support import (
    OUTCOME,
    check_apply_twice_equals_once,
    expected_legacy_figures,
    ledger_counts,
    make_diffs,
    pg_base_url,
    pg_drop_schema,
    pg_schema_url,
    tables_from_outcomes,
    write_run,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_engine():
    """An engine on a fresh schema, dropped afterwards."""
    base = pg_base_url()
    url, schema = pg_schema_url(base)
    engine = make_engine(url)
    yield engine
    engine.dispose()
    pg_drop_schema(base, schema)


def test_apply_verify_reapply_and_reconcile_on_postgres(tmp_path, pg_engine):
    """COPY writes a zero-sum, verifiable ledger that a reapply leaves unchanged."""
    tables = [make_diffs(800, seed=7), make_diffs(800, seed=8, start=800)]
    run = write_run(tmp_path, tables)
    first = apply_run(pg_engine, run)
    counts = ledger_counts(pg_engine)
    assert counts["ledger_postings"] == first.postings > 0
    assert verify_ledger(pg_engine).ok
    assert apply_run(pg_engine, run).postings == 0 and ledger_counts(pg_engine) == counts
    assert compare_balances(expected_legacy_figures(tables), mirror_balances(pg_engine)) == []


def test_lost_progress_and_tamper_on_postgres(tmp_path, pg_engine):
    """Without progress rows nothing posts twice; a raw UPDATE is named by verify."""
    run = write_run(tmp_path, [make_diffs(300, seed=9)])
    apply_run(pg_engine, run)
    counts = ledger_counts(pg_engine)
    with pg_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM ledger_progress"))
    assert apply_run(pg_engine, run).duplicates_skipped == counts["ledger_entries"]
    assert ledger_counts(pg_engine)["ledger_entries"] == counts["ledger_entries"]
    with pg_engine.begin() as conn:
        conn.execute(sa.text("UPDATE ledger_entries SET txn_id = 'FORGED' WHERE seq = 17"))
    found = verify_ledger(pg_engine).chain_break
    assert found is not None and (found.seq, found.txn_id) == (17, "FORGED")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(st.lists(OUTCOME, min_size=1, max_size=12), min_size=1, max_size=3))
def test_random_outcomes_keep_books_at_zero_and_apply_twice_equals_once_on_postgres(parts):
    """The SQLite property, through COPY: books zero per currency, reapply a no-op."""
    base = pg_base_url()
    url, schema = pg_schema_url(base)
    engine = make_engine(url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            check_apply_twice_equals_once(engine, Path(tmp), tables_from_outcomes(parts))
    finally:
        engine.dispose()
        pg_drop_schema(base, schema)


def test_cli_apply_verify_reconcile_and_save_with_a_postgres_url(tmp_path):
    """`shadow apply|verify|reconcile --db postgresql...`: exit 0, then 1 with the one break
    saved to RUN_DIR/reconcile.json."""
    import datetime as dt

    import pyarrow as pa

    from cutover.adapters.files import FileWriter, load_layout
    base = pg_base_url()
    url, schema = pg_schema_url(base)

    from tests.cli_support import invoke

    tables = [make_diffs(500, seed=31)]
    run = write_run(tmp_path / "run", tables)
    figures = expected_legacy_figures(tables)
    key = sorted(figures)[1]
    figures[key] += 5
    keys = sorted(figures)
    eod = tmp_path / "balances.txt"
    with FileWriter(eod, load_layout("legacy_balances")) as writer:
        writer.write("header", {"as_of": dt.date(2026, 10, 1)})
        writer.write("detail", pa.table({"account_id": [k[0] for k in keys],
                                         "currency": [k[1] for k in keys],
                                         "balance_minor": [figures[k] for k in keys]}))
        writer.write("trailer", {"record_count": len(keys),
                                 "balance_total": sum(figures.values())})
    try:
        code, stdout = invoke("shadow", "apply", str(run), "--db", url, "--quiet", "--json")
        assert code == 0 and json.loads(stdout)["postings"] > 0
        assert not (run / "ledger.db").exists()
        assert invoke("shadow", "verify", "--db", url)[0] == 0
        code, _ = invoke("shadow", "reconcile", str(run), "--db", url, "--legacy-balances",
                         str(eod), "--save")
        saved = json.loads((run / "reconcile.json").read_text(encoding="utf-8"))
        assert code == 1 and [(b["account"], b["currency"], b["difference_minor"])
                              for b in saved["breaks"]] == [(key[0], key[1], -5)]
    finally:
        pg_drop_schema(base, schema)
