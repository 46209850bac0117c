"""The SOAP adapter against a fault-injecting server: every failure ends as a canonical outcome."""

from __future__ import annotations

import time

import pytest

from cutover.adapters.soap import SoapAdapter, SoapOptions
from cutover.adapters.transport import CircuitBreaker
from tests.adapters_support import (
    OTHER_MAPPING,
    FakeClock,
    closed_port,
    sample_txn,
    start_fault_server,
)


@pytest.fixture(scope="module")
def fault_server():
    server = start_fault_server()
    yield server
    server.stop()


def _adapter(server, path: str, **opts) -> SoapAdapter:
    opts.setdefault("read_timeout_s", 1.0)
    opts.setdefault("deadline_s", 1.5)
    options = SoapOptions(address=f"{server.base}/{path}", calls_per_s=1000,
                          retry_attempts_max=opts.pop("retries", 1), **opts)
    return SoapAdapter(OTHER_MAPPING, options=options, breaker=CircuitBreaker(failures_max=100))


def test_second_wsdl_works_by_mapping_alone(fault_server):
    """other_core.wsdl (decimal major amounts, other names, other namespace) maps by file alone."""
    adapter = _adapter(fault_server, "ok")
    approve = adapter.authorize(sample_txn(1, 1050))
    decline = adapter.authorize(sample_txn(2, 1013))
    unknown = adapter.authorize(sample_txn(3, 1099))
    assert (approve["legacy_decision"], approve["legacy_reason"], approve["legacy_code"]) == (
        "approve", "approved", "A")
    assert approve["legacy_fee_minor"] == 25 and approve["legacy_route"] == "GW_A"
    assert (decline["legacy_decision"], decline["legacy_reason"]) == ("decline", "do_not_honor")
    assert (unknown["legacy_decision"], unknown["legacy_reason"], unknown["legacy_code"]) == (
        "error", "unknown_code", "Z")


@pytest.mark.parametrize(("path", "reason"), [
    ("slow", "timeout"), ("http500", "http_500"), ("http503", "http_503"),
    ("fault", "soap_fault:Server"), ("truncated", "truncated_xml"), ("short", "truncated"),
    ("wrongns", "wrong_namespace"), ("extra", "unexpected_response"),
    ("notsoap", "unexpected_response"), ("xxe", "unsafe_xml"), ("laughs", "unsafe_xml"),
    ("huge", "response_too_large"),
])
def test_each_fault_is_a_canonical_outcome(fault_server, path, reason):
    """Each injected failure becomes decision 'error' with its canonical reason, quickly."""
    started = time.monotonic()
    outcome = _adapter(fault_server, path).authorize(sample_txn(7))
    assert outcome["legacy_decision"] == "error"
    assert outcome["legacy_reason"] == reason
    assert outcome["txn_id"] == "T000007"
    assert time.monotonic() - started < 1.5 + 1.0


def test_connection_refused_is_an_outcome():
    """A port nobody listens on gives 'connection_refused', not an exception."""
    options = SoapOptions(address=f"http://127.0.0.1:{closed_port()}/x", connect_timeout_s=0.5)
    outcome = SoapAdapter(OTHER_MAPPING, options=options).authorize(sample_txn(1))
    assert (outcome["legacy_decision"], outcome["legacy_reason"]) == ("error", "connection_refused")


def test_idempotent_operation_is_retried_with_backoff(fault_server):
    """An idempotent operation answering 503 is tried retry_attempts_max times, then an outcome."""
    before = fault_server.calls.get("http503", 0)
    outcome = _adapter(fault_server, "http503", retries=3).authorize(sample_txn(9))
    assert outcome["legacy_reason"] == "http_503"
    assert fault_server.calls["http503"] - before == 3


def test_authorize_many_keeps_input_order(fault_server):
    """authorize_many on 4 workers returns 40 results in the order of its input."""
    txns = [sample_txn(i, 1000 + (13 if i % 3 == 0 else 0)) for i in range(40)]
    results = _adapter(fault_server, "ok").authorize_many(txns, workers=4)
    assert [r["txn_id"] for r in results] == [t["txn_id"] for t in txns]
    assert sum(r["legacy_decision"] == "decline" for r in results) == 14


def test_breaker_opens_fails_fast_half_opens_and_recovers(fault_server):
    """After 3 failures the breaker opens (no calls made); a probe after cool-down closes it."""
    clock = FakeClock()
    breaker = CircuitBreaker(failures_max=3, cooldown_s=30.0, clock=clock)
    options = SoapOptions(address=f"{fault_server.base}/http500", calls_per_s=1000,
                          retry_attempts_max=1)
    bad = SoapAdapter(OTHER_MAPPING, options=options, breaker=breaker)
    before = fault_server.calls.get("http500", 0)
    reasons = [bad.authorize(sample_txn(i))["legacy_reason"] for i in range(6)]
    assert reasons == ["http_500"] * 3 + ["breaker_open"] * 3
    assert fault_server.calls["http500"] - before == 3
    assert breaker.state == "open"
    clock.advance(29.9)
    assert breaker.state == "open"
    clock.advance(0.1)
    assert breaker.state == "half_open"
    good = SoapAdapter(OTHER_MAPPING, breaker=breaker, options=SoapOptions(
        address=f"{fault_server.base}/ok", calls_per_s=1000))
    assert good.authorize(sample_txn(1))["legacy_decision"] == "approve"
    assert breaker.state == "closed"


def test_unmappable_transaction_is_bad_request_without_a_call(fault_server):
    """A txn lacking currency or with an unknown one ends as 'bad_request' and calls nobody."""
    before = fault_server.calls.get("ok", 0)
    adapter = _adapter(fault_server, "ok")
    no_currency = {k: v for k, v in sample_txn(1).items() if k != "currency"}
    outcomes = [adapter.authorize(no_currency),
                adapter.authorize(sample_txn(2) | {"currency": "XXX"})]
    assert [o["legacy_reason"] for o in outcomes] == ["bad_request", "bad_request"]
    assert fault_server.calls.get("ok", 0) == before


def test_huge_body_stops_at_cap_quickly(fault_server):
    """A 200 MB streamed reply ends as response_too_large within a second (cap 1 MiB)."""
    started = time.monotonic()
    outcome = _adapter(fault_server, "huge").authorize(sample_txn(8))
    elapsed_s = time.monotonic() - started
    assert outcome["legacy_reason"] == "response_too_large"
    assert elapsed_s < 1.0, elapsed_s


def test_non_idempotent_operation_is_never_retried(fault_server, tmp_path):
    """The same 503 on an operation the mapping marks idempotent=false is tried exactly once."""
    text = OTHER_MAPPING.read_text().replace("idempotent = true", "idempotent = false")
    text = text.replace('wsdl = "../wsdl/other_core.wsdl"',
                        f'wsdl = "{OTHER_MAPPING.parent.parent / "wsdl" / "other_core.wsdl"}"')
    mapping = tmp_path / "once.toml"
    mapping.write_text(text)
    options = SoapOptions(address=f"{fault_server.base}/http503", retry_attempts_max=3)
    before = fault_server.calls.get("http503", 0)
    outcome = SoapAdapter(mapping, options=options).authorize(sample_txn(10))
    assert outcome["legacy_reason"] == "http_503"
    assert fault_server.calls["http503"] - before == 1


def test_retries_stay_inside_the_deadline(fault_server):
    """A silent core with 3 retries allowed and a 1 s deadline: one outcome 'timeout' by 2 s."""
    before = fault_server.calls.get("slow", 0)
    adapter = _adapter(fault_server, "slow", retries=3, deadline_s=1.0, read_timeout_s=0.4)
    started = time.monotonic()
    outcome = adapter.authorize(sample_txn(11))
    assert outcome["legacy_reason"] == "timeout"
    assert time.monotonic() - started < 1.0 + 1.0
    assert 2 <= fault_server.calls["slow"] - before <= 3
