"""The TUI tried as a new user would, without the docs (issue 17, item 7): each fix, piloted."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from textual.widgets import DataTable, Input

from cutover.stack.fx import load_fx, reference_amounts
from cutover.tui.app import CutoverApp
from cutover.tui.config import TuiConfig
from cutover.tui.screens.detail import DetailScreen
from cutover.tui.screens.diffs import DiffsScreen
from tests.tui_support import cells, screen_text, settle, wait_for

NARROW = (80, 24)


def _app(run_dir, start="diffs") -> CutoverApp:
    return CutoverApp(TuiConfig(run_dir=run_dir, start=start))


async def _to_detail(pilot, app) -> None:
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), "Detail")
    await settle(pilot)


async def test_after_the_filter_bar_escape_or_a_choice_gives_enter_back_to_the_detail(small_run):
    """f, enter, pick a category: the table has focus again, so enter opens the detail; after
    / the escape key returns to the table the same way."""
    app = _app(small_run)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        await pilot.press("f", "enter", "down", "down", "enter")
        await settle(pilot)
        screen = app.screen
        assert screen.diff_query.category == "quarantined" and isinstance(app.focused, DataTable)
        await pilot.press("f", "enter", "up", "up", "enter")  # back to mismatches
        await settle(pilot)
        assert screen.diff_query.category == "mismatches" and isinstance(app.focused, DataTable)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press("escape")
        assert isinstance(app.focused, DataTable) and isinstance(app.screen, DiffsScreen)
        await _to_detail(pilot, app)
        assert app.screen.txn_id == "T000003"


async def test_a_category_chosen_on_overview_drops_an_old_search(small_run):
    """A search for a txn id, then a category from Overview: that category's rows, not 0."""
    app = _app(small_run)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"T000003", "enter")
        await wait_for(pilot, lambda: app.screen.total == 1, "search")
        await pilot.press("o")
        await settle(pilot)
        app.screen.query_one("#categories", DataTable).focus()
        await pilot.press("down", "down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffsScreen)
                       and app.screen.diff_query.category == "candidate_error", "drill")
        await settle(pilot)
        screen = app.screen
        assert screen.diff_query.txn_id is None and screen.query_one("#txn-search", Input).value == ""
        rows = cells(screen.query_one("#diffs", DataTable))
        assert screen.total == len(rows) > 0 and {r[1] for r in rows} == {"candidate_error"}


@pytest.mark.parametrize("start", ["overview", "diffs", "ledger", "plan"])
async def test_the_key_bar_is_not_cut_at_80_columns(small_run, start):
    """The key bar of every screen (and of Detail) ends with "q Quit", whole."""
    app = _app(small_run, start)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        bar = screen_text(app).splitlines()[-1].rstrip()
        assert bar.endswith("r Refresh ? Help q Quit"), bar
        if start == "diffs":
            await _to_detail(pilot, app)
            bar = screen_text(app).splitlines()[-1].rstrip()
            assert bar.endswith("r Refresh ? Help q Quit"), bar


async def test_the_category_dropdown_shows_each_category_on_one_line(small_run):
    """approve_to_decline and decline_to_approve are whole in the open dropdown."""
    app = _app(small_run)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        await pilot.press("f", "enter")
        await settle(pilot)
        text = screen_text(app)
        assert "approve_to_decline" in text and "decline_to_approve" in text
        assert "approve_to_decli " not in text


async def test_refresh_says_it_refreshed(small_run):
    """r on any screen posts a "refreshed" notice with the time."""
    app = _app(small_run, "overview")
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        notes = [n.message for n in app._notifications]
        assert any(m.startswith("re-read the run at ") and m.endswith(" UTC") for m in notes)


async def test_amount_sort_and_min_amount_use_indicative_usd(small_run):
    """s twice sorts by amount: descending order of USD value across EUR and USD rows; a min
    USD filter keeps only rows worth at least that much."""
    app = _app(small_run)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("s", "s", "v")
        await settle(pilot)
        screen = app.screen
        assert "sort amount (USD indicative) desc" in str(screen.query_one("#diffs-status").render())
        rows = screen.page_rows
        usd = reference_amounts(load_fx(), np.array([r["amount_minor"] for r in rows]),
                                pa.array([r["currency"] for r in rows]))
        assert {r["currency"] for r in rows} == {"EUR", "USD"} and np.all(np.diff(usd) <= 0)
        screen.query_one("#min-amount", Input).focus()
        await pilot.press(*"800", "enter")
        await settle(pilot)
        kept = reference_amounts(load_fx(), np.array([r["amount_minor"] for r in screen.page_rows]),
                                 pa.array([r["currency"] for r in screen.page_rows]))
        assert len(kept) > 0 and kept.min() >= 800 and isinstance(app.focused, DataTable)


async def test_the_detail_writes_a_sum_with_one_sign_per_term(small_run):
    """No "+ +5.749": the score line reads "sigmoid(bias -2.100 + 5.749)"."""
    from cutover.tui.screens.detail import model_lines
    lines = model_lines({"available": True, "score": 0.97, "bias": -2.1, "margin": 3.649,
                         "score_reproduced": True, "model_version": "m", "top": []})
    assert lines[0].startswith("score 0.9700 = sigmoid(bias -2.100 + 5.749)")
    lines = model_lines({"available": True, "score": 0.03, "bias": -2.1, "margin": -3.0,
                         "score_reproduced": True, "model_version": "m", "top": []})
    assert "bias -2.100 - 0.900)" in lines[0] and "+ -" not in lines[0] and "+ +" not in lines[0]
