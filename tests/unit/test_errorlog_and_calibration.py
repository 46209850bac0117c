"""Failures by kind with the first message verbatim, and calibration over whole replies
(issue 15)."""

from __future__ import annotations

import json

import pytest

from cutover.adapters.xmlpaths import reply_leaves
from cutover.errors import ErrorRateExceeded, NothingUseful, exit_code_for
from cutover.shadow.calibrate import compare_pairs
from cutover.store.errorlog import ErrorLog, read_error_file

REPLY = (b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
         b'<r:Res xmlns:r="urn:x"><r:Header><r:Id>%s</r:Id></r:Header><r:Rates><r:Rate>1</r:Rate>'
         b'<r:Rate>%s</r:Rate></r:Rates><r:Code>00</r:Code></r:Res></s:Body></s:Envelope>')


def test_reply_leaves_are_paths_with_positions_for_repeats():
    """Every leaf by path from the reply element; the second Rate is Rates/Rate[2]."""
    leaves = reply_leaves(REPLY % (b"a", b"2"))
    assert leaves == {"Header/Id": "a", "Rates/Rate": "1", "Rates/Rate[2]": "2", "Code": "00"}


def test_compare_pairs_names_every_volatile_element_mapped_or_not():
    """Two pairs: Header/Id differs in both (unmapped), Rates/Rate[2] in one; Code never."""
    pairs = [({"error": None, "leaves": reply_leaves(REPLY % (b"a", b"2"))},
              {"error": None, "leaves": reply_leaves(REPLY % (b"b", b"2"))}),
             ({"error": None, "leaves": reply_leaves(REPLY % (b"c", b"2"))},
              {"error": None, "leaves": reply_leaves(REPLY % (b"d", b"3"))}),
             ({"error": "timeout", "message": "timeout: 127.0.0.1 read timed out"},
              {"error": None, "leaves": {}})]
    result = compare_pairs(pairs, "w.wsdl", {"Rates/Rate[2]": "fee_minor"})
    assert (result.pairs, result.failed_pairs) == (2, 1)
    assert result.elements == ["Header/Id", "Rates/Rate[2]"]
    assert result.fields == ["fee_minor"]
    assert [e["pairs_differing"] for e in result.evidence] == [2, 1]
    assert result.errors == [("timeout", "timeout: 127.0.0.1 read timed out", None)]


def test_error_log_counts_keeps_the_first_and_writes_every_one(tmp_path):
    """3 failures of 2 kinds: counts, first message verbatim, 3 JSON lines, card masked."""
    path = tmp_path / "errors.jsonl"
    log = ErrorLog(path, scrub=lambda t: t.replace("4111111111111111", "411111******1111"))
    log.add("http_503", "http_503: Service Unavailable", txn_id="T1")
    log.add("http_503", "http_503: second", txn_id="T2")
    log.add("bad_request", "Missing element MsgId (Authorise.Header.MsgId) 4111111111111111")
    log.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == 3 and lines[0]["txn_id"] == "T1"
    assert "4111111111111111" not in path.read_text()
    summary = log.summary(10)
    assert summary[0].startswith("3 of 10 calls failed")
    assert summary[1] == "  http_503 x2: http_503: Service Unavailable"
    again = read_error_file(path)
    assert again.counts == {"http_503": 2, "bad_request": 1}


def test_check_exits_3_when_all_failed_and_1_above_the_rate():
    """Every call failed: NothingUseful (exit 3); 3 of 10 above 5%: ErrorRateExceeded (exit 1);
    under the rate: nothing raised."""
    log = ErrorLog()
    for _ in range(3):
        log.add("timeout", "timeout: read timed out")
    with pytest.raises(NothingUseful) as info:
        log.check(3, 0.05)
    assert exit_code_for(info.value) == 3 and "timeout x3" in str(info.value)
    with pytest.raises(ErrorRateExceeded) as info:
        log.check(10, 0.05)
    assert exit_code_for(info.value) == 1 and "30.0%" in str(info.value)
    log.check(100, 0.05)
