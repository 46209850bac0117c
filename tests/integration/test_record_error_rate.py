"""`cutover record` against a failing core: each kind of failure counted, exit 3 past the limit."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cutover.cli import app
from cutover.errors import LegacyUnavailable, exit_code_for
from tests.adapters_support import OTHER_MAPPING, closed_port, sample_txn, start_fault_server

runner = CliRunner()


@pytest.fixture(scope="module")
def fault_server():
    server = start_fault_server()
    yield server
    server.stop()


def _record(tmp_path, address: str, n: int, *extra: str):
    requests_file = tmp_path / "r.jsonl"
    requests_file.write_text("".join(json.dumps(sample_txn(i), default=str) + "\n"
                                     for i in range(n)))
    out = tmp_path / "c.yaml"
    result = runner.invoke(app, ["record", "--mapping", str(OTHER_MAPPING), "--address", address,
                                 "--requests", str(requests_file), "--out", str(out), *extra],
                           env={"CUTOVER_TOKEN_KEY": "test-key-not-secret"})
    return result, out


def test_error_rate_over_limit_exits_3_with_first_error_verbatim(tmp_path, fault_server):
    """5 calls to a 500-answering core at limit 0.2: stops after 2 failures, exit 3, no cassette."""
    before = fault_server.calls.get("http500", 0)
    result, out = _record(tmp_path, f"{fault_server.base}/http500", 5, "--max-error-rate", "0.2")
    assert isinstance(result.exception, LegacyUnavailable)
    assert exit_code_for(result.exception) == 3
    assert "2 of 2 calls failed (stopped after 2 of 5)" in str(result.exception)
    assert "failed calls: 2 x http_500: http_500: root element html" in result.stderr
    assert fault_server.calls["http500"] - before == 2
    assert not out.exists() and list(tmp_path.glob("*.partial")) == []


def test_refused_core_is_recorded_as_refused_not_breaker_open(tmp_path):
    """A dead core: 2 calls refused (3 tries each, the breaker opens at 5), then 3 breaker_open
    that quote the refusal; the refusal comes first, exit 3 after 5 of 8."""
    port = closed_port()
    result, _ = _record(tmp_path, f"http://127.0.0.1:{port}/x", 8, "--max-error-rate", "0.5")
    assert exit_code_for(result.exception) == 3
    lines = [line for line in result.stderr.splitlines() if line.startswith("failed calls")]
    refused = f"connection_refused: http://127.0.0.1:{port}/x: [Errno"
    assert len(lines) == 2 and all(line.endswith("Connection refused") for line in lines)
    assert lines[0].startswith(f"failed calls: 2 x connection_refused: {refused}")
    assert lines[1].startswith("failed calls: 3 x breaker_open: circuit breaker is open, call"
                               f" not made; the core's last failure: {refused}")


def test_timeouts_are_named_and_cut_at_deadline(tmp_path, fault_server):
    """A silent core with --deadline-s 0.5: 'timeout' with its message, exit 3, about 1 s."""
    import time
    started_s = time.monotonic()
    result, _ = _record(tmp_path, f"{fault_server.base}/slow", 4, "--max-error-rate", "0.25",
                        "--deadline-s", "0.5")
    assert exit_code_for(result.exception) == 3
    assert "failed calls: 2 x timeout: timeout: no reply within the 0.5 s deadline" in (
        result.stderr)
    assert time.monotonic() - started_s < 2 * 0.5 + 1.0


def test_errors_under_the_limit_still_write_the_cassette(tmp_path, fault_server):
    """With the default limit, 2 good calls record a cassette and exit 0 with no failure lines."""
    result, out = _record(tmp_path, f"{fault_server.base}/ok", 2, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["failed_calls"] == {}
    assert out.exists() and "failed calls" not in result.stderr


def test_out_as_a_directory_is_refused_before_any_call(tmp_path, fault_server):
    """--out naming a directory is unusable input (exit 2), and the core is never called."""
    from cutover.errors import InputError
    before = fault_server.calls.get("ok", 0)
    requests_file = tmp_path / "r.jsonl"
    requests_file.write_text(json.dumps(sample_txn(1), default=str) + "\n")
    result = runner.invoke(app, ["record", "--mapping", str(OTHER_MAPPING), "--address",
                                 f"{fault_server.base}/ok", "--requests", str(requests_file),
                                 "--out", str(tmp_path)],
                           env={"CUTOVER_TOKEN_KEY": "test-key-not-secret"})
    assert isinstance(result.exception, InputError) and exit_code_for(result.exception) == 2
    assert "is a directory" in str(result.exception)
    assert fault_server.calls.get("ok", 0) == before
