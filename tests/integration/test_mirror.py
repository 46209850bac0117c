"""client -> cutover mirror -> simulated legacy core, with cutover serve as the candidate."""

import json
import os
import time
from pathlib import Path

import pytest

from cutover.mirror.service import MirrorOptions, start_in_thread, stop_mirror
from cutover.paths import fixtures_dir
from tests.replay_support import gate_canary, read_parts
from tests.serve_support import (
    TEST_PAN,
    RecordingCore,
    serving,
    soap_client_send,
    store_rows,
    train_small,
)

MAPPING = fixtures_dir() / "mappings" / "legacy_auth.toml"
PLAN = """
name = "mirror-test"
salt = "mirror-test"
sticky_key = "merchant_id"
[[phases]]
name = "shadow"
percent = 0
approvals = 0
bake = "0s"
[[phases]]
name = "canary"
percent = 60
approvals = 0
bake = "0s"
gate = { min_sample = 10, max_candidate_error_rate = 1.0 }
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small store and a model trained on its first half."""
    return train_small(tmp_path_factory.mktemp("mirror"))


@pytest.fixture(autouse=True)
def token_key(monkeypatch):
    monkeypatch.setenv("CUTOVER_TOKEN_KEY", "test-key-not-secret")
    monkeypatch.setenv("CUTOVER_ADMIN_TOKEN", "admin-test-token")


def _no_pan_in(folder) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert TEST_PAN.encode() not in path.read_bytes(), path


def test_shadow_mode_replies_byte_equal_and_run_gates(trained, tmp_path):
    """Shadow mode: every client reply is byte-for-byte the legacy core's, every request is
    committed once with both outcomes, no card number reaches disk, the admin endpoint needs
    the token, and the run directory reports (conservation holds) and gates like a replay's."""
    store, models = trained
    rows = store_rows(store, limit=240)
    core = RecordingCore()
    with serving(models) as service:
        opts = MirrorOptions(core.wsdl_url, MAPPING, tmp_path / "run", service.url,
                             flush_s=0.2)
        server, mirror = start_in_thread(opts)
        try:
            sent = soap_client_send(server.url, rows, pan_rows=5)
            import requests
            refused = [requests.get(server.url + "/admin/status", timeout=5, headers=h).status_code
                       for h in ({}, {"Authorization": "Bearer wrong"})]
            allowed = requests.get(server.url + "/admin/status", timeout=5,
                                   headers={"Authorization": "Bearer admin-test-token"})
        finally:
            server.stop()
            stop_mirror(mirror)
    core.stop()
    assert refused == [403, 403] and allowed.json()["received"] == 240
    assert server.url.startswith("http://127.0.0.1:")
    assert len(sent) == 240 and all(status == 200 for _, status, _ in sent)
    assert all(body == core.replies[txn_id] for txn_id, _, body in sent)
    diffs = read_parts(tmp_path / "run", "diffs")
    assert diffs.num_rows == 240 and len(set(diffs["txn_id"].to_pylist())) == 240
    assert "candidate_error" not in diffs["category"].to_pylist()
    _no_pan_in(tmp_path / "run")
    from cutover.shadow.report import write_reports
    report = write_reports(tmp_path / "run")
    assert report["counts"]["in"] == 240 and report["counts"]["conservation_ok"]
    assert gate_canary(tmp_path / "run" / "report.json").returncode in (0, 1)


def _plan_db(tmp_path):
    import sqlalchemy as sa

    from cutover.migrate.state import PlanMachine
    url = f"sqlite:///{tmp_path / 'plan.db'}"
    machine = PlanMachine(sa.create_engine(url))
    machine.init(PLAN, "plan.toml", "tester")
    return url, machine


def test_canary_cohort_answered_by_candidate_with_fallback_and_rollback(trained, tmp_path):
    """With the plan in a 60% canary the candidate answers its cohort in the legacy reply's
    shape; stopping the candidate mid-test fails no client request (fallbacks counted);
    a plan rollback sends everyone back to legacy within a second, without a restart."""
    from cutover.shadow.report import write_reports
    store, models = trained
    rows = store_rows(store, limit=360)
    url, machine = _plan_db(tmp_path)
    core = RecordingCore()
    with serving(models) as service:
        opts = MirrorOptions(core.wsdl_url, MAPPING, tmp_path / "run", service.url,
                             plan_db=url, flush_s=0.2)
        # Shadow phase, stopped: its finished run is the evidence that enters the canary.
        server, mirror = start_in_thread(opts)
        soap_client_send(server.url, rows[:60])
        server.stop()
        stop_mirror(mirror)
        machine.advance(write_reports(tmp_path / "run"), "0" * 64, "tester")
        server, mirror = start_in_thread(opts)  # the same run, continued
        try:
            canary = soap_client_send(server.url, rows[60:160])
            served = mirror.worker.status()["served_by_candidate"]
            service.stop()
            down = soap_client_send(server.url, rows[160:260])
            fallbacks = dict(mirror.worker.status()["fallbacks"])
            machine.rollback("tester", "test rollback")
            time.sleep(1.0)
            after = soap_client_send(server.url, rows[260:360])
            status = mirror.worker.status()
        finally:
            server.stop()
            stop_mirror(mirror)
    core.stop()
    assert all(code == 200 for _, code, _ in canary + down + after)
    by_candidate = [t for t, _, _ in canary if t not in core.replies]
    assert 20 < len(by_candidate) == served < 100
    assert all(t in core.replies for t, _, _ in down)  # the legacy core answered all of them
    assert sum(fallbacks.values()) > 20 and set(fallbacks) <= {"connection_refused",
                                                                "breaker_open", "timeout"}
    assert status["served_by_candidate"] == served and mirror.phase.phase == "shadow"
    assert all(body == core.replies[t] for t, _, body in after)


def test_mirror_restart_after_sigkill_loses_no_committed_batch(trained, tmp_path):
    """`cutover mirror` killed with SIGKILL after committing, then restarted on the same run
    directory: committed parts are untouched, resent requests are not written twice."""
    import signal
    import socket
    import subprocess
    import sys

    import requests
    store, models = trained
    rows = store_rows(store, limit=150)
    core = RecordingCore()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mirror_url = f"http://127.0.0.1:{port}"
    with serving(models) as service:
        cmd = [str(Path(sys.executable).parent / "cutover"), "mirror", "--wsdl", core.wsdl_url,
               "--mapping", str(MAPPING), "--out", str(tmp_path / "run"), "--candidate",
               service.url, "--port", str(port), "--flush-s", "0.2"]
        env = dict(os.environ)

        def start():
            proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE)
            for _ in range(200):
                try:
                    requests.get(mirror_url + "/admin/status", timeout=0.5)
                    return proc
                except requests.ConnectionError:
                    time.sleep(0.05)
            proc.kill()
            raise AssertionError(proc.stderr.read().decode())

        def committed():
            reply = requests.get(mirror_url + "/admin/status", timeout=5,
                                 headers={"Authorization": "Bearer admin-test-token"})
            return reply.json()

        proc = start()
        soap_client_send(mirror_url, rows[:100])
        for _ in range(100):
            if committed()["committed"] == 100:
                break
            time.sleep(0.05)
        first = (tmp_path / "run" / "diffs" / "part-000000.parquet").read_bytes()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc = start()
        resent = soap_client_send(mirror_url, rows)  # the first 100 again, then 50 new
        for _ in range(100):
            if committed()["committed"] == 150:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    core.stop()
    assert all(code == 200 for _, code, _ in resent)
    assert (tmp_path / "run" / "diffs" / "part-000000.parquet").read_bytes() == first
    diffs = read_parts(tmp_path / "run", "diffs")
    ids = diffs["txn_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 150
    stats = json.loads((tmp_path / "run" / "mirror.json").read_text())
    assert stats["duplicates"] == 100
    checkpoint = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert checkpoint["rows_in"] == 150 and checkpoint["finished"]
