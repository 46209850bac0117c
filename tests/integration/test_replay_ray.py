"""The Ray engine against the local one on the same store: same parts, same report; a killed Ray
run resumed equals an unbroken one; without Ray, --engine ray exits 2 with the install hint.

One local Ray instance (2 CPUs, token auth off) serves the whole module: starting one costs
about 4 s and 850 MiB, so the tests share it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cutover.replay.engine import run_replay
from tests.replay_support import drop_latency, make_traffic, read_parts, with_bad_rows, write_store

try:
    import ray
except ImportError:  # the tests that need it skip; the "not installed" test still runs
    ray = None
requires_ray = pytest.mark.skipif(
    ray is None, reason="the ray extra is not installed (pip install 'cutover[ray]')")

ROOT = Path(__file__).resolve().parents[2]
MIRROR = "tests.replay_support:mirror_candidate"
# merchant_risk makes a decision depend on every label seen before it, the 1 h velocity on the
# rows seen before it: a segment warmed wrongly decides differently from the local run.
OPTIONS = {"merchant_risk": "2", "raise_share": "0.1", "error_share": "0.01", "flip": "0.05"}
BATCH_ROWS = 500
WAIT_S_MAX = 90.0


@pytest.fixture(scope="module")
def ray_address():
    """A local Ray with 2 CPUs for this module; its address lets a subprocess driver join."""
    if ray is None:  # a second guard: a test that forgets @requires_ray skips, never errors
        pytest.skip("the ray extra is not installed (pip install 'cutover[ray]')")
    with pytest.MonkeyPatch.context() as patch:
        # A throwaway instance: no token file written to ~/.ray (docs/ray.md for real clusters).
        patch.setenv("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 object_store_memory=128 * 1024 * 1024)
        try:
            yield ray.get_runtime_context().gcs_address
        finally:
            ray.shutdown()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """8,000 rows over four days (longer than the 25 h look-back), five of them broken."""
    root = tmp_path_factory.mktemp("ray") / "store"
    return write_store(root, with_bad_rows(make_traffic(8_000, seed=7, hours=96)))


@pytest.fixture(scope="module")
def local_run(store, tmp_path_factory):
    """The local engine's run of the store: what every Ray run must reproduce."""
    out = tmp_path_factory.mktemp("local") / "run"
    run_replay(store, out, candidate=MIRROR, candidate_options=OPTIONS, batch_rows=BATCH_ROWS,
               since="2026-10-02")
    return out


def _without_run(report: dict) -> dict:
    """The report without what differs between two runs by design: the run's own metadata
    and the measured latency (timed decisions, like the parts' latency columns)."""
    return {k: v for k, v in report.items() if k not in ("run", "latency_ms")}


def _judged(result) -> list:
    """The gate's checks, the latency check reduced to its name and verdict (it judges a
    measured figure, which differs between two runs of the same input)."""
    return [(c.name, c.passed) if "latency" in c.name else c for c in result.checks]


def _assert_same_output(expected: Path, actual: Path) -> None:
    for sub in ("diffs", "decisions"):
        a = drop_latency(read_parts(expected, sub)).sort_by("txn_id")
        b = drop_latency(read_parts(actual, sub)).sort_by("txn_id")
        assert a.num_rows == b.num_rows > 0 and a.equals(b), sub
    parts = sorted(p.name for p in (expected / "diffs").glob("part-*.parquet"))
    assert parts == sorted(p.name for p in (actual / "diffs").glob("part-*.parquet"))
    a_report = json.loads((expected / "report.json").read_text())
    b_report = json.loads((actual / "report.json").read_text())
    assert _without_run(a_report) == _without_run(b_report)
    a_cp = json.loads((expected / "checkpoint.json").read_text())
    b_cp = json.loads((actual / "checkpoint.json").read_text())
    assert {k: v for k, v in a_cp.items() if k != "fingerprint"} == \
        {k: v for k, v in b_cp.items() if k != "fingerprint"}


@pytest.mark.ray
@requires_ray
def test_ray_run_equals_the_local_run(ray_address, store, local_run, tmp_path):
    """Same store through Ray (two workers, so two segments each warmed mid-run): the sorted
    diffs and decisions, the part numbers, checkpoint and report (run metadata aside) equal."""
    from cutover.replay.ray_engine import run_replay_ray
    out = tmp_path / "ray"
    summary = run_replay_ray(store, out, candidate=MIRROR, candidate_options=OPTIONS,
                             batch_rows=BATCH_ROWS, since="2026-10-02")
    local = json.loads((local_run / "report.json").read_text())
    assert summary.conservation_ok and summary.rows_in == local["counts"]["in"] > 5_000
    assert summary.by_category == local["counts"]["by_category"]
    run = json.loads((out / "run.json").read_text())
    assert run["engine"] == "ray" and run["ray"]["workers"] == 2 and run["ray"]["segments"] == 2
    _assert_same_output(local_run, out)


@pytest.mark.ray
@requires_ray
def test_more_segments_than_workers_still_equal(ray_address, store, local_run, tmp_path):
    """Seven segments on two workers: later segments reload the candidate, and every segment
    boundary is another warm-up that must land on the local state."""
    from cutover.replay import partitions
    from cutover.replay.ray_engine import run_replay_ray
    from cutover.store.filters import Narrowing, parse_when
    plan = partitions.plan_run(store, Narrowing(since=parse_when("2026-10-02")), BATCH_ROWS)
    assert len(plan.spans) >= 7
    out = tmp_path / "ray"
    # workers=7 on a 2-CPU cluster is capped at 2 actors; segments follow the request.
    summary = run_replay_ray(store, out, candidate=MIRROR, candidate_options=OPTIONS,
                             batch_rows=BATCH_ROWS, since="2026-10-02", workers=7)
    assert summary.conservation_ok
    _assert_same_output(local_run, out)


def _cli(store: Path, out: Path, address: str, *extra: str) -> list[str]:
    argv = [sys.executable, "-c", "from cutover.cli import main; main()", "replay", str(store),
            "--out", str(out), "--candidate", MIRROR, "--batch-rows", str(BATCH_ROWS),
            "--since", "2026-10-02", "--engine", "ray", "--address", address, "--quiet",
            "--json", *extra]
    for key, value in OPTIONS.items():
        argv += ["--candidate-opt", f"{key}={value}"]
    return argv


def _committed(out: Path) -> int:
    folder = out / "commits"
    return len(list(folder.glob("part-*.json"))) if folder.is_dir() else 0


def _settled(out: Path, quiet_s: float = 1.5) -> int:
    """Committed batches once the count stops moving: Ray reaps a dead driver's workers within
    a moment, and one may still commit the batch it was writing."""
    count, since = _committed(out), time.monotonic()
    deadline = since + WAIT_S_MAX
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        time.sleep(0.1)
        if _committed(out) != count:
            count, since = _committed(out), time.monotonic()
    return count


@pytest.mark.ray
@requires_ray
def test_killed_ray_run_resumes_to_the_local_output(ray_address, store, local_run, tmp_path):
    """SIGKILL the driver (a CLI subprocess) once some batches are committed, resume with
    --resume: only the missing batches are redone and the output equals the local run's."""
    out = tmp_path / "killed"
    env = os.environ | {"RAY_AUTH_MODE": "disabled"}
    # sleep_s slows each batch so the kill lands mid-run; it does not change any decision.
    slow = _cli(store, out, ray_address, "--candidate-opt", "sleep_s=0.5")
    proc = subprocess.Popen(slow, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + WAIT_S_MAX
    while _committed(out) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _settled(out)
    planned = len(list((local_run / "diffs").glob("part-*.parquet")))
    assert 3 <= killed_at < planned, (killed_at, planned)
    assert json.loads((out / "checkpoint.json").read_text())["finished"] is False
    # The resume must use the same options as the killed run (the fingerprint says so).
    finished = subprocess.run([*slow, "--resume"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=WAIT_S_MAX)
    assert finished.returncode == 0, finished.stderr[-3000:]
    summary = json.loads(finished.stdout)
    assert summary["resumed_from_batch"] == killed_at
    assert summary["conservation_ok"] and summary["rows_in"] == summary["categorised"]
    _assert_same_output(local_run, out)
    run = json.loads((out / "run.json").read_text())
    assert run["resumed_at"][0]["batches_committed"] == killed_at


@pytest.mark.ray
@requires_ray
def test_resume_refuses_to_mix_engines(ray_address, store, local_run, tmp_path):
    """A local run directory resumed with --engine ray is refused (exit 2), unchanged."""
    import shutil
    out = tmp_path / "local"
    shutil.copytree(local_run, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    env = os.environ | {"RAY_AUTH_MODE": "disabled"}
    result = subprocess.run([*_cli(store, out, ray_address), "--resume"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=WAIT_S_MAX)
    assert result.returncode == 2 and "different inputs or options" in result.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


BLOCK_RAY = """
import sys
class _NoRay:
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError("No module named 'ray'", name=name)
        return None
sys.meta_path.insert(0, _NoRay())
"""


def test_engine_ray_without_ray_exits_2_with_the_install_hint(store, tmp_path):
    """With ray unimportable (a sitecustomize blocks it), --engine ray exits 2, names the
    extra to install, and writes nothing."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_RAY)
    env = os.environ | {"PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-c", "from cutover.cli import main; main()",
                             "replay", str(store), "--out", str(out), "--candidate", MIRROR,
                             "--engine", "ray", "--quiet"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=WAIT_S_MAX)
    assert result.returncode == 2, result.stderr
    assert "pip install 'cutover[ray]'" in result.stderr
    assert not out.exists()
    probe = subprocess.run([sys.executable, "-c", "import ray"], env=env, capture_output=True)
    assert probe.returncode == 1  # the blocker really hides ray


@pytest.mark.ray
@requires_ray
def test_ledger_and_gate_read_a_ray_run_as_a_local_one(ray_address, store, local_run, tmp_path):
    """Shadow ledger apply and the gate on a Ray run give the local run's books and verdict."""
    from cutover.migrate.gate import evaluate
    from cutover.migrate.plan import load_policy
    from cutover.replay.ray_engine import run_replay_ray
    from cutover.shadow.ledger.apply import apply_run
    from cutover.shadow.ledger.compare import class_totals
    from cutover.shadow.ledger.uow import make_engine
    from cutover.shadow.ledger.verify import verify_ledger

    out = tmp_path / "ray"
    run_replay_ray(store, out, candidate=MIRROR, candidate_options=OPTIONS,
                   batch_rows=BATCH_ROWS, since="2026-10-02")
    books, postings = [], []
    for run, db in ((local_run, tmp_path / "local.db"), (out, tmp_path / "ray.db")):
        engine = make_engine(f"sqlite:///{db}")
        postings.append(apply_run(engine, run).postings)
        assert verify_ledger(engine).ok
        books.append(class_totals(engine))
        engine.dispose()
    assert postings[0] == postings[1] > 0 and books[0] == books[1] and books[0]
    policy = load_policy(ROOT / "cutover" / "fixtures" / "plans" / "demo.toml", "canary-1")
    verdicts = [evaluate(json.loads((run / "report.json").read_text()), policy, phase="canary-1")
                for run in (local_run, out)]
    assert len(verdicts[0].checks) > 5 and _judged(verdicts[0]) == _judged(verdicts[1])
    assert verdicts[0].passed == verdicts[1].passed
