"""`cutover import FILE --layout legacy_authlog` on a file with bad lines, bad values, duplicates.

The authlog is written by the batch-file writer from a real store, then spoiled the ways a
legacy export goes wrong: a truncated line, a card number in clear in a text field, an unknown
channel, a repeated transaction. Counts must add up, every reject must be kept with its line
number, and no card number may reach the store or the quarantine.
"""

from __future__ import annotations

import datetime as dt
import json
import random

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cutover.adapters.files import FileWriter, load_layout
from cutover.cli import app
from cutover.domain import TRAFFIC
from cutover.store.traffic import count_rows
from tests.adapters_support import make_pan, scan_for_pans
from tests.replay_support import make_traffic


def _authlog(path, table: pa.Table) -> None:
    """Write ``table`` as a legacy authlog whose trailer totals agree with its details."""
    bins = pc.cast(table["card_bin"], pa.int64())
    with FileWriter(path, load_layout("legacy_authlog")) as writer:
        writer.write("header", {"file_date": dt.date(2026, 10, 3), "sequence": 1})
        writer.write("detail", table)
        writer.write("trailer", {"record_count": table.num_rows,
                                 "amount_total": pc.sum(table["amount_minor"]).as_py(),
                                 "hash_total": pc.sum(bins).as_py() % 10**15})


@pytest.fixture
def spoiled(tmp_path):
    """An authlog of 30 rows: 1 repeated txn, 1 PAN in customer_id, 1 channel 'fax', then a
    truncated line (carrying a PAN) inserted after the header. Returns (path, pan)."""
    rng = random.Random(8)
    pan = make_pan(rng)
    base = make_traffic(27, seed=4).select([f.name for f in TRAFFIC])
    rows = base.to_pylist()
    rows[5]["customer_id"] = make_pan(rng)
    rows[9]["channel"] = "fax"
    rows += [dict(rows[2]), dict(rows[3]), dict(rows[4])]
    rows[27]["txn_id"] = rows[2]["txn_id"]  # the only duplicate: same id, same content
    rows[28]["txn_id"], rows[29]["txn_id"] = "EXTRA-1", "EXTRA-2"
    table = pa.Table.from_pylist(rows, schema=base.schema)
    path = tmp_path / "authlog_20261003.txt"
    _authlog(path, table)
    lines = path.read_bytes().split(b"\n")
    lines.insert(1, b"D" + b"X" * 40 + pan.encode() + b" short")
    path.write_bytes(b"\n".join(lines))
    return path, pan


def test_counts_add_up_rejects_keep_their_lines_and_no_pan_lands(tmp_path, spoiled,
                                                                monkeypatch):
    """31 read = 27 imported + 1 duplicate + 3 quarantined (line 2, customer_id, channel)."""
    monkeypatch.setenv("CUTOVER_TOKEN_KEY", "test-key-not-secret")
    path, pan = spoiled
    store = tmp_path / "store"
    result = CliRunner().invoke(app, ["import", str(path), "--into", str(store),
                                      "--layout", "legacy_authlog", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    total = json.loads(result.stdout)["total"]
    assert (total["read"], total["imported"], total["duplicates"], total["quarantined"]) == \
        (31, 27, 1, 3)
    assert count_rows(store) == 27
    quarantine = [json.loads(line) for line in
                  (store / "_quarantine" / f"{path.name}.jsonl").read_text().splitlines()]
    assert sorted((q["line"], q["field"] or "") for q in quarantine) == \
        [(2, ""), (8, "customer_id"), (12, "channel")]
    assert all(q["file"] == str(path) for q in quarantine)
    assert scan_for_pans(store) == []
    assert pan not in (store / "_quarantine" / f"{path.name}.jsonl").read_text()


def test_a_token_column_holding_a_pan_is_tokenised_with_a_key_else_quarantined(tmp_path,
                                                                              monkeypatch):
    """A legacy file that put the card number where the token belongs never stores it: with
    CUTOVER_TOKEN_KEY it is tokenised (5 imported), without one the record is quarantined."""
    from cutover.adapters.tokenize import tokenize_pan
    base = make_traffic(5, seed=6).select([f.name for f in TRAFFIC])
    tokens = base["card_token"].to_pylist()
    pan = make_pan(random.Random(9))
    tokens[1] = pan
    path = tmp_path / "authlog.txt"
    _authlog(path, base.set_column(base.schema.get_field_index("card_token"), "card_token",
                                   pa.array(tokens)))
    outcomes = (("test-key-not-secret", "read 5 · imported 5 · duplicates 0 · quarantined 0"),
                ("", "read 5 · imported 4 · duplicates 0 · quarantined 1"))
    for key, expected in outcomes:
        monkeypatch.setenv("CUTOVER_TOKEN_KEY", key)
        store = tmp_path / f"store-{bool(key)}"
        result = CliRunner().invoke(app, ["import", str(path), "--into", str(store),
                                          "--layout", "legacy_authlog", "--quiet"])
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == expected
        assert scan_for_pans(store) == []
    stored = [t for p in sorted((tmp_path / "store-True").glob("day=*/*.parquet"))
              for t in pq.read_table(p)["card_token"].to_pylist()]
    assert tokenize_pan(pan, b"test-key-not-secret") in stored
