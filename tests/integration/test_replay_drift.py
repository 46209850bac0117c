"""A merchant's feed switching to major units mid-window shows as a mismatch spike in that
segment and as drift of its amounts."""

import json
from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc

from cutover.replay.engine import run_replay
from tests.replay_support import START, make_traffic, write_store

BROKEN = "M0000"  # a USD merchant: 100 minor units per major unit
SWITCH = START + timedelta(hours=48)


def _feed_in_major_units(table: pa.Table) -> pa.Table:
    """From SWITCH on, BROKEN's amounts arrive divided by 100; the legacy core booked the
    real amount (its recorded outcome is unchanged)."""
    late = pc.and_(pc.equal(table["merchant_id"], BROKEN),
                   pc.greater_equal(table["ts"], pa.scalar(SWITCH, table["ts"].type)))
    amount = pc.if_else(late, pc.max_element_wise(pc.divide(table["amount_minor"], 100), 1),
                        table["amount_minor"])
    return table.set_column(table.column_names.index("amount_minor"), "amount_minor", amount)


def test_units_switch_is_a_segment_spike_and_amount_drift(tmp_path):
    """Top mismatch segment is the merchant; its amount PSI says drift; the timeline jumps."""
    store = write_store(tmp_path / "store", _feed_in_major_units(make_traffic(30_000, seed=21,
                                                                               hours=96)))
    run_replay(store, tmp_path / "run", candidate="tests.replay_support:exact_candidate")
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    merchants = [s for s in report["segments"] if s["dimension"] == "merchant_id"]
    assert merchants[0]["value"] == BROKEN
    assert merchants[0]["rate"] > 0.3 > 0.05 > merchants[1]["rate"]
    drift = report["drift"]
    assert drift["reference"]["kind"] == "replay_window_head"
    assert drift["segments"][0]["value"] == BROKEN and drift["segments"][0]["status"] == "drift"
    assert all(s["psi"] < drift["segments"][0]["psi"] / 5 for s in drift["segments"][1:])
    before = [b for b in report["timeline"] if b["bucket_start"] < SWITCH.isoformat()]
    after = [b for b in report["timeline"] if b["bucket_start"] >= SWITCH.isoformat()]
    rate = [sum(b["mismatches"] for b in part) / sum(b["n"] for b in part)
            for part in (before, after)]
    assert rate[0] == 0.0 and rate[1] > 0.01
