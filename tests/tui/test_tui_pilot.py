"""Pilot tests: drive each screen with keys and assert what its widgets show."""

from __future__ import annotations

import tomllib

from textual.widgets import DataTable, Input, Select, Static, Tree

from cutover.tui.app import CutoverApp
from cutover.tui.config import TuiConfig
from cutover.tui.screens.detail import DetailScreen
from cutover.tui.screens.diffs import DiffsScreen
from cutover.tui.screens.feedback import FeedbackScreen
from cutover.tui.screens.help import HelpScreen
from tests.tui_support import (
    cells,
    diff_rows,
    settle,
    wait_for,
    write_plan_db,
    write_traffic_for,
)

SIZE = (100, 30)


async def open_detail(pilot, app) -> None:
    """From the Diffs screen: Enter on the selected row, then wait for Detail to load."""
    await settle(pilot)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), "Detail")
    await settle(pilot)


def make_app(run_dir, tmp_path=None, **options) -> CutoverApp:
    """The app on ``run_dir``, with a plan db (fixed clock) when ``tmp_path`` is given."""
    if tmp_path is not None:
        url, clock = write_plan_db(tmp_path / "plan.db")
        options.update(plan_db=url, clock=clock)
    return CutoverApp(TuiConfig(run_dir=run_dir, **options))


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_overview_shows_counts_phase_money_and_segments(small_run, tmp_path):
    """The first screen: per-category counts, the gate verdict, money and worst segments."""
    app = make_app(small_run, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        rows = {r[0]: r for r in cells(app.screen.query_one("#categories", DataTable))}
        assert rows["route_change"][1:3] == ["10", "8.33%"]
        assert rows["match"][1] == "70"
        assert "phase shadow (0% on candidate)" in text_of(app, "#phase-line")
        assert "gate for canary-1: FAIL" in text_of(app, "#phase-line")
        assert "rows 120 · mismatches 45 (37.50%) · quarantined 5" in text_of(app, "#totals-line")
        money = cells(app.screen.query_one("#money", DataTable))
        assert money[1] == ["USD", "862.00 USD", "812.00 USD", "50.00 USD"]
        segments = cells(app.screen.query_one("#segments", DataTable))
        assert segments[0][:3] == ["merchant_id=M0001", "20", "10"]
        facts = dict(cells(app.screen.query_one("#facts", DataTable)))
        assert facts["model_version"] == "xgb-2026-10-01"


async def test_diffs_filter_by_category_segment_amount_and_search(small_run):
    """Each filter changes the rows and the status line's count; a bad segment is refused."""
    app = make_app(small_run, start="diffs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#diffs", DataTable)
        assert table.row_count == 45
        assert "rows 1-45 of 45" in text_of(app, "#diffs-status")
        # A malformed segment is reported and not applied.
        screen.query_one("#segment", Input).focus()
        await pilot.press(*"x=1", "enter")
        await settle(pilot)
        assert "DIMENSION=VALUE" in text_of(app, "#diffs-status") and table.row_count == 45
        screen.query_one("#category", Select).value = "route_change"
        await settle(pilot)
        assert {r[1] for r in cells(table)} == {"route_change"} and table.row_count == 10
        # Long values are set, short ones typed: each pilot key press costs a frame.
        screen.query_one("#segment", Input).value = "merchant_id=M0004"
        screen.query_one("#segment", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        m4 = [r for r in diff_rows(0, 120)
              if r["category"] == "route_change" and r["merchant_id"] == "M0004"]
        assert [r[0] for r in cells(table)] == [r["txn_id"] for r in m4] and len(m4) == 5
        screen.query_one("#min-amount", Input).focus()
        await pilot.press(*"500", "enter")
        await settle(pilot)
        # In indicative USD (cutover/fixtures/fx/indicative.toml): EUR at 0.92 to the dollar.
        usd = {"USD": 1.0, "EUR": 1 / 0.92}
        big = [r["txn_id"] for r in m4 if r["amount_minor"] * usd[r["currency"]] >= 50_000]
        assert [r[0] for r in cells(table)] == big and 0 < len(big) < 5
        assert f"of {len(big)} ·" in text_of(app, "#diffs-status")
        assert "merchant_id=M0004, amount>=500 USD" in text_of(app, "#diffs-status")
        table.focus()
        await pilot.press("slash", *big[0][:-1], "enter")
        await settle(pilot)
        assert [r[0] for r in cells(table)] == [big[0]]


async def test_diffs_sort_cycles_and_reverses(small_run):
    """s moves to the next sort key; v flips the direction; the table follows."""
    app = make_app(small_run, start="diffs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert "sort ts asc" in text_of(app, "#diffs-status")
        await pilot.press("s", "v")
        await settle(pilot)
        assert "sort amount (USD indicative) desc" in text_of(app, "#diffs-status")
        screen: DiffsScreen = app.screen
        usd = {"USD": 1.0, "EUR": 1 / 0.92}  # cutover/fixtures/fx/indicative.toml
        amounts = [r["amount_minor"] * usd[r["currency"]] for r in screen.page_rows]
        assert amounts == sorted(amounts, reverse=True)
        top = max((r for r in diff_rows(0, 120) if r["category"] not in ("match", "quarantined")),
                  key=lambda r: r["amount_minor"] * usd[r["currency"]])
        assert cells(screen.query_one("#diffs", DataTable))[0][0] == top["txn_id"]


async def test_enter_opens_detail_side_by_side_and_escape_returns(small_run):
    """Enter on a row shows that txn's outcomes, deepdiff tree and reason codes."""
    app = make_app(small_run, start="diffs")
    async with app.run_test(size=SIZE) as pilot:
        await open_detail(pilot, app)
        assert app.screen.txn_id == "T000003"
        sides = {r[0]: r[1:] for r in cells(app.screen.query_one("#sides", DataTable))}
        assert sides["decision *"] == ["approve", "decline"]
        assert sides["route"] == ["GW_A", "GW_A"]
        assert sides["score"] == ["-", "0.08"]
        tree = app.screen.query_one("#deepdiff", Tree)
        labels = [str(n.label) for n in tree.root.children[0].children]
        assert labels == ["root['decision']", "root['reason']"]
        assert "R_VELOCITY" in text_of(app, "#reasons")
        assert "approve_to_decline [decision]" in text_of(app, "#detail-title")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, DiffsScreen)


async def test_detail_shows_the_features_the_candidate_saw(small_run):
    """With the traffic store reachable, Detail lists the request's features."""
    write_traffic_for(small_run)
    app = make_app(small_run, start="diffs")
    async with app.run_test(size=SIZE) as pilot:
        await open_detail(pilot, app)
        features = dict(cells(app.screen.query_one("#features", DataTable)))
        assert features["card_bin"] == "411111" and features["customer_id"] == "C0003"
        assert features["amount_minor"] == "24757"
        assert "not reachable" not in text_of(app, "#reasons")


async def test_mark_expected_appends_the_rule_to_diff_rules(small_run, monkeypatch):
    """e on a row, a reason, Enter: the rule is in diff_rules.toml with who and why."""
    monkeypatch.setenv("USER", "operator-ann")
    app = make_app(small_run, start="diffs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("down", "e")
        await settle(pilot)
        assert isinstance(app.screen, FeedbackScreen)
        assert app.screen.query_one("#fb-category", Input).value == "route_change"
        assert app.screen.query_one("#fb-segment", Input).value == "merchant_id=M0006"
        app.screen.query_one("#fb-reason", Input).value = "gateway B is the new default"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, FeedbackScreen),
                       "the dialog to close")
    rules = tomllib.loads((small_run / "diff_rules.toml").read_text(encoding="utf-8"))
    rule = rules["expected"][-1]
    assert rule["category"] == "route_change" and rule["fields"] == ["route"]
    assert rule["segment"] == {"merchant_id": "M0006"}
    assert rule["reason"] == "gateway B is the new default" and rule["by"] == "operator-ann"
    assert "at" in rule


async def test_mark_expected_without_reason_writes_nothing(small_run):
    """The dialog refuses an empty reason and leaves the file untouched."""
    before = (small_run / "diff_rules.toml").read_text(encoding="utf-8")
    app = make_app(small_run, start="diffs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, FeedbackScreen)
        assert "reason is required" in text_of(app, "#feedback-error")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, DiffsScreen)
    assert (small_run / "diff_rules.toml").read_text(encoding="utf-8") == before


async def test_ledger_screen_shows_books_side_by_side_and_chain_status(small_run):
    """l: per-class balances of both books, an intact audit chain in words, saved
    reconciliation breaks; p without a plan db: a hint."""
    (small_run / "reconcile.json").write_text(
        '{"accounts_compared": 9, "breaks": [{"account": "MERCHANT_PAYABLE:M0001",'
        ' "currency": "USD", "legacy_minor": 1000, "mirror_minor": 900,'
        ' "difference_minor": -100}]}', encoding="utf-8")
    app = make_app(small_run)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        rows = cells(app.screen.query_one("#balances", DataTable))
        payable = [r for r in rows if r[:2] == ["MERCHANT_PAYABLE", "USD"]][0]
        assert payable[2].endswith(" USD") and payable[3].endswith(" USD")
        assert "audit chain: intact" in text_of(app, "#verify-line")
        assert "1 breaks over 9 accounts" in text_of(app, "#reconcile-line")
        assert cells(app.screen.query_one("#breaks", DataTable))[0] == [
            "MERCHANT_PAYABLE:M0001", "USD", "10.00 USD", "9.00 USD", "-1.00 USD"]
        # Without --plan-db the Plan screen says how to give one instead of failing.
        await pilot.press("p")
        await settle(pilot)
        assert "--plan-db" in text_of(app, "#plan-line")


async def test_plan_screen_shows_phases_gate_and_history(small_run, tmp_path):
    """p: the phases with the current one marked, failed gate checks first, the history."""
    app = make_app(small_run, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        phases = cells(app.screen.query_one("#phases", DataTable))
        assert phases[0][0] == "shadow" and phases[0][-1] == "current"
        assert [p[0] for p in phases] == ["shadow", "canary-1", "canary-5", "ramp-25",
                                          "ramp-50", "full"]
        assert "approvals 1/1 (bob)" in text_of(app, "#plan-line")
        assert "baked 2.00h" in text_of(app, "#plan-line")
        checks = cells(app.screen.query_one("#checks", DataTable))
        assert checks[0][0] == "FAIL" and checks[-1][0] == "pass"
        assert "gate for canary-1 on this run: FAIL" in text_of(app, "#gate-line")
        history = cells(app.screen.query_one("#history", DataTable))
        assert [h[3] for h in history] == ["approve", "init"]


async def test_command_palette_filters_diffs_to_a_category(small_run):
    """ctrl+p, "only fee_change", Enter: Diffs opens filtered to fee_change."""
    app = make_app(small_run)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"fee_ch")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffsScreen)
                       and app.screen.diff_query.category == "fee_change", "the filter")
        await settle(pilot)
        table = app.screen.query_one("#diffs", DataTable)
        assert table.row_count == 5 and {r[1] for r in cells(table)} == {"fee_change"}


async def test_footer_keys_and_help_screen(small_run):
    """The footer lists the screen's keys (Diffs leaves the screen keys to help, so its own
    fit); ? opens the key reference, which lists them, and ? closes it."""
    from tests.tui_support import screen_text
    app = make_app(small_run, start="diffs")
    async with app.run_test(size=(200, 30)) as pilot:
        await settle(pilot)
        footer = screen_text(app).splitlines()[-1]
        for label in ("Expected", "Find", "Sort", "Next", "Refresh", "Help", "Quit"):
            assert label in footer
        await pilot.press("o")
        await settle(pilot)
        assert "o Overview d Diffs l Ledger p Plan" in screen_text(app).splitlines()[-1]
        await pilot.press("d")
        await settle(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        assert "mark pattern expected" in text_of(app, "#help-text")
        assert "o overview  d diffs" in text_of(app, "#help-text")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), "help closed")


async def test_unreadable_part_is_reported_and_the_app_stays_up(small_run):
    """A corrupt diffs part: the Diffs status line names the problem; keys still work."""
    (small_run / "diffs" / "part-000002.parquet").write_bytes(b"not parquet")
    app = make_app(small_run, start="diffs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "!" in text_of(app, "#diffs-status")
        await pilot.press("o")
        await settle(pilot)
        assert app.screen.query_one("#categories", DataTable) is not None


async def test_overview_drills_from_a_segment_to_its_diffs(small_run):
    """Enter on the worst segment opens Diffs filtered to it: the report's mismatches, as rows."""
    app = make_app(small_run)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        segments = app.screen.query_one("#segments", DataTable)
        segments.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffsScreen), "Diffs")
        await settle(pilot)
        screen = app.screen
        assert screen.diff_query.segment == ("merchant_id", "M0001")
        assert screen.query_one("#segment", Input).value == "merchant_id=M0001"
        rows = cells(screen.query_one("#diffs", DataTable))
        assert len(rows) == 10 and {r[6].split("/")[0] for r in rows} == {"M0001"}
        await pilot.press("o")
        await settle(pilot)
        app.screen.query_one("#categories", DataTable).focus()
        await pilot.press("down", "down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffsScreen)
                       and app.screen.diff_query.category == "candidate_error", "category drill")
        await settle(pilot)
        assert app.screen.diff_query.segment is None
        assert {r[1] for r in cells(app.screen.query_one("#diffs", DataTable))} == {
            "candidate_error"}
