"""The simulated legacy core's end-of-day export: the authorisation log and the balance file.

A real legacy core hands its day over as fixed-width files; the migration has to import them
and reconcile against them. This module makes the simulated core do the same from the traffic
store, through the batch file adapter and the shipped layouts, so the import and reconcile
paths are exercised on files written exactly as the layouts say.

Scope: with ``as_of`` the authorisation log holds that UTC day's transactions; without it, the
whole store, dated by its last day. Balances are cumulative up to the end of that day, computed
from the legacy side's own outcomes (``legacy_decision == "approve"``) as docs/contracts.md says.
With ``since`` they start from zero on that day: the books of a period, which is what a shadow
ledger that mirrors only a replay window (starting on ``since``) must reconcile against.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from cutover.adapters.files import FileWriter, load_layout
from cutover.store.traffic import BATCH_ROWS_DEFAULT, day_folders, iter_batches

#: The legacy trailer keeps the last 15 digits of the sum of BINs (see legacy_authlog.toml).
BIN_HASH_DIGITS: Final = 15
_DAY_PREFIX: Final = "day="


@dataclass(frozen=True)
class EodSummary:
    """What the export wrote: paths, the day, transaction and account counts, totals."""

    as_of: dt.date
    authlog_path: Path
    balances_path: Path
    transactions: int
    amount_total_minor: int
    accounts: int
    balance_total_minor: int


def _last_day(store_dir: Path) -> dt.date:
    return dt.date.fromisoformat(day_folders(store_dir)[-1].name[len(_DAY_PREFIX):])


def _day_bounds(as_of: dt.date) -> tuple[pa.Scalar, pa.Scalar]:
    start = dt.datetime.combine(as_of, dt.time(), tzinfo=dt.UTC)
    ts_type = pa.timestamp("us", tz="UTC")
    return pa.scalar(start, ts_type), pa.scalar(start + dt.timedelta(days=1), ts_type)


def balance_partials(batch: pa.RecordBatch | pa.Table) -> pa.Table:
    """Per (account_id, currency) sums of one batch's approved amounts and fees (pure)."""
    table = pa.table(batch) if isinstance(batch, pa.RecordBatch) else batch
    approved = table.filter(pc.equal(table["legacy_decision"], "approve"))
    merchants = approved.group_by(["merchant_id", "currency"]).aggregate([("amount_minor", "sum")])
    routed = approved.filter(pc.is_valid(approved["legacy_route"]))
    fees = routed.group_by(["legacy_route", "currency"]).aggregate([("legacy_fee_minor", "sum")])
    return pa.concat_tables([
        pa.table({"account_id": pc.binary_join_element_wise("MERCHANT_PAYABLE:",
                                                            merchants["merchant_id"], ""),
                  "currency": merchants["currency"],
                  "balance_minor": merchants["amount_minor_sum"].cast(pa.int64())}),
        pa.table({"account_id": pc.binary_join_element_wise("FEE_EXPENSE:",
                                                            fees["legacy_route"], ""),
                  "currency": fees["currency"],
                  "balance_minor": fees["legacy_fee_minor_sum"].cast(pa.int64())}),
    ])


def combine_balances(partials: list[pa.Table]) -> pa.Table:
    """Add up partial balances and sort by account then currency (pure)."""
    if not partials:
        return pa.table({"account_id": pa.array([], pa.string()),
                         "currency": pa.array([], pa.string()),
                         "balance_minor": pa.array([], pa.int64())})
    total = pa.concat_tables(partials).group_by(["account_id", "currency"]) \
        .aggregate([("balance_minor", "sum")]).rename_columns(["account_id", "currency",
                                                                "balance_minor"])
    return total.sort_by([("account_id", "ascending"), ("currency", "ascending")])


def _bin_sum(batch: pa.RecordBatch) -> int:
    bins = batch.column("card_bin")
    digits = pc.if_else(pc.ascii_is_decimal(bins), bins, "0")
    return int(pc.sum(pc.cast(digits, pa.int64())).as_py() or 0)


def export_eod(store_dir: str | Path, out_dir: str | Path, as_of: dt.date | None = None,
               batch_rows: int = BATCH_ROWS_DEFAULT, since: dt.date | None = None) -> EodSummary:
    """Write authlog_<date>.txt and balances_<date>.txt for ``as_of`` (or the whole store).

    ``since`` opens the balances on that day (period books) instead of the store's first day.
    """
    store_dir, out_dir = Path(store_dir), Path(out_dir)
    file_date = as_of or _last_day(store_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start, end = _day_bounds(file_date)
    day_filter = ds.field("ts") < end
    log_filter = day_filter & (ds.field("ts") >= start) if as_of else day_filter
    authlog = out_dir / f"authlog_{file_date:%Y%m%d}.txt"
    count = amount_total = bin_total = 0
    with FileWriter(authlog, load_layout("legacy_authlog")) as writer:
        writer.write("header", {"file_date": file_date, "sequence": 1})
        for batch in iter_batches(store_dir, batch_rows, filter_expr=log_filter):
            writer.write("detail", batch)
            count += batch.num_rows
            amount_total += int(pc.sum(batch.column("amount_minor")).as_py() or 0)
            bin_total += _bin_sum(batch)
        writer.write("trailer", {"record_count": count, "amount_total": amount_total,
                                 "hash_total": bin_total % 10**BIN_HASH_DIGITS})
    balance_filter = day_filter
    if since is not None:
        balance_filter = balance_filter & (ds.field("ts") >= _day_bounds(since)[0])
    columns = ["legacy_decision", "merchant_id", "currency", "amount_minor", "legacy_route",
               "legacy_fee_minor"]
    balances = combine_balances([balance_partials(b) for b in
                                 iter_batches(store_dir, batch_rows, columns, balance_filter)])
    return _write_balances(out_dir, file_date, authlog, count, amount_total, balances)


def _write_balances(out_dir: Path, file_date: dt.date, authlog: Path, count: int,
                    amount_total: int, balances: pa.Table) -> EodSummary:
    path = out_dir / f"balances_{file_date:%Y%m%d}.txt"
    balance_total = int(pc.sum(balances["balance_minor"]).as_py() or 0)
    with FileWriter(path, load_layout("legacy_balances")) as writer:
        writer.write("header", {"as_of": file_date})
        writer.write("detail", balances)
        writer.write("trailer", {"record_count": balances.num_rows,
                                 "balance_total": balance_total})
    return EodSummary(file_date, authlog, path, count, amount_total, balances.num_rows,
                      balance_total)
