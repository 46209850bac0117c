"""`cutover load` and `cutover serve` from the command line."""

import json

from tests.cli_support import run_cli
from tests.replay_support import make_traffic, write_store
from tests.serve_support import RecordingCore


def test_load_sends_at_the_rate_and_summarises(tmp_path):
    """`cutover load --rate 200` sends every row of the store to the core at about that
    pace and prints the latency summary with no errors."""
    store = write_store(tmp_path / "store", make_traffic(120))
    core = RecordingCore()
    try:
        code, stdout, errors = run_cli(["load", store, "--target",
                                        core.core.url.removesuffix("/soap"), "--rate", "200",
                                        "--json"])
    finally:
        core.stop()
    assert code == 0, errors
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["sent"] == summary["ok"] == 120 and summary["errors"] == {}
    assert len(core.replies) == 120
    assert 0.5 <= summary["seconds"] <= 5.0
    assert 0 < summary["latency_ms"]["p50"] <= summary["latency_ms"]["p99"]


def test_load_against_nothing_exits_3(tmp_path):
    """Every request refused: errors counted by kind and exit 3 (the outside service)."""
    import socket
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = write_store(tmp_path / "store", make_traffic(5))
    code, _, errors = run_cli(["load", store, "--target", f"http://127.0.0.1:{port}",
                               "--rate", "1000"])
    assert code == 3 and "connection_refused" in errors


def test_load_needs_one_pace(tmp_path):
    """Neither --rate nor --speed: unusable input, exit 2."""
    store = write_store(tmp_path / "store", make_traffic(5))
    code, _, errors = run_cli(["load", store, "--target", "http://127.0.0.1:9"])
    assert code == 2 and "--rate" in errors
