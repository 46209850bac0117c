"""End-to-end: `cutover demo` through the console script, twice, and `cutover --help`.

The demo is the first thing a user runs; these tests hold it to what the quick start promises:
every stage runs, the artefacts the "next commands" need are on disk, the legacy core it
started is stopped, and the same seed gives the same Parquet content.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
CUTOVER = str(Path(sys.executable).with_name("cutover"))
SIZE = "12000"
STAGES = ("generate", "legacy core (SOAP)", "end-of-day files", "import", "train", "evaluate",
          "replay + diff + report", "shadow ledger", "gate")
# Measured per run, so they differ between two identical runs.
TIMING_COLUMNS = {"legacy_latency_ms", "candidate_latency_ms"}


def _demo(folder: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([CUTOVER, "demo", "--dir", str(folder), "--size", SIZE, *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(folder.parent)})


def _table(path: Path, drop: set[str] = frozenset()):
    table = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    keep = [n for n in table.column_names if n not in drop]
    return table.select(keep).sort_by("txn_id")


@pytest.fixture(scope="module")
def two_demos(tmp_path_factory):
    root = tmp_path_factory.mktemp("demos")
    first, second = _demo(root / "a"), _demo(root / "b")
    return root, first, second


def test_demo_runs_every_stage_and_leaves_its_artefacts(two_demos):
    root, first, _ = two_demos
    assert first.returncode == 0, first.stdout + first.stderr
    for stage in STAGES:
        assert re.search(rf"│ {re.escape(stage)}\s+│", first.stdout), stage
    demo = root / "a"
    for artefact in ("store", "cassettes/legacy_sample.yaml", "imported", "models", "run/report.json",
                     "run/report.md", "run/gate.md", "run/ledger.db", "evaluation.json", "plan.db"):
        assert (demo / artefact).exists(), artefact
    report = json.loads((demo / "run/report.json").read_text())
    counts = report["counts"]
    # The replay window is the last third of the days: a share of the rows, none lost.
    assert 0 < counts["in"] < int(SIZE)
    assert sum(counts["by_category"].values()) == counts["in"] and counts["conservation_ok"]
    # The ledger's mirror book reconciles against the core's own end-of-day balances.
    assert "reconcile: 0 breaks" in first.stdout
    assert json.loads((demo / "run/reconcile.json").read_text())["breaks"] == []
    # ... and against the camt.053 statement the core wrote of the same books (issue 18).
    assert re.search(r"0\W+with\W+the\W+camt\.053\W+statement", first.stdout)
    assert len(list((demo / "eod").glob("statement_*.camt053.xml"))) == 1
    # The demo's own end-of-day log is clean: every record imports, none is quarantined.
    assert re.search(r"authlog: 12,000 imported, 0 quarantined", first.stdout)
    assert "chain intact" in first.stdout
    # On the demo data the stack catches more fraud amount at a lower false-decline amount.
    evaluation = json.loads((demo / "evaluation.json").read_text())
    stack, legacy = (evaluation["sides"][k]["usd_indicative"] for k in ("stack", "legacy"))
    assert stack["fraud_caught"] > legacy["fraud_caught"] > 0
    assert stack["false_decline"] <= legacy["false_decline"]
    assert evaluation["stack_better_overall"] is True
    # The next commands point at this demo's files.
    assert f"cutover tui {demo}/run --plan-db sqlite:///{demo}/plan.db" in first.stdout


def test_demo_plan_state_follows_the_gate(two_demos):
    root, first, _ = two_demos
    engine = sa.create_engine(f"sqlite:///{root / 'a' / 'plan.db'}")
    with engine.connect() as conn:
        actions = [r[0] for r in conn.execute(sa.text(
            "select action from cutover_plan_events order by seq"))]
    engine.dispose()
    passed = "canary-1: PASS" in first.stdout
    assert actions[:2] == ["init", "approve"]
    assert actions[2] == ("advance" if passed else "advance_refused")


def test_demo_stops_the_legacy_core_it_started(two_demos):
    _, first, _ = two_demos
    port = int(re.search(r"calls to the core on port (\d+)", first.stdout).group(1))
    with socket.socket() as sock:
        sock.settimeout(1)
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_same_seed_gives_the_same_parquet(two_demos):
    root, first, second = two_demos
    assert second.returncode == 0, second.stdout + second.stderr
    a, b = root / "a", root / "b"
    assert _table(a / "store").equals(_table(b / "store"))
    assert _table(a / "imported").equals(_table(b / "imported"))
    assert _table(a / "run/diffs", TIMING_COLUMNS).equals(_table(b / "run/diffs", TIMING_COLUMNS))
    assert _table(a / "store").num_rows == int(SIZE)


def test_demo_refuses_to_overwrite_without_force(two_demos, tmp_path):
    root, _, _ = two_demos
    again = _demo(root / "a")
    assert again.returncode == 2
    assert "--force" in again.stderr + again.stdout
    stranger = tmp_path / "mine"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("keep me")
    refused = _demo(stranger, "--force")
    assert refused.returncode == 2
    assert "not a cutover demo folder" in refused.stderr + refused.stdout
    assert (stranger / "notes.txt").read_text() == "keep me"


def test_help_lists_the_command_groups_with_a_purpose():
    result = subprocess.run([CUTOVER, "--help"], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    assert result.returncode == 0
    for command in ("demo", "sim", "record", "import", "train", "models", "decide", "replay",
                    "report", "explain", "calibrate", "shadow", "gate", "plan", "tui"):
        line = re.search(rf"│ {command}\s+(\S.*?)\s*│", result.stdout)
        assert line and len(line.group(1)) > 10, command
