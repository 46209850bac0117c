"""ISO 8583 logs into the traffic store: pairing, reversals, field 39, PANs never on disk."""

from __future__ import annotations

import datetime as dt
import json
import struct

import pyarrow.dataset as ds
import pytest

from cutover.adapters.iso8583 import import_iso8583, load_switch, read_log
from cutover.errors import ConfigError, InputError
from cutover.sim.switch_log import TEST_PANS, frames, messages_for, write_switch_log
from tests.files_support import DATA_DIR, traffic_table

KEY = b"test-key-" * 4


def _txns(rows: int = 40):
    return [r for r in traffic_table(rows).to_pylist() if r["amount_minor"] >= 0]


@pytest.mark.parametrize("switch", ["ascii_switch", "binary_switch"])
def test_simulated_log_imports_every_pair_with_pans_tokenised(switch, tmp_path):
    """Each 0100/0110 pair is one record; no test PAN appears anywhere in the store's bytes."""
    txns = _txns()
    log = tmp_path / "switch.iso8583"
    messages = write_switch_log(log, load_switch(switch), txns)
    counts, read = import_iso8583(log, tmp_path / "store", switch, KEY, 2026)
    assert messages == read == 2 * len(txns)
    assert (counts.read, counts.imported, counts.quarantined) == (len(txns), len(txns), 0)
    table = ds.dataset(tmp_path / "store", partitioning="hive").to_table()
    expected = {("approve" if t["legacy_decision"] == "approve" else "decline") for t in txns}
    assert set(table["legacy_decision"].to_pylist()) == expected
    assert all(tok.startswith("tok_") for tok in table["card_token"].to_pylist())
    stored = b"".join(p.read_bytes() for p in (tmp_path / "store").rglob("*") if p.is_file())
    assert not any(pan.encode() in stored for pan in TEST_PANS)


def test_reversal_unpaired_and_unknown_mti_each_end_once(tmp_path):
    """A reversal pair imports negated; a lone request, a lone response and an 0800 are
    quarantined; read = imported + quarantined."""
    switch = load_switch("ascii_switch")
    txn = _txns()[0]
    import iso8583

    spec = switch.pyiso8583()
    req, resp = [bytes(iso8583.encode(dict(m), spec)[0]) for m in messages_for(switch, txn, 7)]
    rev_req = req.replace(b"0100", b"0400", 1)
    rev_resp = resp.replace(b"0110", b"0410", 1)
    lone_req = req.replace(b"000007", b"000008", 1)
    echo = bytes(iso8583.encode({"t": "0800", "11": "000009"}, spec)[0])
    log = tmp_path / "mixed.iso8583"
    log.write_bytes(b"".join(struct.pack(">H", len(m)) + m for m in
                             (req, resp, rev_req, rev_resp, lone_req, resp, echo)))
    counts, messages = import_iso8583(log, tmp_path / "store", "ascii_switch", KEY, 2026)
    assert messages == 7
    assert (counts.read, counts.imported, counts.quarantined) == (5, 2, 3)
    table = ds.dataset(tmp_path / "store", partitioning="hive").to_table()
    amounts = sorted(table["amount_minor"].to_pylist())
    assert amounts == [-txn["amount_minor"], txn["amount_minor"]]


def test_pyiso8583_readme_messages_pair_and_quarantine_for_missing_amount(tmp_path):
    """The reference implementation's README 0200/0210 pair decodes and pairs (response 05);
    it carries no field 7 or 4, so the record is quarantined naming ts, the first it lacks."""
    log = DATA_DIR / "iso8583" / "pyiso8583-readme-0200-0210.iso8583"
    read = read_log(log, load_switch("ascii_switch"), KEY, 2026)
    assert read.messages == 2 and len(read.records) == 1 and read.quarantined == []
    assert read.records[0]["legacy_code"] == "05"
    counts, _ = import_iso8583(log, tmp_path / "store", "ascii_switch", KEY, 2026)
    assert (counts.read, counts.imported, counts.quarantined) == (1, 0, 1)
    [row] = [json.loads(line) for line in
             next((tmp_path / "store" / "_quarantine").glob("*.jsonl")).read_text().splitlines()]
    assert (row["field"], row["reason"]) == ("ts", "cannot read ts")


def test_truncated_frame_is_input_error(tmp_path):
    """A log cut inside a message names the offset; a bad switch spec is a ConfigError."""
    frame = next(frames(load_switch("ascii_switch"), _txns()[:1]))
    log = tmp_path / "cut.iso8583"
    log.write_bytes(frame[:-3])
    with pytest.raises(InputError, match="offset 0: truncated message"):
        read_log(log, load_switch("ascii_switch"), KEY, 2026)
    bad = tmp_path / "bad.toml"
    bad.write_text("[switch]\nname = 'x'\n[fields]\nt = { len_type = 0, max_len = 4 }\n")
    with pytest.raises(ConfigError):
        load_switch(bad)


def test_field_7_dates_the_record_in_the_given_year(tmp_path):
    """Field 7 MMDDhhmmss plus --year gives the record's UTC timestamp."""
    txn = _txns()[0]
    log = tmp_path / "one.iso8583"
    write_switch_log(log, load_switch("ascii_switch"), [txn])
    read = read_log(log, load_switch("ascii_switch"), KEY, 2026)
    assert read.records[0]["ts"] == txn["ts"].replace(microsecond=0).astimezone(dt.UTC)
