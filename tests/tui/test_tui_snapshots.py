"""One snapshot per screen at 80x24 on the fixed small run (tests/tui_support.py).

Regenerate after a deliberate change with `pytest tests/tui --snapshot-update`, look at the
SVGs in tests/tui/__snapshots__, and commit them. Each docstring says what the picture shows.
"""

from __future__ import annotations

import pytest

from cutover.tui.app import CutoverApp
from cutover.tui.config import TuiConfig
from cutover.tui.screens.detail import DetailScreen
from cutover.tui.screens.feedback import FeedbackScreen
from cutover.tui.screens.help import HelpScreen
from tests.tui_support import settle, wait_for

SIZE = (80, 24)


@pytest.fixture
def app_on(small_run, small_run_template, monkeypatch):
    """A factory of apps on the small run with its ledger and plan (fixed bake clock)."""
    from datetime import timedelta

    from tests.tui_support import T0, FixedClock
    monkeypatch.setenv("USER", "operator")
    monkeypatch.delenv("NO_COLOR", raising=False)

    def make(start: str = "overview") -> CutoverApp:
        return CutoverApp(TuiConfig(run_dir=small_run,
                                    plan_db=f"sqlite:///{small_run_template / 'plan.db'}",
                                    clock=FixedClock(T0 + timedelta(hours=2)), start=start))
    return make


def test_snapshot_overview(snap_compare, app_on):
    """Phase shadow and its failing gate, 120 rows with 45 mismatches, counts per category,
    the timeline sparkline, money at stake per currency; the footer lists the screen keys."""
    assert snap_compare(app_on(), terminal_size=SIZE, run_before=settle)


def test_snapshot_diffs(snap_compare, app_on):
    """The first page of mismatches in file order (T000003 approve_to_decline first), the
    filter bar (category wide enough for approve_to_decline, min USD), "rows 1-45 of 45 ·
    page 1/1 · file order · mismatches", and the whole key bar ending "q Quit"."""
    assert snap_compare(app_on("diffs"), terminal_size=SIZE, run_before=settle)


def test_snapshot_diffs_no_color(snap_compare, app_on, monkeypatch):
    """The same page with NO_COLOR set: still readable, the cursor row in reverse video."""
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(app_on("diffs"), terminal_size=SIZE, run_before=settle)


def test_snapshot_detail(snap_compare, app_on):
    """T000003: legacy approve vs candidate decline side by side (changed fields marked *),
    the deepdiff tree of decision and reason, reason codes R_VELOCITY and R_AMOUNT."""
    async def open_detail(pilot):
        await settle(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, DetailScreen), "Detail")
        await settle(pilot)
    assert snap_compare(app_on("diffs"), terminal_size=SIZE, run_before=open_detail)


def test_snapshot_feedback(snap_compare, app_on):
    """The mark-expected dialog prefilled from T000005: route_change, route, merchant_id=M0006,
    operator "operator", an empty reason with the cursor in it."""
    async def open_dialog(pilot):
        await settle(pilot)
        await pilot.press("down", "e")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, FeedbackScreen), "dialog")
        await settle(pilot)
    assert snap_compare(app_on("diffs"), terminal_size=SIZE, run_before=open_dialog)


def test_snapshot_ledger(snap_compare, app_on):
    """Both books per account class and currency with candidate minus legacy; the audit chain
    intact; no reconciliation result saved, with the command that makes one."""
    assert snap_compare(app_on("ledger"), terminal_size=SIZE, run_before=settle)


def test_snapshot_plan(snap_compare, app_on):
    """Plan demo in phase shadow, baked 2.00h; canary-1 approved by bob; the phases table;
    the canary-1 gate FAIL with failed checks listed first."""
    assert snap_compare(app_on("plan"), terminal_size=SIZE, run_before=settle)


def test_snapshot_help(snap_compare, app_on):
    """The key reference over the Overview."""
    async def open_help(pilot):
        await settle(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "help")
        await settle(pilot)
    assert snap_compare(app_on(), terminal_size=SIZE, run_before=open_help)
