"""Eleven ways a legacy core misbehaves, each cut by the deadline, small in memory, with its reason.

A real HTTP server on 127.0.0.1 misbehaves on purpose (tests/adapters_support.py); the client
runs in a fresh process (tests/legacy_fault_probe.py) so its peak RSS is the faults' cost alone.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.adapters_support import ROOT, start_fault_server

DEADLINE_S = 1.5
#: Each call ends within the deadline plus this (the brief's bound).
SLACK_S = 1.0
PEAK_GROWTH_MB_MAX = 300.0
PROBE_TIMEOUT_S = 120

EXPECTED = {
    "timeout": "timeout", "refused": "connection_refused", "http_5xx": "http_500",
    "soap_fault": "soap_fault:Server", "truncated_xml": "truncated_xml",
    "wrong_namespace": "wrong_namespace", "xxe": "unsafe_xml", "billion_laughs": "unsafe_xml",
    "huge_200mb": "response_too_large", "header_drip": "drip_headers", "body_drip": "drip_body",
}


@pytest.fixture(scope="module")
def probe() -> dict:
    """Run every fault kind once in a child process against one fault server."""
    server = start_fault_server()
    try:
        done = subprocess.run([sys.executable, str(ROOT / "tests" / "legacy_fault_probe.py"),
                               server.base, str(DEADLINE_S)], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S, cwd=ROOT)
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    result["by_kind"] = {k["kind"]: k for k in result["kinds"]}
    return result


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_fault_kind_has_its_reason_within_deadline_and_memory(probe, kind):
    """The kind ends as an error with its own reason, within deadline + 1 s, under 300 MB growth."""
    seen = probe["by_kind"][kind]
    assert (seen["decision"], seen["reason"]) == ("error", EXPECTED[kind]), seen
    assert seen["elapsed_s"] <= DEADLINE_S + SLACK_S, seen
    assert seen["peak_growth_mb"] < PEAK_GROWTH_MB_MAX, seen


def test_drip_and_silence_are_cut_at_the_deadline_not_before(probe):
    """Silent and dripping peers are held for the whole deadline (1.5 s), then cut."""
    for kind in ("timeout", "header_drip", "body_drip"):
        assert DEADLINE_S - 0.05 <= probe["by_kind"][kind]["elapsed_s"] <= DEADLINE_S + SLACK_S


def test_record_caps_a_200_mb_reply_before_the_cassette(probe):
    """Recording the 200 MB reply stops at the 1 MiB cap: no cassette, little memory, quickly."""
    record = probe["record"]
    assert record["reason"] == "response_too_large"
    assert record["cassette_written"] is False
    assert record["peak_growth_mb"] < PEAK_GROWTH_MB_MAX
    assert record["elapsed_s"] <= DEADLINE_S + SLACK_S
