"""What the issue asks of the whole TUI rather than of one screen: readable at 80x24 with
NO_COLOR, keys in the footer on every screen, store reads only in workers, and no write but
the operator's expected-pattern rule."""

from __future__ import annotations

import hashlib
import sys
import threading
from pathlib import Path

from textual.widgets import DataTable, Input

from cutover.tui.app import CutoverApp
from cutover.tui.config import TuiConfig
from cutover.tui.screens.detail import DetailScreen
from cutover.tui.screens.feedback import FeedbackScreen
from cutover.tui.screens.help import HelpScreen
from tests.tui_support import screen_text, settle, wait_for, write_plan_db

SMALL = (80, 24)
#: The app-wide keys every screen's footer must show at 80 columns.
APP_KEYS = ("o Overview", "d Diffs", "l Ledger", "p Plan")


def _app(run_dir: Path, plan_db: Path, **options) -> CutoverApp:
    url, clock = write_plan_db(plan_db)
    return CutoverApp(TuiConfig(run_dir=run_dir, plan_db=url, clock=clock, **options))


async def _visit(pilot, key: str) -> list[str]:
    await pilot.press(key)
    await settle(pilot)
    return screen_text(pilot.app).splitlines()


async def test_every_screen_says_its_facts_in_words_at_80x24_with_no_color(
        small_run, tmp_path, monkeypatch):
    """With NO_COLOR in 80x24 each screen still shows its verdicts as words (FAIL, intact,
    the changed-field marker *), the failing gate check with its threshold, and its keys."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = _app(small_run, tmp_path / "plan.db")
    async with app.run_test(size=SMALL) as pilot:
        assert app.no_color
        await settle(pilot)
        overview = screen_text(app).splitlines()
        assert len(overview) == 24 and max(len(line.rstrip()) for line in overview) <= 80
        assert "gate for canary-1: FAIL" in overview[1]
        assert overview[2].startswith(" rows 120 · mismatches 45 (37.50%)")
        assert all(k in overview[-1] for k in (*APP_KEYS, "? Help"))
        diffs = await _visit(pilot, "d")
        assert any(line.lstrip().startswith("T000003  approve_to_decline") for line in diffs)
        assert "rows 1-45 of 45 · page 1/1" in diffs[-2]
        assert all(k in diffs[-1] for k in ("e Expected", "/ Find", "f Filter", "s Sort"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), "Detail")
        await settle(pilot)
        detail = screen_text(app)
        assert "decision *" in detail and "esc Back" in detail.splitlines()[-1]
        await pilot.press("escape")
        ledger = await _visit(pilot, "l")
        assert any("audit chain: intact" in line for line in ledger)
        plan = await _visit(pilot, "p")
        assert any("gate for canary-1 on this run: FAIL" in line for line in plan)
        # The first check row is the failure, and its threshold is not cut off at 80 columns.
        failure = next(line for line in plan if line.lstrip().startswith("FAIL"))
        assert "sample size" in failure and ">= 20,000" in failure
        assert all(k in plan[-1] for k in APP_KEYS)
        help_text = "\n".join(await _visit(pilot, "question_mark"))
        assert isinstance(app.screen, HelpScreen)
        assert "escape or ? closes this help" in help_text


def _is_store_read(frame) -> bool:
    """A call into the code that touches files or databases: our views' readers, pyarrow's
    Parquet and dataset layers, SQLAlchemy, or the replay area's drill-down."""
    path = frame.f_code.co_filename
    name = frame.f_code.co_name
    # sqlalchemy/engine only: its event registry and pool also run garbage-collection
    # callbacks, which fire on whichever thread the collector happens to run.
    if "/sqlalchemy/engine/" in path or "/pyarrow/parquet/" in path \
            or path.endswith("pyarrow/dataset.py"):
        return True
    readers = {"read_run_files", "read_json", "fingerprint", "open_diffs", "count_rows", "page",
               "find_row", "explain", "read_ledger", "read_plan", "counts", "read_part_counts",
               "append_expected", "default_ledger_url"}
    return "/cutover/tui/views/" in path and name in readers or \
        path.endswith("cutover/shadow/drilldown.py")


async def test_store_reads_never_run_on_the_ui_thread(small_run, tmp_path):
    """Every screen, a filter, a detail, the ledger verify, the plan and a follow poll: a
    profiler sees each store read on a worker thread and none on the UI thread."""
    ui_thread = threading.get_ident()
    seen: dict[str, set[str]] = {"ui": set(), "worker": set()}

    def profile(frame, event, _arg):
        if event == "call" and _is_store_read(frame):
            side = "ui" if threading.get_ident() == ui_thread else "worker"
            seen[side].add(f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}")

    app = _app(small_run, tmp_path / "plan.db", follow=True, follow_interval_s=0.2)
    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        async with app.run_test(size=SMALL) as pilot:
            await settle(pilot)
            await _visit(pilot, "d")
            app.screen.query_one("#segment", Input).value = "merchant_id=M0002"
            app.screen.query_one("#segment", Input).focus()
            await pilot.press("enter")
            await settle(pilot)
            app.screen.query_one("#diffs", DataTable).focus()
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), "Detail")
            await settle(pilot)
            await pilot.press("escape")
            for key in ("l", "p", "o"):
                await _visit(pilot, key)
            await pilot.pause(0.5)  # two follow-mode polls
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    assert seen["ui"] == set()
    # The probe is live: the reads it must see did happen, on workers.
    for read in ("diffs.py:page", "diffs.py:count_rows", "run.py:fingerprint",
                 "ledger.py:read_ledger", "plan.py:read_plan", "counts.py:counts"):
        assert read in seen["worker"], sorted(seen["worker"])


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


async def test_nothing_but_the_expected_rule_is_written(small_run, tmp_path, monkeypatch):
    """Browsing every screen (follow mode on) changes no byte of the run, its ledger or the
    plan db; saving an expected pattern changes diff_rules.toml and nothing else."""
    monkeypatch.setenv("USER", "operator-ann")
    app = _app(small_run, tmp_path / "plan.db", follow=True, follow_interval_s=0.2)
    watched = [small_run.parent, tmp_path / "plan.db"]
    before = {str(w): _digests(w) if w.is_dir() else w.read_bytes() for w in watched}
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        for key in ("d", "l", "p", "question_mark", "question_mark", "o", "d"):
            await _visit(pilot, key)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), "Detail")
        await settle(pilot)
        await pilot.pause(0.5)
        browsed = {str(w): _digests(w) if w.is_dir() else w.read_bytes() for w in watched}
        assert browsed == before
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, FeedbackScreen), "dialog")
        app.screen.query_one("#fb-reason", Input).value = "new stack declines these by design"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, FeedbackScreen), "the save")
    after = _digests(small_run.parent)
    changed = {k for k in after if after[k] != before[str(small_run.parent)].get(k)}
    assert changed == {"run-small/diff_rules.toml"}
    assert (tmp_path / "plan.db").read_bytes() == before[str(tmp_path / "plan.db")]


async def test_ledger_screen_names_a_tampered_entry(small_run, tmp_path):
    """One posting moved behind the ledger's back (two raw UPDATEs that keep the entry
    balanced): the Ledger screen says BROKEN at that entry, in words."""
    import sqlite3

    with sqlite3.connect(small_run / "ledger.db") as raw:
        seq, txn_id = raw.execute("SELECT seq, txn_id FROM ledger_entries ORDER BY seq"
                                  " LIMIT 1 OFFSET 4").fetchone()
        raw.execute("UPDATE ledger_postings SET amount_minor = amount_minor + 1"
                    " WHERE entry_seq = ? AND line = 1", (seq,))
        raw.execute("UPDATE ledger_postings SET amount_minor = amount_minor - 1"
                    " WHERE entry_seq = ? AND line = 2", (seq,))
    app = CutoverApp(TuiConfig(run_dir=small_run, start="ledger"))
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "audit chain: BROKEN at" in text and "intact" not in text
        assert txn_id in str(app.screen.query_one("#verify-line").render())
