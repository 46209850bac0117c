"""Kill a replay subprocess with SIGKILL at random points, resume, and get the unbroken output."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cutover.replay.engine import run_replay
from tests.replay_support import drop_latency, make_traffic, read_parts, with_bad_rows, write_store

ROOT = Path(__file__).resolve().parents[2]
MIRROR = "tests.replay_support:mirror_candidate"
# merchant_risk makes decisions depend on labels seen so far, the 1 h velocity on the rows
# seen so far: a resume that did not warm the stack exactly would decide differently.
OPTIONS = {"merchant_risk": "2", "raise_share": "0.1", "error_share": "0.01", "sleep_s": "0.04"}
BATCH_ROWS = 400
KILLS = 3
WAIT_S_MAX = 60.0


def _command(store: Path, out: Path, resume: bool) -> list[str]:
    argv = [sys.executable, "-c", "from cutover.cli import main; main()", "replay", str(store),
            "--out", str(out), "--candidate", MIRROR, "--batch-rows", str(BATCH_ROWS),
            "--since", "2026-10-02", "--quiet", "--json"]
    for key, value in OPTIONS.items():
        argv += ["--candidate-opt", f"{key}={value}"]
    return argv + (["--resume"] if resume else [])


def _committed(out: Path) -> int:
    try:
        return json.loads((out / "checkpoint.json").read_text())["batches_committed"]
    except (OSError, ValueError, KeyError):
        return 0


def _kill_after_progress(store: Path, out: Path, rng: random.Random) -> int:
    """Start (or resume) the replay, SIGKILL it a random moment after it commits a batch."""
    before = _committed(out)
    proc = subprocess.Popen(_command(store, out, resume=True), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + WAIT_S_MAX
    while _committed(out) <= before and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.3))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return _committed(out)


def _comparable(report: dict) -> dict:
    """The report without run metadata and the candidate's timed single decisions (measured)."""
    out = {k: v for k, v in report.items() if k != "run"}
    out["latency_ms"] = {k: v for k, v in out["latency_ms"].items() if k != "candidate"}
    return out


@pytest.mark.slow
def test_sigkill_and_resume_equals_an_uninterrupted_run(tmp_path):
    """Several SIGKILLs at random moments; the resumed run's diffs, decisions and report
    (run metadata and latency columns aside) equal those of a run never interrupted."""
    store = write_store(tmp_path / "store", with_bad_rows(make_traffic(12_000, seed=5, hours=96)))
    plain = tmp_path / "plain"
    run_replay(store, plain, candidate=MIRROR, candidate_options=OPTIONS, batch_rows=BATCH_ROWS,
               since="2026-10-02")
    out = tmp_path / "killed"
    rng = random.Random(20261123)
    progress = [_kill_after_progress(store, out, rng) for _ in range(KILLS)]
    assert progress == sorted(progress) and progress[0] >= 1
    finished = subprocess.run(_command(store, out, resume=True), cwd=ROOT, capture_output=True,
                              text=True, timeout=WAIT_S_MAX)
    assert finished.returncode == 0, finished.stderr
    summary = json.loads(finished.stdout)
    assert summary["resumed_from_batch"] == progress[-1] > 0
    assert summary["conservation_ok"] and summary["rows_in"] == summary["categorised"]
    for sub in ("diffs", "decisions"):
        a = drop_latency(read_parts(plain, sub)).sort_by("txn_id")
        b = drop_latency(read_parts(out, sub)).sort_by("txn_id")
        assert a.num_rows == b.num_rows > 0 and a.equals(b), sub
    plain_report = json.loads((plain / "report.json").read_text())
    killed_report = json.loads((out / "report.json").read_text())
    assert _comparable(plain_report) == _comparable(killed_report)
    assert len(killed_report["run"]["resumed_at"]) >= KILLS - 1
