"""The shadow ledger on a real PostgreSQL (COPY path): apply, idempotence, tamper, reconcile."""

import pytest
import sqlalchemy as sa

from cutover.shadow.ledger.apply import apply_run
from cutover.shadow.ledger.reconcile import compare_balances, mirror_balances
from cutover.shadow.ledger.uow import make_engine
from cutover.shadow.ledger.verify import verify_ledger
from tests.ledger_support import (
    expected_legacy_figures,
    ledger_counts,
    make_diffs,
    pg_base_url,
    pg_drop_schema,
    pg_schema_url,
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
