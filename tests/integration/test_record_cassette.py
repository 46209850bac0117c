"""Recording writes cassettes with no card number in them; playback answers offline by TxnId."""

from __future__ import annotations

import random

import pytest

from cutover.adapters.cassette import read_cassette, record_calls
from cutover.adapters.legacy import open_legacy
from cutover.adapters.soap import SoapOptions
from cutover.adapters.tokenize import tokenize_pan
from tests.adapters_support import (
    OTHER_MAPPING,
    make_pan,
    sample_txn,
    scan_for_pans,
    start_fault_server,
)

KEY = b"test-key-not-secret"


@pytest.fixture(scope="module")
def fault_server():
    server = start_fault_server()
    yield server
    server.stop()


def test_record_tokenises_then_playback_replays(tmp_path, fault_server):
    """A 5-call recording holds tokens, not PANs, and cassette playback gives the same outcomes."""
    rng = random.Random(7)
    pans = [make_pan(rng) for _ in range(5)]
    txns = [sample_txn(i, 1000 + (13 if i == 2 else 0)) | {"pan": pans[i]} for i in range(5)]
    for t in txns:
        del t["card_token"]
    out = tmp_path / "c.yaml"
    options = SoapOptions(address=f"{fault_server.base}/ok")
    live = record_calls(OTHER_MAPPING, txns, out, KEY, options=options)
    assert [o["legacy_decision"] for o in live] == ["approve"] * 2 + ["decline"] + ["approve"] * 2
    assert scan_for_pans(tmp_path) == []
    text = out.read_text()
    assert all(tokenize_pan(p, KEY) in text for p in pans)
    assert len(read_cassette(out)) == 5
    fault_server.stop_calls = fault_server.calls.get("ok", 0)
    legacy = open_legacy("cassette", mapping=OTHER_MAPPING, cassette=out,
                         address=f"{fault_server.base}/ok")
    # Different card value and a later time: matching is on the TxnId, not raw bytes.
    replayed = [legacy.authorize(sample_txn(i, 1000 + (13 if i == 2 else 0))) for i in
                reversed(range(5))]
    legacy.close()
    played = [o["legacy_decision"] for o in reversed(replayed)]
    assert played == [o["legacy_decision"] for o in live]
    assert fault_server.calls["ok"] == fault_server.stop_calls
