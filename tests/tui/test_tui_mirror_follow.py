"""The TUI follows a live mirror run as it follows a replay: committed batches show up."""

from __future__ import annotations

from textual.widgets import Static

from cutover.adapters.candidate import CandidateSide
from cutover.mirror.runlog import MirrorRun
from cutover.shadow.diff_rules import default_rules_path
from cutover.tui.app import CutoverApp
from cutover.tui.config import TuiConfig
from tests.replay_support import exact_candidate, make_traffic
from tests.tui_support import settle, wait_for


async def test_follow_shows_batches_the_mirror_commits(tmp_path):
    """A mirror run directory opened with --follow: a batch committed while the app runs
    raises the overview's row count (same files, same reader as a replay)."""
    rows = make_traffic(80).to_pylist()
    settings = {"store": str(tmp_path / "run" / "requests"), "candidate": "fake",
                "candidate_options": {}, "legacy": "mirror", "legacy_options": {},
                "narrowing": {}, "batch_rows": 40}
    run = MirrorRun(tmp_path / "run", settings, default_rules_path().read_text(), "default")
    candidate = CandidateSide(exact_candidate())
    assert run.commit(rows[:40], candidate) == 40
    app = CutoverApp(TuiConfig(run_dir=tmp_path / "run", follow=True, follow_interval_s=0.2))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        totals = app.screen.query_one("#totals-line", Static)
        assert str(totals.render()).startswith("rows 40 ·")
        assert run.commit(rows[40:] + rows[:5], candidate) == 40  # 5 repeats refused
        await wait_for(pilot, lambda: str(totals.render()).startswith("rows 80 ·"),
                       "the overview to show 80 rows", timeout_s=5)
    assert run.stats.duplicates == 5
