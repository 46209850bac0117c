"""Diffs: the mismatches of a run, one page at a time, filtered, sorted and searched.

The table holds one page (PAGE_ROWS_DEFAULT rows); each filter change or page turn runs a
query in a worker. The page and the total count are separate workers, so on a run of a
million rows the first page appears before the count has finished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final

import pyarrow as pa
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Select, Static
from textual.worker import get_current_worker

from cutover.tui import format as fmt
from cutover.tui.screens.base import RunScreen, screen_keys_unlisted
from cutover.tui.screens.detail import DetailScreen
from cutover.tui.screens.feedback import FeedbackScreen
from cutover.tui.views.diffs import (
    CATEGORY_CHOICES,
    MISMATCHES,
    SORT_KEYS,
    DiffQuery,
    count_rows,
    open_diffs,
    page,
    parse_segment,
)
from cutover.tui.widgets.tables import fill

#: How a sort key reads in the status line: amounts sort by their indicative USD value.
SORT_LABELS: Final = {"amount_minor": "amount (USD indicative)"}
#: Keys pressed in quick succession (s, s, v) run one query, not three.
QUERY_DEBOUNCE_S: Final = 0.15
#: The columns that tell one mismatch from another come first, so 80 columns show them.
COLUMNS: Final = (("txn_id", "txn"), ("category", "category"), ("fields", "fields"),
                  ("amount", "amount"), ("legacy", "legacy"), ("candidate", "candidate"),
                  ("segment", "merchant/country/channel"), ("severity", "sev"),
                  ("ts", "ts (UTC)"))


class DiffsScreen(RunScreen):
    """A paged table over the diff store."""

    TITLE = "Diffs"
    # Ordered by how often an operator needs them; the key bar shows what fits in 80 columns
    # (a pilot test checks it is not cut) and help (?) lists every key.
    BINDINGS = [
        Binding("e", "mark_expected", "Expected", id="diffs.mark_expected"),
        Binding("slash", "search", "Find", id="diffs.search"),
        Binding("f", "filters", "Filter", id="diffs.filters"),
        Binding("s", "cycle_sort", "Sort", id="diffs.sort"),
        Binding("v", "reverse", "Rev", id="diffs.reverse", show=False),
        Binding("right_square_bracket", "page(1)", "Next", id="diffs.next_page"),
        Binding("left_square_bracket", "page(-1)", "Prev", id="diffs.prev_page", show=False),
        # From the filter bar back to the table, where Enter opens the detail.
        Binding("escape", "to_table", "Table", id="diffs.to_table", show=False),
        *screen_keys_unlisted("diffs"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.diff_query = DiffQuery()
        self.shown_query: DiffQuery | None = None
        self.failed_query: DiffQuery | None = None
        self._pending: Timer | None = None
        self.total: int | None = None
        self.page_txn_ids: list[str] = []
        self.page_rows: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="filters"):
            yield Select([(c, c) for c in CATEGORY_CHOICES], value=MISMATCHES,
                         allow_blank=False, id="category")
            yield Input(placeholder="segment k=v", id="segment")
            yield Input(placeholder="min USD", id="min-amount", type="number")
            yield Input(placeholder="txn id", id="txn-search")
        yield DataTable(id="diffs", cursor_type="row", zebra_stripes=True)
        yield Static("reading…", markup=False, id="diffs-status")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one("#diffs", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        # The table, not the filter bar, has focus, so Enter opens the row under the cursor.
        table.focus()

    @property
    def busy(self) -> bool:
        """True until the page and the count of the current query are both on screen."""
        if self.failed_query == self.diff_query:
            return False
        return self.shown_query != self.diff_query or self.total is None

    # -- queries ---------------------------------------------------------------------------

    def load(self) -> None:
        self._page_worker(self.diff_query)
        self._count_worker(self.diff_query)

    def set_query(self, query: DiffQuery) -> None:
        """Run ``query`` from its first row count; keeps the table until the page arrives."""
        if replace(query, page=0, sort=None, descending=False) != replace(
                self.diff_query, page=0, sort=None, descending=False):
            self.total = None
        self.diff_query = query
        if self._pending is not None:
            self._pending.stop()
        self._pending = self.set_timer(QUERY_DEBOUNCE_S, self.load)

    @work(thread=True, exclusive=True, group="diffs-page", exit_on_error=False)
    def _page_worker(self, query: DiffQuery) -> None:
        self._query_in_worker(query, lambda ds: page(ds, query) if ds is not None else None,
                              self.show_page)

    @work(thread=True, exclusive=True, group="diffs-count", exit_on_error=False)
    def _count_worker(self, query: DiffQuery) -> None:
        self._query_in_worker(query, lambda ds: count_rows(ds, query) if ds is not None else 0,
                              self.show_count)

    def _query_in_worker(self, query: DiffQuery, compute: Callable[[Any], Any],
                         deliver: Callable[[DiffQuery, Any], None]) -> None:
        """Run ``compute`` on the run's diffs (in the calling worker thread) and hand the
        result, or the error, to the UI thread unless a newer query cancelled this one."""
        worker = get_current_worker()
        try:
            result = compute(open_diffs(self.tui.config.run_dir))
        except Exception as exc:  # noqa: BLE001 - shown to the operator; the UI must stay up
            if not worker.is_cancelled:
                self.app.call_from_thread(self.query_failed, query, exc)
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(deliver, query, result)

    # -- rendering -------------------------------------------------------------------------

    def show_page(self, query: DiffQuery, rows: pa.Table | None) -> None:
        """Replace the table's rows with one page."""
        if query != self.diff_query:
            return  # an older query finished after a newer one was asked for
        table = self.query_one("#diffs", DataTable)
        # A reload of the same page (follow mode, back from Detail) keeps the cursor's row.
        keep_row = table.cursor_row if query == self.shown_query else 0
        self.shown_query = query
        self.page_rows = rows.to_pylist() if rows is not None else []
        self.page_txn_ids = [r["txn_id"] for r in self.page_rows]
        fill(table, [table_cells(r) for r in self.page_rows], keys=self.page_txn_ids)
        if self.page_rows:
            table.move_cursor(row=min(keep_row, len(self.page_rows) - 1), animate=False)
        self._update_status()

    def show_count(self, query: DiffQuery, total: int) -> None:
        """Show how many rows match the filter."""
        if replace(query, page=0) != replace(self.diff_query, page=0):
            return
        self.total = total
        self._update_status()

    def query_failed(self, query: DiffQuery, exc: Exception) -> None:
        """Say why a query failed; the table keeps what it showed."""
        self.failed_query = query
        self.show_error(f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError)
                        else str(exc))

    def show_error(self, text: str) -> None:
        self.query_one("#diffs-status", Static).update(f"! {text}")

    def _update_status(self) -> None:
        self.query_one("#diffs-status", Static).update(status_line(
            self.diff_query, len(self.page_rows), self.total))

    # -- filters ---------------------------------------------------------------------------

    def apply_filters(self, category: str | None, segment: tuple[str, str] | None) -> None:
        """Filter from outside (Overview, palette): a fresh query of that category and
        segment (an old search or amount would hide its rows), shown in the filter bar."""
        query = DiffQuery(category=category or self.diff_query.category, segment=segment,
                          sort=self.diff_query.sort, descending=self.diff_query.descending)
        self.set_query(query)
        # The query is set first, so the Select's change event finds nothing to do.
        self.query_one("#category", Select).value = query.category
        self.query_one("#segment", Input).value = "=".join(segment) if segment else ""
        self.query_one("#min-amount", Input).value = ""
        self.query_one("#txn-search", Input).value = ""
        self.action_to_table()

    @on(Select.Changed, "#category")
    def _category_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.diff_query.category:
            self.set_query(replace(self.diff_query, category=event.value, page=0))
            self.action_to_table()

    @on(Input.Submitted, "#segment")
    def _segment_submitted(self, event: Input.Submitted) -> None:
        try:
            segment = parse_segment(event.value)
        except ValueError as exc:
            self.show_error(str(exc))
            return
        self.set_query(replace(self.diff_query, segment=segment, page=0))
        self.action_to_table()

    @on(Input.Submitted, "#min-amount")
    def _amount_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        try:
            amount = float(text) if text else None
        except ValueError:
            amount = -1.0
        if amount is not None and not 0 <= amount < float("inf"):
            self.show_error("min amount is a number >= 0 of US dollars (indicative rates)")
            return
        # Minor units of different currencies do not compare: the filter is in indicative USD.
        self.set_query(replace(self.diff_query, min_amount_ref=amount, page=0))
        self.action_to_table()

    @on(Input.Submitted, "#txn-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        self.set_query(replace(self.diff_query, txn_id=event.value.strip() or None, page=0))
        self.query_one("#diffs", DataTable).focus()

    # -- actions ---------------------------------------------------------------------------

    def action_page(self, step: int) -> None:
        """Turn ``step`` pages, staying within the rows the count found."""
        target = self.diff_query.page + step
        if target < 0:
            return
        if self.total is not None and target * self.diff_query.page_rows >= self.total:
            return
        self.set_query(self.diff_query.with_page(target))

    def action_cycle_sort(self) -> None:
        """Sort by the next key: file order, then each of SORT_KEYS."""
        order = (None, *SORT_KEYS)
        following = order[(order.index(self.diff_query.sort) + 1) % len(order)]
        self.set_query(replace(self.diff_query, sort=following, page=0))

    def action_reverse(self) -> None:
        """Flip the sort direction."""
        self.set_query(replace(self.diff_query, descending=not self.diff_query.descending,
                               page=0, sort=self.diff_query.sort or "ts"))

    def action_search(self) -> None:
        """Jump to the txn id search box."""
        self.query_one("#txn-search", Input).focus()

    def action_filters(self) -> None:
        """Jump to the filter bar."""
        self.query_one("#category", Select).focus()

    def action_to_table(self) -> None:
        """Back to the table (escape in the filter bar; after a filter is applied)."""
        self.query_one("#diffs", DataTable).focus()

    def selected_row(self) -> dict[str, Any] | None:
        """The page row under the cursor."""
        table = self.query_one("#diffs", DataTable)
        if not self.page_rows or table.cursor_row is None:
            return None
        return self.page_rows[min(table.cursor_row, len(self.page_rows) - 1)]

    @on(DataTable.RowSelected, "#diffs")
    def _open_detail(self, event: DataTable.RowSelected) -> None:
        self.app.push_screen(DetailScreen(str(event.row_key.value)))

    def action_mark_expected(self) -> None:
        """Open the feedback dialog prefilled from the row under the cursor."""
        row = self.selected_row()
        if row is None:
            self.notify("no row selected", severity="warning")
            return
        self.app.push_screen(FeedbackScreen.from_row(row))


def table_cells(row: dict[str, Any]) -> tuple[str, ...]:
    """A diff row as the table's cells (strings, in COLUMNS order)."""
    ts = row.get("ts")
    category = str(row["category"]) + (" (exp)" if row.get("expected") else "")
    return (str(row["txn_id"]), category, ",".join(row.get("fields") or []),
            fmt.money(row.get("amount_minor"), row.get("currency")),
            str(row.get("legacy_decision") or "-"), str(row.get("candidate_decision") or "-"),
            "/".join(str(row.get(k) or "-") for k in ("merchant_id", "merchant_country",
                                                       "channel")),
            str(row.get("severity") or ""),
            ts.strftime("%Y-%m-%d %H:%M:%S") if ts is not None else "")


def status_line(query: DiffQuery, shown: int, total: int | None) -> str:
    """"rows 1-50 of 1,234 · page 1/25 · sort ts asc · mismatches, merchant_id=M1"."""
    first = query.offset + 1 if shown else 0
    last = query.offset + shown
    of = "counting…" if total is None else f"{total:,}"
    pages = "?" if total is None else str(max(1, -(-total // query.page_rows)))
    sort = "file order" if query.sort is None else \
        f"sort {SORT_LABELS.get(query.sort, query.sort)} {'desc' if query.descending else 'asc'}"
    filters = [query.category]
    if query.segment:
        filters.append("=".join(query.segment))
    if query.min_amount_minor is not None:
        filters.append(f"amount>={query.min_amount_minor}")
    if query.min_amount_ref is not None:
        filters.append(f"amount>={query.min_amount_ref:g} USD")
    if query.txn_id:
        filters.append(f"txn~{query.txn_id}")
    return (f"rows {first:,}-{last:,} of {of} · page {query.page + 1}/{pages} · {sort}"
            f" · {', '.join(filters)}")
