"""Integration tests of the simulated legacy core's end-of-day export through real files."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from cutover.adapters.files import FileReader, load_layout, write_file
from cutover.sim.eod import export_eod
from cutover.store.traffic import write_day_partitions
from tests.files_support import traffic_table


def _read(path, layout_name):
    reader = FileReader(path, load_layout(layout_name))
    batches = list(reader.batches(batch_rows=100))
    return reader, batches


def _expected_balances(table: pa.Table) -> dict[tuple[str, str], int]:
    """The contract's balances computed straight from the store with pyarrow."""
    approved = table.filter(pc.equal(table["legacy_decision"], "approve"))
    out: dict[tuple[str, str], int] = {}
    merchants = approved.group_by(["merchant_id", "currency"]).aggregate([("amount_minor", "sum")])
    for row in merchants.to_pylist():
        out[(f"MERCHANT_PAYABLE:{row['merchant_id']}", row["currency"])] = row["amount_minor_sum"]
    routed = approved.filter(pc.is_valid(approved["legacy_route"]))
    fees = routed.group_by(["legacy_route", "currency"]).aggregate([("legacy_fee_minor", "sum")])
    for row in fees.to_pylist():
        out[(f"FEE_EXPENSE:{row['legacy_route']}", row["currency"])] = row["legacy_fee_minor_sum"]
    return out


def test_eod_export_reads_back_and_balances_match_store(tmp_path):
    """The authlog reads back clean with every transaction; balances equal a pyarrow sum."""
    table = traffic_table(700, seed=11, days=2)
    write_day_partitions(table, tmp_path / "store", "part-00000")
    summary = export_eod(tmp_path / "store", tmp_path / "eod")
    assert summary.as_of == dt.date(2026, 10, 2) and summary.transactions == 700
    reader, batches = _read(summary.authlog_path, "legacy_authlog")
    assert reader.report.rejected == 0 and all(c.ok for c in reader.report.checks)
    details = pa.Table.from_batches([b for t, b in batches if t == "detail"])
    back = details.sort_by("txn_id").drop_columns(["_line"])
    original = table.sort_by("txn_id").select(back.column_names)
    assert back.cast(original.schema).equals(original)
    reader, batches = _read(summary.balances_path, "legacy_balances")
    assert reader.report.rejected == 0 and all(c.ok for c in reader.report.checks)
    rows = pa.Table.from_batches([b for t, b in batches if t == "detail"]).to_pylist()
    got = {(r["account_id"], r["currency"]): r["balance_minor"] for r in rows}
    assert got == _expected_balances(table) and summary.accounts == len(got)


def test_eod_as_of_day_limits_the_log_not_the_balances(tmp_path):
    """With as_of the log holds that day only; balances run up to the end of that day."""
    table = traffic_table(400, seed=5, days=2)
    write_day_partitions(table, tmp_path / "store", "p")
    summary = export_eod(tmp_path / "store", tmp_path / "eod", as_of=dt.date(2026, 10, 1))
    first_day = table.filter(pc.less(table["ts"], pa.scalar(
        dt.datetime(2026, 10, 2, tzinfo=dt.UTC), pa.timestamp("us", tz="UTC"))))
    assert summary.transactions == first_day.num_rows < 400
    reader, batches = _read(summary.balances_path, "legacy_balances")
    rows = pa.Table.from_batches([b for t, b in batches if t == "detail"]).to_pylist()
    assert {(r["account_id"], r["currency"]): r["balance_minor"] for r in rows} == \
        _expected_balances(first_day)


def test_eod_since_opens_the_balances_on_that_day(tmp_path):
    """With since the balances hold only that day on: the books of a replay window."""
    table = traffic_table(400, seed=6, days=2)
    write_day_partitions(table, tmp_path / "store", "p")
    summary = export_eod(tmp_path / "store", tmp_path / "eod", since=dt.date(2026, 10, 2))
    second_day = table.filter(pc.greater_equal(table["ts"], pa.scalar(
        dt.datetime(2026, 10, 2, tzinfo=dt.UTC), pa.timestamp("us", tz="UTC"))))
    assert summary.transactions == 400 and 0 < second_day.num_rows < 400
    reader, batches = _read(summary.balances_path, "legacy_balances")
    rows = pa.Table.from_batches([b for t, b in batches if t == "detail"]).to_pylist()
    assert {(r["account_id"], r["currency"]): r["balance_minor"] for r in rows} == \
        _expected_balances(second_day)


def test_authlog_round_trips_byte_identical(tmp_path):
    """The exported authlog, read and written back, is byte-identical."""
    write_day_partitions(traffic_table(300, seed=2, days=1), tmp_path / "store", "p")
    summary = export_eod(tmp_path / "store", tmp_path / "eod")
    _, batches = _read(summary.authlog_path, "legacy_authlog")
    write_file(tmp_path / "copy.txt", load_layout("legacy_authlog"), batches)
    assert (tmp_path / "copy.txt").read_bytes() == summary.authlog_path.read_bytes()


def test_eod_missing_store_is_store_error(tmp_path):
    """Exporting from a directory that is not a store raises StoreError naming it."""
    import pytest

    from cutover.errors import StoreError

    with pytest.raises(StoreError, match="does not exist"):
        export_eod(tmp_path / "nowhere", tmp_path / "eod")


def test_reading_twice_gives_the_same_report(tmp_path):
    """Iterating a reader a second time starts over: same counts, same checks."""
    write_day_partitions(traffic_table(50, seed=9, days=1), tmp_path / "store", "p")
    summary = export_eod(tmp_path / "store", tmp_path / "eod")
    reader = FileReader(summary.balances_path, load_layout("legacy_balances"))
    list(reader.batches())
    first = (reader.report.read, reader.report.checks)
    list(reader.batches())
    assert (reader.report.read, reader.report.checks) == first and first[0] == summary.accounts + 2
