"""Unit tests of the transport guards: throttle, breaker, backoff, and the mapping formats."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pytest

from cutover.adapters.columns import amount_to_minor
from cutover.adapters.importer import split_duplicates
from cutover.adapters.legacy import OUTCOME, RecordedLegacy, open_legacy
from cutover.adapters.mapping import build_request, load_mapping, read_response
from cutover.adapters.transport import BreakerOpen, CircuitBreaker, Throttle, backoff_wait_s
from cutover.domain import MoneyError
from cutover.errors import ConfigError
from tests.adapters_support import OTHER_MAPPING, sample_txn


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
    """Half-open admits one probe; a failed probe opens the breaker again."""
    breaker = CircuitBreaker(failures_max=1, cooldown_s=0.05)
    breaker.record(False)
    time.sleep(0.06)
    breaker.before_call()
    with pytest.raises(BreakerOpen):
        breaker.before_call()
    breaker.record(False)
    assert breaker.state == "open"


def test_throttle_limits_in_flight():
    """With in_flight_max 2, no more than 2 callers are ever inside at once."""
    throttle = Throttle(calls_per_s=1000, in_flight_max=2)
    inside, peak, lock = [0], [0], threading.Lock()

    def work():
        with throttle:
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            time.sleep(0.01)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 2


@pytest.mark.slow
def test_throttle_rate_within_5_percent_over_10_s():
    """8 threads hammering a 50 calls/s throttle for 10 s get 500 calls +-5%."""
    throttle = Throttle(calls_per_s=50, in_flight_max=8)
    stop_at = time.monotonic() + 10.0
    count, lock = [0], threading.Lock()

    def hammer():
        while True:
            with throttle:
                if time.monotonic() >= stop_at:
                    return
                with lock:
                    count[0] += 1

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert abs(count[0] - 500) <= 25, count[0]


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
