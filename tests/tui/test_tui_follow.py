"""Follow mode: while a replay commits parts, the open screens show the new counts."""

from __future__ import annotations

import time

from textual.widgets import DataTable, Static

from cutover.tui.app import CutoverApp
from cutover.tui.config import FOLLOW_INTERVAL_S, TuiConfig
from tests.tui_support import cells, diff_rows, settle, wait_for, write_part, write_small_run

#: The test polls faster than the default so it runs quickly; the default is checked below.
TEST_INTERVAL_S = 0.2


def test_default_follow_interval_is_at_most_a_second():
    """The issue asks for updates at least once a second."""
    assert FOLLOW_INTERVAL_S <= 1.0


async def test_overview_counts_grow_when_a_part_is_committed(tmp_path):
    """A new diffs part written while the app runs shows up in the counts, keys still work."""
    run_dir = write_small_run(tmp_path / "run-live", rows=48, parts=1, with_report=False)
    app = CutoverApp(TuiConfig(run_dir=run_dir, follow=True, follow_interval_s=TEST_INTERVAL_S))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        totals = app.screen.query_one("#totals-line", Static)
        assert str(totals.render()).startswith("rows 48 ·")
        assert "report pending" in str(totals.render())
        write_part(run_dir, 1, diff_rows(48, 48))
        (run_dir / "checkpoint.json").write_text(
            '{"batches_committed": 2, "finished": false}', encoding="utf-8")
        started = time.monotonic()
        await wait_for(pilot, lambda: str(totals.render()).startswith("rows 96 ·"),
                       "the overview to show 96 rows", timeout_s=5)
        assert time.monotonic() - started < 2 * FOLLOW_INTERVAL_S + 1
        assert "2 batches, replay running" in str(totals.render())
        rows = {r[0]: r[1] for r in cells(app.screen.query_one("#categories", DataTable))}
        assert rows["route_change"] == "8" and rows["match"] == "56"
        # Input is not frozen: a key still switches screens while follow mode polls.
        await pilot.press("d")
        await settle(pilot)
        assert app.screen.query_one("#diffs", DataTable).row_count == 36


async def test_diffs_screen_count_grows_in_follow_mode(tmp_path):
    """The Diffs status line's total follows the run too."""
    run_dir = write_small_run(tmp_path / "run-live", rows=48, parts=1, with_report=False)
    app = CutoverApp(TuiConfig(run_dir=run_dir, follow=True, follow_interval_s=TEST_INTERVAL_S,
                               start="diffs"))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        status = app.screen.query_one("#diffs-status", Static)
        assert "of 18 ·" in str(status.render())
        write_part(run_dir, 1, diff_rows(48, 48))
        await wait_for(pilot, lambda: "of 36 ·" in str(status.render()),
                       "the diffs total to reach 36", timeout_s=5)
