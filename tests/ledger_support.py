"""Shared helpers for the shadow-ledger tests: fake run directories and PostgreSQL schemas.

The replay engine writes ``RUN_DIR/diffs/part-NNNNNN.parquet``; these helpers build DIFF
tables directly (small, seeded, no card numbers) so the ledger is tested on its own.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import strategies as st

from cutover.domain import DIFF

PG_ENV = "CUTOVER_TEST_PG_URL"
PG_HOWTO = (f"set {PG_ENV} to run PostgreSQL tests, e.g. "
            f"{PG_ENV}=postgresql+psycopg://postgres@127.0.0.1:5432/test")
DECISIONS = ("approve", "decline", "review", "error")
ROUTES = ("GW_A", "GW_B", None)
CURRENCIES = ("USD", "EUR", "JPY")


def make_diffs(rows: int, seed: int = 0, start: int = 0, currencies=CURRENCIES,
               null_route_share: float = 0.05) -> pa.Table:
    """A DIFF table of ``rows`` seeded random outcomes for both sides."""
    rng = np.random.default_rng(seed)
    def pick(values, p=None):
        return [values[i] for i in rng.choice(len(values), rows, p=p)]
    legacy = pick(DECISIONS, [0.7, 0.2, 0.05, 0.05])
    candidate = pick(DECISIONS, [0.65, 0.25, 0.05, 0.05])
    category = ["quarantined" if x < 0.02 else "match" for x in rng.random(rows)]
    routes = ("GW_A", "GW_B")
    legacy_route = [None if x < null_route_share else routes[int(x * 100) % 2]
                    for x in rng.random(rows)]
    data = {
        "txn_id": [f"T{start + i:09d}" for i in range(rows)],
        "ts": pa.array((1_790_000_000_000_000 + (start + np.arange(rows)) * 1_000_000),
                       pa.timestamp("us", tz="UTC")),
        "category": category,
        "fields": [[] for _ in range(rows)],
        "expected": [False] * rows,
        "severity": ["none"] * rows,
        "amount_minor": rng.integers(1, 500_000, rows),
        "currency": pick(currencies),
        "merchant_id": [f"M{m:04d}" for m in rng.integers(0, 40, rows)],
        "customer_id": [f"C{c:05d}" for c in rng.integers(0, 2_000, rows)],
        "chargeback": (rng.random(rows) < 0.03).tolist(),
        "is_fraud": (rng.random(rows) < 0.04).tolist(),
        "legacy_decision": legacy,
        "legacy_route": legacy_route,
        "legacy_fee_minor": rng.integers(0, 300, rows),
        "candidate_decision": candidate,
        "candidate_route": pick(routes),
        "candidate_fee_minor": rng.integers(0, 300, rows),
    }
    return table_from(data)


def table_from(columns: dict) -> pa.Table:
    """A DIFF table from the given columns; the rest are null (or empty where required)."""
    rows = len(next(iter(columns.values())))
    defaults = {"fields": [[] for _ in range(rows)], "expected": [False] * rows,
                "severity": ["none"] * rows, "category": ["match"] * rows}
    arrays = {}
    for f in DIFF:
        if f.name in columns:
            arrays[f.name] = pa.array(columns[f.name], f.type)
        elif f.name in defaults:
            arrays[f.name] = pa.array(defaults[f.name], f.type)
        else:
            arrays[f.name] = pa.nulls(rows, f.type)
    return pa.Table.from_pydict(arrays, schema=DIFF)


def write_run(run_dir: Path, tables: list[pa.Table]) -> Path:
    """Write ``tables`` as RUN_DIR/diffs/part-000000.parquet, part-000001.parquet, ..."""
    folder = Path(run_dir) / "diffs"
    folder.mkdir(parents=True, exist_ok=True)
    for i, table in enumerate(tables):
        pq.write_table(table, folder / f"part-{i:06d}.parquet")
    return Path(run_dir)


def pg_base_url() -> str:
    """The PostgreSQL URL from the environment, or skip the test saying how to run it."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(PG_HOWTO)
    return url


def pg_schema_url(base_url: str) -> tuple[str, str]:
    """Create a fresh schema; return (url whose search_path is that schema, schema name)."""
    import sqlalchemy as sa
    schema = f"ledger_t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options=-csearch_path%3D{schema}", schema


def pg_drop_schema(base_url: str, schema: str) -> None:
    """Drop a schema made by ``pg_schema_url``."""
    import sqlalchemy as sa
    engine = sa.create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


def expected_legacy_figures(tables: list[pa.Table]) -> dict[tuple[str, str], int]:
    """The legacy balance file's figures computed row by row (an independent second path)."""
    figures: dict[tuple[str, str], int] = {}
    for table in tables:
        for row in table.to_pylist():
            if row["category"] == "quarantined" or row["legacy_decision"] != "approve":
                continue
            key = (f"MERCHANT_PAYABLE:{row['merchant_id']}", row["currency"])
            figures[key] = figures.get(key, 0) + row["amount_minor"]
            if row["legacy_fee_minor"]:
                fee_key = (f"FEE_EXPENSE:{row['legacy_route'] or 'UNROUTED'}", row["currency"])
                figures[fee_key] = figures.get(fee_key, 0) + row["legacy_fee_minor"]
    return figures


def ledger_counts(engine) -> dict[str, int]:
    """Row counts of the ledger's append-only tables."""
    import sqlalchemy as sa
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                for t in ("ledger_entries", "ledger_postings", "ledger_progress")}


#: One random outcome of both sides, for the property tests on SQLite and PostgreSQL.
OUTCOME = st.fixed_dictionaries({
    "legacy_decision": st.sampled_from(["approve", "decline", "review", "error", None]),
    "candidate_decision": st.sampled_from(["approve", "decline", "review", "error"]),
    "amount_minor": st.integers(1, 10**12), "currency": st.sampled_from(["USD", "JPY", "EUR"]),
    "legacy_route": st.sampled_from(["GW_A", "GW_B", None]),
    "candidate_route": st.sampled_from(["GW_A", None]),
    "legacy_fee_minor": st.integers(0, 5_000), "candidate_fee_minor": st.integers(0, 5_000),
    "chargeback": st.booleans(), "category": st.sampled_from(["match", "quarantined"]),
    "merchant_id": st.sampled_from(["M1", "M2"]), "customer_id": st.sampled_from(["C1", "C2"]),
})


def tables_from_outcomes(parts: list[list[dict]]) -> list[pa.Table]:
    """One DIFF table per list of OUTCOME rows, with txn ids unique across the tables."""
    tables, n = [], 0
    for rows in parts:
        cols = {k: [r[k] for r in rows] for k in rows[0]}
        cols["txn_id"] = [f"T{n + i:06d}" for i in range(len(rows))]
        n += len(rows)
        tables.append(table_from(cols))
    return tables


def check_apply_twice_equals_once(engine, run_dir: Path, tables: list[pa.Table]) -> None:
    """Apply ``tables`` as a run: books zero per currency, chain intact, mirror equal to the
    row-by-row figures; a second apply adds nothing."""
    from cutover.shadow.ledger.apply import apply_run
    from cutover.shadow.ledger.reconcile import compare_balances, mirror_balances
    from cutover.shadow.ledger.verify import verify_ledger
    run = write_run(run_dir, tables)
    first = apply_run(engine, run)
    counts = ledger_counts(engine)
    report = verify_ledger(engine)
    assert report.ok, report
    assert all(s["sum_minor"] == 0 for s in report.book_sums)
    assert counts["ledger_postings"] == first.postings == 2 * first.entries
    again = apply_run(engine, run)
    assert again.postings == 0 and again.parts_skipped == len(tables)
    assert ledger_counts(engine) == counts
    assert compare_balances(expected_legacy_figures(tables), mirror_balances(engine)) == []
