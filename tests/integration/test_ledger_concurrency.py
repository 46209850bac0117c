"""Two real processes applying one run to one database at once: no duplicates, intact chain."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cutover.shadow.ledger.uow import default_url, make_engine
from cutover.shadow.ledger.verify import verify_ledger
from tests.ledger_support import (
    ledger_counts,
    make_diffs,
    pg_base_url,
    pg_drop_schema,
    pg_schema_url,
    write_run,
)

CUTOVER = str(Path(sys.executable).with_name("cutover"))
PROCESS_TIMEOUT_S = 120


def _apply_twice_at_once(run: Path, url: str) -> list[dict]:
    procs = [subprocess.Popen([CUTOVER, "shadow", "apply", str(run), "--db", url, "--quiet",
                               "--json", "--batch-rows", "500"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=PROCESS_TIMEOUT_S)
        assert proc.returncode == 0, stderr
        results.append(json.loads(stdout))
    return results


def _check(url: str, run: Path) -> None:
    results = _apply_twice_at_once(run, url)
    engine = make_engine(url)
    counts = ledger_counts(engine)
    assert sum(r["entries"] for r in results) == counts["ledger_entries"]
    assert sum(r["parts_applied"] for r in results) == 6 == counts["ledger_progress"]
    report = verify_ledger(engine)
    assert report.ok and report.entries == counts["ledger_entries"]
    engine.dispose()


def _run(tmp_path: Path) -> Path:
    return write_run(tmp_path, [make_diffs(1500, seed=s, start=s * 1500) for s in range(6)])


def test_two_processes_on_sqlite(tmp_path):
    """Both processes finish; each part is booked by exactly one of them; chain verifies."""
    run = _run(tmp_path)
    _check(default_url(run), run)


@pytest.mark.postgres
def test_two_processes_on_postgresql(tmp_path):
    """Same on PostgreSQL, serialised by the advisory lock, in a schema of its own."""
    base = pg_base_url()
    url, schema = pg_schema_url(base)
    try:
        _check(url, _run(tmp_path))
    finally:
        pg_drop_schema(base, schema)


def test_a_killed_apply_resumes_to_the_same_ledger(tmp_path):
    """SIGKILL mid-apply, rerun: same entries and head hash as an uninterrupted apply."""
    import time
    tables = [make_diffs(2500, seed=s, start=2500 * s) for s in range(5)]
    killed, whole = write_run(tmp_path / "killed", tables), write_run(tmp_path / "whole", tables)
    proc = subprocess.Popen([CUTOVER, "shadow", "apply", str(killed), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.2)
    proc.kill()
    proc.wait(timeout=PROCESS_TIMEOUT_S)
    for run in (killed, whole):
        done = subprocess.run([CUTOVER, "shadow", "apply", str(run), "--quiet", "--json"],
                              capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S)
        assert done.returncode == 0, done.stderr
    heads = []
    for run in (killed, whole):
        engine = make_engine(default_url(run))
        assert verify_ledger(engine).ok
        heads.append((ledger_counts(engine), engine.raw_connection().driver_connection.execute(
            "SELECT hash FROM ledger_entries ORDER BY seq DESC LIMIT 1").fetchone()))
        engine.dispose()
    assert heads[0] == heads[1]
