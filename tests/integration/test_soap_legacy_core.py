"""The SOAP adapter and the legacy port against the real simulated legacy core over HTTP."""

from __future__ import annotations

import pyarrow as pa

from cutover.adapters.legacy import OUTCOME, open_legacy
from tests.adapters_support import ROOT, sample_txn

MAPPING = ROOT / "cutover" / "fixtures" / "mappings" / "legacy_auth.toml"


def _txns(prefix: str, n: int) -> list[dict]:
    return [sample_txn(i) | {"txn_id": f"{prefix}{i:05d}", "merchant_id": f"M_{prefix}",
                             "customer_id": f"C_{prefix}{i}"} for i in range(n)]


def test_soap_legacy_batch_against_simulated_core(legacy_core):
    """20 transactions through SoapLegacy: OUTCOME schema, input order, only known decisions."""
    legacy = open_legacy("soap", mapping=MAPPING, wsdl=legacy_core.wsdl_url,
                         address=legacy_core.url, workers=4)
    txns = _txns("ADP", 20)
    batch = pa.RecordBatch.from_pylist(txns)
    out = legacy.authorize_batch(batch)
    legacy.close()
    assert out.schema == OUTCOME and out.num_rows == 20
    assert out.column("txn_id").to_pylist() == [t["txn_id"] for t in txns]
    decisions = set(out.column("legacy_decision").to_pylist())
    assert decisions <= {"approve", "decline", "review"}, out.column("legacy_reason").to_pylist()
    assert all(len(c) == 2 for c in out.column("legacy_code").to_pylist())


def test_authorize_raw_returns_every_response_field(legacy_core):
    """authorize_raw gives response_code, auth_code, route, fee_minor, trace_id, response_ts."""
    legacy = open_legacy("soap", mapping=MAPPING, wsdl=legacy_core.wsdl_url,
                         address=legacy_core.url)
    raw = legacy.authorize_raw(_txns("RAW", 1)[0])
    legacy.close()
    assert raw["error"] is None
    wanted = {"response_code", "auth_code", "route", "fee_minor", "trace_id", "response_ts"}
    assert wanted <= set(raw)
    assert isinstance(raw["fee_minor"], int)


def test_throttle_holds_its_rate_through_the_adapter_over_10_s(legacy_core):
    """301 calls on 8 workers, set to 30 calls/s, against the real core: about 10 s, rate +-5%."""
    import time

    from cutover.adapters.soap import SoapAdapter, SoapOptions
    calls_per_s = 30.0
    adapter = SoapAdapter(MAPPING, wsdl=legacy_core.wsdl_url,
                          options=SoapOptions(address=legacy_core.url, calls_per_s=calls_per_s,
                                              in_flight_max=4))
    txns = _txns("THR", 301)
    adapter.authorize(_txns("THW", 1)[0])  # connect and warm zeep before timing
    started_s = time.monotonic()
    outcomes = adapter.authorize_many(txns, workers=8)
    elapsed_s = time.monotonic() - started_s
    adapter.close()
    assert [o["txn_id"] for o in outcomes] == [t["txn_id"] for t in txns]
    assert {o["legacy_decision"] for o in outcomes} <= {"approve", "decline", "review"}
    # The warm-up call took the bucket's one token, so every one of the 301 calls waits its turn.
    measured_calls_per_s = len(txns) / elapsed_s
    assert abs(measured_calls_per_s - calls_per_s) / calls_per_s <= 0.05, measured_calls_per_s
