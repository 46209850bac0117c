"""Paged, filtered queries over a run's diff store, read lazily with pyarrow.dataset.

A run can hold millions of rows, so nothing here loads a whole run: a page is the scanner's
``head`` (it stops reading once the page is full), a count reads only the filter's columns,
and a sorted page reads the sort key and txn id, picks the page's ids, then reads those rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from cutover.domain import CATEGORIES, DIFF, SEVERITIES
from cutover.stack.fx import load_fx, min_amount_minor, reference_amounts
from cutover.tui.views.run import part_files

#: Pseudo-categories of the category filter: the mismatches as docs/contracts.md defines them
#: (not match, not quarantined, not marked expected), or every row.
MISMATCHES: Final = "mismatches"
ALL: Final = "all"
CATEGORY_CHOICES: Final = (MISMATCHES, ALL, *CATEGORIES)
SEGMENT_DIMENSIONS: Final = ("merchant_id", "merchant_country", "channel", "mcc")
SORT_KEYS: Final = ("ts", "amount_minor", "severity", "category", "txn_id")
PAGE_ROWS_DEFAULT: Final = 50
PAGE_ROWS_MAX: Final = 500
#: Paging deeper than this many rows means the operator should filter instead; it also bounds
#: how much an unsorted page may read.
OFFSET_ROWS_MAX: Final = 2_000_000
#: Columns a table page shows; the detail screen reads the whole row separately.
PAGE_COLUMNS: Final = ("txn_id", "ts", "category", "fields", "expected", "severity",
                       "amount_minor", "currency", "merchant_id", "merchant_country", "channel",
                       "mcc", "legacy_decision", "candidate_decision")


@dataclass(frozen=True)
class DiffQuery:
    """What the Diffs screen asks for; every field is a filter, a sort or the page."""

    category: str = MISMATCHES
    segment: tuple[str, str] | None = None
    min_amount_minor: int | None = None
    txn_id: str | None = None
    #: Amount at least this much of the indicative reference currency (cutover.stack.fx).
    min_amount_ref: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    sort: str | None = None
    descending: bool = False
    page: int = 0
    page_rows: int = PAGE_ROWS_DEFAULT

    def __post_init__(self) -> None:
        if self.category not in CATEGORY_CHOICES:
            raise ValueError(f"unknown category {self.category!r}")
        if self.sort is not None and self.sort not in SORT_KEYS:
            raise ValueError(f"cannot sort by {self.sort!r}; one of {', '.join(SORT_KEYS)}")
        if not 0 < self.page_rows <= PAGE_ROWS_MAX or self.page < 0:
            raise ValueError(f"page {self.page} of {self.page_rows} rows is out of range")

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return self.page * self.page_rows

    def with_page(self, page: int) -> DiffQuery:
        """The same query on another page (never below the first)."""
        return replace(self, page=max(page, 0))


def parse_segment(text: str) -> tuple[str, str] | None:
    """``"merchant_id=M0001"`` -> ("merchant_id", "M0001"); empty text -> None."""
    text = text.strip()
    if not text:
        return None
    dimension, sep, value = text.partition("=")
    dimension, value = dimension.strip(), value.strip()
    if not sep or dimension not in SEGMENT_DIMENSIONS or not value:
        raise ValueError(f"segment must be DIMENSION=VALUE with DIMENSION one of"
                         f" {', '.join(SEGMENT_DIMENSIONS)}")
    return dimension, value


def open_diffs(run_dir: Path) -> ds.Dataset | None:
    """The run's committed diffs parts as one dataset, or None before the first part."""
    parts = part_files(run_dir)
    if not parts:
        return None
    # The schema is given, so opening never reads every part's footer to infer it.
    return ds.dataset([str(p) for p in parts], schema=DIFF, format="parquet")


def filter_expression(query: DiffQuery) -> ds.Expression | None:
    """The row filter of ``query`` as a dataset expression (None: every row)."""
    terms = []
    if query.category == MISMATCHES:
        terms.append(~ds.field("category").isin(["match", "quarantined"]))
        terms.append(ds.field("expected") == False)  # noqa: E712 - an Arrow expression
    elif query.category != ALL:
        terms.append(ds.field("category") == query.category)
    if query.segment is not None:
        terms.append(ds.field(query.segment[0]) == query.segment[1])
    if query.min_amount_minor is not None:
        terms.append(ds.field("amount_minor") >= query.min_amount_minor)
    if query.txn_id:
        terms.append(pc.match_substring(ds.field("txn_id"), query.txn_id))
    if query.min_amount_ref is not None:
        terms.append(_reference_amount_at_least(query.min_amount_ref))
    if query.since is not None:
        terms.append(ds.field("ts") >= pa.scalar(query.since, DIFF.field("ts").type))
    if query.until is not None:
        terms.append(ds.field("ts") < pa.scalar(query.until, DIFF.field("ts").type))
    if not terms:
        return None
    combined = terms[0]
    for term in terms[1:]:
        combined = combined & term
    return combined


def _reference_amount_at_least(reference_major: float) -> ds.Expression:
    """Rows worth at least ``reference_major`` at the indicative rates: one threshold per
    currency in its own minor units, so the filter pushes down to the Parquet scan."""
    thresholds = min_amount_minor(load_fx(), reference_major)
    expression = None
    for currency, minor in sorted(thresholds.items()):
        term = (ds.field("currency") == currency) & (ds.field("amount_minor") >= minor)
        expression = term if expression is None else expression | term
    return expression if expression is not None else ds.scalar(False)


def sort_key(keys: pa.Table, sort: str) -> pa.Array | np.ndarray:
    """The column a page is ordered by: amounts by their indicative reference value (minor
    units of different currencies do not compare), severities by rank."""
    if sort == "amount_minor":
        amount = pc.fill_null(keys["amount_minor"], 0).to_numpy(zero_copy_only=False)
        return reference_amounts(load_fx(), amount, keys["currency"])
    if sort == "severity":
        return pc.index_in(keys["severity"], value_set=pa.array(SEVERITIES))
    return keys[sort]


def count_rows(dataset: ds.Dataset, query: DiffQuery) -> int:
    """Rows matching the query's filter (reads only the filtered columns)."""
    return dataset.count_rows(filter=filter_expression(query))


def page(dataset: ds.Dataset, query: DiffQuery) -> pa.Table:
    """The rows of ``query``'s page, PAGE_COLUMNS only, in the query's order."""
    if query.offset > OFFSET_ROWS_MAX:
        raise ValueError(f"page {query.page + 1} starts past row {OFFSET_ROWS_MAX:,}; filter instead")
    expression = filter_expression(query)
    if query.sort is None:
        scanner = dataset.scanner(columns=list(PAGE_COLUMNS), filter=expression)
        return scanner.head(query.offset + query.page_rows).slice(query.offset)
    wanted_columns = {query.sort, "txn_id"} | ({"currency"} if query.sort == "amount_minor"
                                               else set())
    keys = dataset.to_table(columns=sorted(wanted_columns), filter=expression)
    order = "descending" if query.descending else "ascending"
    sort_column = sort_key(keys, query.sort)
    # Arrow's sort is stable, so ties keep batch order: the same query always pages the same
    # way, without paying for a string tie-break on a million txn ids.
    indices = pc.sort_indices(pa.table({"key": sort_column}), sort_keys=[("key", order)])
    wanted = keys["txn_id"].take(indices[query.offset:query.offset + query.page_rows])
    if len(wanted) == 0:
        return pa.table({c: pa.array([], DIFF.field(c).type) for c in PAGE_COLUMNS})
    rows = dataset.to_table(columns=list(PAGE_COLUMNS),
                            filter=ds.field("txn_id").isin(wanted))
    position = pc.index_in(rows["txn_id"], value_set=wanted)
    return rows.take(pc.sort_indices(position))


def find_row(run_dir: Path, txn_id: str, folder: str = "diffs") -> dict[str, object] | None:
    """The whole row of one transaction in ``folder`` (diffs or decisions), or None."""
    parts = part_files(run_dir, folder)
    if not parts:
        return None
    schema = pq.read_schema(parts[0])
    dataset = ds.dataset([str(p) for p in parts], schema=schema, format="parquet")
    found = dataset.scanner(filter=ds.field("txn_id") == txn_id).head(1)
    return found.to_pylist()[0] if found.num_rows else None
