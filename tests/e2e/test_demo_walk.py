"""End-to-end: `cutover demo --size 150000` (the default size) walks the demo plan to `full`
on clean traffic.

150,000 transactions give a replay window of about 49,500, enough for every phase's sample
size (full needs 45,000); the plan's gates, approvals and (fast-forwarded) bake times are the
same state machine `cutover plan advance` runs.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
CUTOVER = str(Path(sys.executable).with_name("cutover"))
WALK_SIZE = "150000"
PHASES = ["canary-1", "canary-5", "ramp-25", "ramp-50", "full"]


@pytest.mark.slow
def test_demo_with_150000_transactions_walks_the_plan_to_full(tmp_path):
    """Five advances, each on the report.json whose sha256 the gate names; the last to full."""
    folder = tmp_path / "walk"
    done = subprocess.run([CUTOVER, "demo", "--dir", str(folder), "--size", WALK_SIZE],
                          capture_output=True, text=True, cwd=REPO, timeout=280,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "walked to full" in done.stdout
    sha = hashlib.sha256((folder / "run/report.json").read_bytes()).hexdigest()
    engine = sa.create_engine(f"sqlite:///{folder / 'plan.db'}")
    with engine.connect() as conn:
        rows = list(conn.execute(sa.text("select action, to_phase, report_sha256, gate_json from "
                                         "cutover_plan_events order by seq")))
    engine.dispose()
    advances = [r for r in rows if r.action == "advance"]
    assert [r.to_phase for r in advances] == PHASES
    assert not [r for r in rows if r.action == "advance_refused"]
    for row in advances:
        gate = json.loads(row.gate_json)
        assert row.report_sha256 == sha == gate["evidence"]["report_sha256"] and gate["passed"]
        latency = next(c for c in gate["checks"] if c["name"] == "candidate latency p99")
        assert "timed single decisions" in latency["message"]
