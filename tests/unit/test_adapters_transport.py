"""Unit tests of the transport guards on a fake clock: throttle, breaker, deadline, retries,
the error tally, and the mapping formats."""

from __future__ import annotations

import pyarrow as pa
import pytest

from cutover.adapters.columns import amount_to_minor
from cutover.adapters.importer import split_duplicates
from cutover.adapters.legacy import OUTCOME, RecordedLegacy, open_legacy
from cutover.adapters.mapping import build_request, load_mapping, read_response
from cutover.adapters.tally import ErrorTally
from cutover.adapters.transport import (
    BreakerOpen,
    CallFailed,
    CircuitBreaker,
    Deadline,
    Throttle,
    backoff_wait_s,
    call_with_retries,
)
from cutover.domain import MoneyError
from cutover.errors import ConfigError
from tests.adapters_support import OTHER_MAPPING, FakeClock, sample_txn


def test_backoff_doubles_and_caps():
    """Waits go 0.05, 0.1, 0.2 ... and never past the 1 s cap."""
    assert [backoff_wait_s(a) for a in (1, 2, 3)] == [0.05, 0.1, 0.2]
    assert backoff_wait_s(30) == 1.0


def test_breaker_opens_on_error_rate_over_window():
    """With 4-call window and 50% limit, alternating failures open it once the window is full."""
    breaker = CircuitBreaker(failures_max=100, window_calls=4, error_rate_max=0.5, cooldown_s=60)
    for ok in (True, False, False, True, False):
        breaker.record(ok)
    assert breaker.state == "open"
    with pytest.raises(BreakerOpen):
        breaker.before_call()


def test_breaker_half_open_lets_one_probe_and_reopens_on_failure():
    """Half-open (after the 5 s cool-down on a fake clock) admits one probe; its failure reopens."""
    clock = FakeClock()
    breaker = CircuitBreaker(failures_max=1, cooldown_s=5.0, clock=clock)
    breaker.record(False, "timeout: no reply")
    clock.advance(4.99)
    with pytest.raises(BreakerOpen, match="last failure: timeout: no reply"):
        breaker.before_call()
    clock.advance(0.01)
    breaker.before_call()
    with pytest.raises(BreakerOpen):
        breaker.before_call()
    breaker.record(False)
    assert breaker.state == "open"


def test_throttle_limits_in_flight():
    """With in_flight_max 2, a third caller gets no slot before its deadline; a release frees one."""
    throttle = Throttle(calls_per_s=1e6, in_flight_max=2)
    throttle.acquire()
    throttle.acquire()
    with pytest.raises(CallFailed, match="no call slot") as failed:
        throttle.acquire(Deadline(0.001))
    assert failed.value.reason == "timeout"
    throttle.release()
    throttle.acquire(Deadline(1.0))
    throttle.release()
    throttle.release()


def test_throttle_rate_exact_on_a_fake_clock():
    """501 calls through a 50 calls/s throttle take exactly 10 s of (fake) time, in 500 waits."""
    clock = FakeClock()
    throttle = Throttle(calls_per_s=50, in_flight_max=8, clock=clock)
    started_s = clock.monotonic()
    for _ in range(501):
        with throttle:
            pass
    assert clock.monotonic() - started_s == pytest.approx(10.0, abs=1e-6)
    assert len(clock.slept_s) == 500


def test_throttle_refuses_a_wait_past_the_deadline_and_gives_the_token_back():
    """At 1 call/s a second call with 0.5 s left fails 'timeout'; 1 s later a call needs no wait."""
    clock = FakeClock()
    throttle = Throttle(calls_per_s=1, in_flight_max=4, clock=clock)
    throttle.acquire(Deadline(0.5, clock))
    throttle.release()
    with pytest.raises(CallFailed, match="past the deadline"):
        throttle.acquire(Deadline(0.5, clock))
    clock.advance(1.0)
    throttle.acquire(Deadline(0.5, clock))
    assert clock.slept_s == []


def test_throttle_refuses_nan_and_zero_rates():
    """calls_per_s NaN or 0 would switch the throttle off: both are refused."""
    for rate in (float("nan"), 0.0, float("inf")):
        with pytest.raises(ValueError, match="finite"):
            Throttle(calls_per_s=rate, in_flight_max=1)


def test_deadline_counts_down_on_its_clock_and_refuses_bad_budgets():
    """A 2 s deadline has 0.5 s left after 1.5 s, none (never negative) after 3 s; NaN refused."""
    clock = FakeClock()
    deadline = Deadline(2.0, clock)
    clock.advance(1.5)
    assert deadline.remaining_s() == pytest.approx(0.5) and deadline.cap(5.0) == pytest.approx(0.5)
    clock.advance(1.5)
    assert deadline.remaining_s() == 0.0 and deadline.expired()
    for budget in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            Deadline(budget, clock)


def test_retries_stop_when_the_backoff_would_pass_the_deadline():
    """Attempts of 0.3 s with a 1 s deadline: 3 attempts (backoffs 0.05, 0.1), then the failure."""
    clock = FakeClock()
    deadline = Deadline(1.0, clock)
    tries = []

    def attempt():
        tries.append(clock.monotonic())
        clock.advance(0.3)
        raise CallFailed("timeout", f"try {len(tries)}")

    with pytest.raises(CallFailed, match="try 3"):
        call_with_retries(attempt, deadline, attempts_max=10, retryable={"timeout"}, clock=clock)
    assert len(tries) == 3 and clock.slept_s == [0.05, 0.1]


def test_retries_report_the_cause_when_the_breaker_opens_between_attempts():
    """Refused, then the breaker opens: the caller sees connection_refused, not breaker_open."""
    clock = FakeClock()
    results = [CallFailed("connection_refused", "nobody there"), BreakerOpen("open")]

    def attempt():
        raise results.pop(0)

    with pytest.raises(CallFailed) as failed:
        call_with_retries(attempt, Deadline(5.0, clock), attempts_max=3,
                          retryable={"connection_refused"}, clock=clock)
    assert failed.value.reason == "connection_refused" and results == []


def test_non_retryable_and_single_attempt_fail_at_once():
    """A fault is not retried; attempts_max 1 (not idempotent) is never retried."""
    clock = FakeClock()
    calls = []

    def attempt(reason):
        calls.append(reason)
        raise CallFailed(reason)

    for reason, attempts in (("soap_fault:Server", 3), ("timeout", 1)):
        with pytest.raises(CallFailed):
            call_with_retries(lambda r=reason: attempt(r), Deadline(5.0, clock),
                              attempts_max=attempts, retryable={"timeout"}, clock=clock)
    assert calls == ["soap_fault:Server", "timeout"] and clock.slept_s == []


def test_error_tally_stops_once_the_limit_is_certainly_crossed():
    """10 planned at 0.2: 2 errors allowed, the 3rd crosses; unknown_code is not a failed call."""
    tally = ErrorTally(10, 0.2)
    ok = {"legacy_decision": "approve", "legacy_reason": "approved"}
    unknown = {"legacy_decision": "error", "legacy_reason": "unknown_code"}
    timeout = {"legacy_decision": "error", "legacy_reason": "timeout", "detail": "timeout: first"}
    crossed = [tally.add(o) for o in (ok, unknown, timeout, timeout | {"detail": "x"}, timeout)]
    assert crossed == [False, False, False, False, True]
    assert tally.lines() == ["3 x timeout: timeout: first"]
    assert not any(ErrorTally(3, 1.0).add(timeout) for _ in range(3))
    with pytest.raises(ValueError):
        ErrorTally(3, float("nan"))


def test_mapping_formats_decimal_major_and_datetime():
    """other_core sends 10.50 for 1050 USD minor units and its own time format; reads 0.25 as 25."""
    mapping = load_mapping(OTHER_MAPPING)
    request = build_request(mapping, sample_txn(1, 1050))
    assert str(request["Value"]) == "10.50" and request["Timestamp"] == "20261001120000"
    assert request["Reference"] == "T000001"
    reply = {"Result": "A", "Charge": "0.25", "Gateway": "GW_B"}
    assert read_response(mapping, reply, "USD")["fee_minor"] == 25
    with pytest.raises(MoneyError, match="JPY"):
        read_response(mapping, reply, "JPY")


def test_mapping_missing_field_is_named(tmp_path):
    """A mapping without [response] response_code is refused, naming the file."""
    bad = tmp_path / "m.toml"
    bad.write_text('wsdl="x"\noperation="Op"\nnamespace="n"\n[request]\ntxn_id="T"\n'
                   '[response]\nFoo="auth_code"\n')
    with pytest.raises(ConfigError, match="m.toml.*response_code"):
        load_mapping(bad)


def test_amount_major_refuses_extra_decimals_and_unknown_currency():
    """1.234 USD and 5 XXX are null (quarantined), 1.234 KWD is 1234 minor units."""
    out = amount_to_minor(pa.array(["1.234", "5", "1.234", "7"]),
                          pa.array(["USD", "XXX", "KWD", "JPY"]), "major")
    assert out.to_pylist() == [None, None, 1234, 7]


def test_split_duplicates_within_input_and_store():
    """Second T1 is an in-input duplicate; T9 is already in the store; bad rows not counted."""
    import numpy as np
    ids = np.array(["T1", "T2", "T1", "T9", "T3"], dtype=object)
    ok = np.array([True, True, True, True, False])
    known = pa.array(["T9"])
    assert split_duplicates(ids, ok, known).tolist() == [False, False, True, True, False]


def test_recorded_legacy_returns_recorded_columns_in_order():
    """RecordedLegacy hands back the batch's own legacy columns, same rows, OUTCOME schema."""
    batch = pa.RecordBatch.from_pydict({
        "txn_id": ["B", "A"], "legacy_decision": ["approve", "error"], "legacy_code": ["00", ""],
        "legacy_reason": ["approved", "timeout"], "legacy_route": ["GW_A", None],
        "legacy_fee_minor": [30, 0], "legacy_latency_ms": [12, 5000]})
    out = RecordedLegacy().authorize_batch(batch)
    assert out.schema == OUTCOME
    assert out.column(0).to_pylist() == ["B", "A"] and out.column(6).to_pylist() == [12, 5000]


def test_open_legacy_refuses_unknown_mode_and_missing_cassette():
    """A bad mode and a cassette mode without --cassette are config errors."""
    with pytest.raises(ConfigError, match="expected one of"):
        open_legacy("psychic")
    with pytest.raises(ConfigError, match="--cassette"):
        open_legacy("cassette", mapping=OTHER_MAPPING)


def test_replay_passes_deadline_and_size_cap_to_the_adapter():
    """--legacy-opt deadline_s=2.5 response_bytes_max=4096 arrive typed; SoapOptions refuses NaN."""
    from cutover.adapters.soap import SoapOptions
    from cutover.replay.legacy_side import coerce_legacy_options

    opts = coerce_legacy_options({"deadline_s": "2.5", "response_bytes_max": "4096"})
    assert opts == {"deadline_s": 2.5, "response_bytes_max": 4096}
    assert SoapOptions(**opts).deadline_s == 2.5
    with pytest.raises(ConfigError, match="deadline_s=nan"):
        SoapOptions(deadline_s=float("nan"))
