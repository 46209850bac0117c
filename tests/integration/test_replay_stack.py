"""A generated store replayed through the reference stack: conservation, gate-ready report."""

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cutover.replay.engine import run_replay
from tests.replay_support import drop_latency, read_parts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """20,000 generated rows over 8 days and a model trained on the first 4 days."""
    from cutover.sim.traffic import generate
    from cutover.stack.model import train
    root = tmp_path_factory.mktemp("stack")
    store = root / "store"
    generate(store, 20_000, 5, days=8)
    train(store, root / "models", until=datetime(2026, 9, 5, tzinfo=UTC), seed=0)
    return store, root / "models"


def test_generated_store_through_the_reference_stack(trained, tmp_path):
    """Every row categorised; the report carries the model version and the training window,
    and the gate judges it (pass or fail, not unusable input)."""
    store, models = trained
    out = tmp_path / "run"
    summary = run_replay(store, out, candidate_options={"models": str(models)},
                         since="2026-09-05", batch_rows=4_000)
    assert summary.conservation_ok and summary.rows_in > 5_000
    assert summary.by_category["candidate_error"] == 0
    report = json.loads((out / "report.json").read_text())
    assert report["run"]["model_version"] and report["run"]["training_window"]
    assert report["drift"]["reference"]["kind"] == "training_window"
    assert report["latency_ms"]["candidate"]["p99"] > 0
    # report.md shows the two charts the issue asks for, as real PNG images beside it.
    markdown = (out / "report.md").read_text()
    for chart in ("mismatch_timeline", "mismatch_by_merchant"):
        assert f"](charts/{chart}.png)" in markdown
        image = (out / "charts" / f"{chart}.png").read_bytes()
        assert image[:8] == b"\x89PNG\r\n\x1a\n" and len(image) > 2_000
    gate = subprocess.run([sys.executable, "-c", "from cutover.cli import main; main()", "gate",
                           str(out / "report.json"), "--policy",
                           str(ROOT / "fixtures/plans/demo.toml"), "--phase", "canary-1"],
                          capture_output=True, text=True, cwd=ROOT)
    assert gate.returncode in (0, 1), gate.stderr


def test_resume_through_the_reference_stack_is_exact(trained, tmp_path):
    """Stopped after two batches and resumed, the stack's decisions equal an unbroken run's:
    the warm-up restores its look-back state and labels."""
    store, models = trained
    options = {"models": str(models)}
    run_replay(store, tmp_path / "plain", candidate_options=options, since="2026-09-05",
               batch_rows=3_000, report=False)

    class Stop(Exception):
        pass

    def stop(done, total):
        if done >= 6_000:
            raise Stop

    with pytest.raises(Stop):
        run_replay(store, tmp_path / "cut", candidate_options=options, since="2026-09-05",
                   batch_rows=3_000, report=False, on_progress=stop)
    resumed = run_replay(store, tmp_path / "cut", candidate_options=options, since="2026-09-05",
                         batch_rows=3_000, report=False, resume=True)
    assert resumed.resumed_from_batch >= 1
    for sub in ("decisions", "diffs"):
        a = drop_latency(read_parts(tmp_path / "plain", sub))
        b = drop_latency(read_parts(tmp_path / "cut", sub))
        assert a.equals(b), sub
