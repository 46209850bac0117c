"""The replay issue's mismatched-units scenario, replayed for real, fails the demo plan's
canary gate, and the failing check names the merchant whose feed broke.

Both reports come from the real replay engine, so this also proves the gate reads the
report.json the replay writes today (not only the crafted reports of the unit tests).
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cutover.cli import app
from cutover.errors import CutoverError, exit_code_for
from cutover.replay.engine import run_replay
from tests.integration.test_replay_drift import BROKEN, SWITCH, _feed_in_major_units
from tests.migrate_support import DEMO_PLAN
from tests.replay_support import make_traffic, write_store

ROWS = 30_000


def _gate(report_path) -> tuple[int, dict, str]:
    """`cutover gate REPORT --policy demo.toml --phase canary-1 --json`: (exit, json, stderr)."""
    result = CliRunner().invoke(app, ["gate", str(report_path), "--policy", str(DEMO_PLAN),
                                      "--phase", "canary-1", "--json"])
    code = exit_code_for(result.exception) if isinstance(result.exception, CutoverError) \
        else result.exit_code
    return code, json.loads(result.stdout), str(result.exception or "")


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """report.json of the same traffic replayed clean and with BROKEN's feed in major units."""
    base = tmp_path_factory.mktemp("units")
    traffic = make_traffic(ROWS, seed=21, hours=96)
    found = {}
    for name, table in (("clean", traffic), ("broken", _feed_in_major_units(traffic))):
        store = write_store(base / name / "store", table)
        run_replay(store, base / name / "run", candidate="tests.replay_support:exact_candidate")
        found[name] = base / name / "run" / "report.json"
    return found


def test_clean_feed_passes_the_canary_gate(reports):
    """Control: the same traffic without the units switch passes canary-1 (exit 0), so the
    segment check below is what closes the gate."""
    code, result, _ = _gate(reports["clean"])
    assert code == 0 and result["passed"], [c["message"] for c in result["checks"]
                                            if not c["passed"]]
    segments = next(c for c in result["checks"] if c["name"] == "segments")
    assert segments["observed"].endswith(" with n >= 500")


def test_units_switch_fails_the_canary_gate_naming_the_merchant(reports):
    """Exit 1; the first failing check is the broken merchant's segment, at about half of its
    1,200 transactions with a different fee, against a 5% limit; nothing but segment and feed
    checks fail, and the feed check names the field, the merchant and the switch's time."""
    code, result, message = _gate(reports["broken"])
    failed = [c for c in result["checks"] if not c["passed"]]
    assert code == 1 and not result["passed"]
    assert failed[0]["name"] == f"segment merchant_id={BROKEN}"
    assert failed[0]["threshold"] == "<= 5.0%"
    assert 40.0 < float(failed[0]["observed"].rstrip("%")) < 60.0
    assert failed[0]["message"].startswith(f"merchant_id={BROKEN}: ")
    assert "fee_change or candidate_error over 1," in failed[0]["message"]
    assert all(c["name"].startswith(("segment ", "feed ")) for c in failed)
    feed = [c for c in failed if c["name"].startswith("feed ")]
    assert feed[0]["name"] == f"feed amount_minor @ merchant_id={BROKEN} (amount_shift)"
    assert f"first seen {SWITCH:%Y-%m-%dT%H}" in feed[0]["observed"]
    # The CLI's one-line diagnostic (stderr in a real shell) names the segment too.
    assert f"merchant_id={BROKEN}" in message
