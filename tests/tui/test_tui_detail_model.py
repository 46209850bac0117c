"""The Detail screen on a real replay through the reference stack: the reason codes carry
their exact contributions and the features table the model's features, recomputed."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest
from textual.widgets import DataTable, Static

from cutover.replay.engine import run_replay
from cutover.stack.model import train
from cutover.tui.app import CutoverApp
from cutover.tui.config import TuiConfig
from cutover.tui.screens.detail import DetailScreen, reasons_text
from cutover.tui.views.detail import explain
from tests.replay_support import read_parts
from tests.stack_support import make_traffic, write_store
from tests.tui_support import cells, settle, wait_for

SIZE = (120, 40)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """12k rows over 8 days, a model trained on them, a replay of the last 5 days; the first
    declined or reviewed transaction with its decision row."""
    root = tmp_path_factory.mktemp("tui-real")
    store = write_store(make_traffic(12_000, seed=11, days=8), root / "store")
    train(store, root / "models", seed=3, rounds_max=30)
    run_replay(store, root / "run", candidate_options={"models": str(root / "models")},
               since="2026-10-04", batch_rows=4_000, report=False)
    decisions = read_parts(root / "run", "decisions")
    flagged = decisions.filter(pc.not_equal(decisions["decision"], "approve"))
    return root / "run", flagged.slice(0, 1).to_pylist()[0]


def test_reason_codes_carry_the_recomputed_contributions(real_run):
    """Every stored model code is shown with its exact contribution and its meaning; the score
    line says the recomputed score reproduces the recorded one."""
    run_dir, decided = real_run
    data = explain(run_dir, decided["txn_id"])
    model = data["model"]
    assert model["available"] and model["score_reproduced"]
    contribution = {f["code"]: f["contribution"] for f in model["features"]}
    lines = reasons_text(data).splitlines()
    by_code = {f["code"]: f for f in model["features"]}
    for code in decided["reason_codes"]:
        if code.split(":")[0] in ("model", "pushed"):
            assert any(line.startswith(f"  {code} {contribution[code]:+.3f}: ") for line in lines)
            # The same sentence decide and explain write: with the value and its typical range
            # for a truthful code; "no plain-language reason" for a pushed one.
            said = by_code[code]["text"]
            assert f": {said}" in "\n".join(lines)
            assert ("typical" in said or "no plain-language" in said), said
    assert any(line.startswith("score ") and line.endswith("reproduced") for line in lines)
    top = model["top"][0]
    assert f"  {top['contribution']:+.3f} {top['name']} = " in "\n".join(lines)


async def test_detail_screen_shows_model_features_with_contributions(real_run):
    """Opened on a declined or reviewed transaction, Detail lists the request and then the
    model's features, largest contribution first, each value with its contribution."""
    run_dir, decided = real_run
    app = CutoverApp(TuiConfig(run_dir=run_dir, start="diffs"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.push_screen(DetailScreen(decided["txn_id"]))
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.loaded,
                       "Detail")
        await settle(pilot)
        model = app.screen.explanation["model"]
        rows = cells(app.screen.query_one("#features", DataTable))
        names = [r[0] for r in rows]
        assert "card_token" in names and "— model features —" in names
        shown = rows[names.index("— model features —") + 1:]
        ranked = sorted(model["features"], key=lambda f: -abs(f["contribution"]))
        assert [r[0] for r in shown] == [f["name"] for f in ranked]
        assert shown[0][1].endswith(f"({ranked[0]['contribution']:+.3f})")
        reasons = str(app.screen.query_one("#reasons", Static).render())
        assert "top contributions (exact" in reasons and "reproduced" in reasons
