"""Delimited batch files through the same layout language: reads, rejects, round trips."""

from __future__ import annotations

import datetime as dt
import json
import random

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cutover.adapters.files import FileReader, FileWriter, load_layout, write_file
from cutover.adapters.files.layout import parse_layout
from cutover.adapters.tokenize import luhn_ok
from cutover.errors import BadRecord, ControlTotalMismatch, LayoutError

GOOD = ("H|SETTLEMENT|20261003|GW_ATLAS\n"
        "D|T0001|26276|1050|USD|D|25|411111|\n"
        "D|T0002|26001|99|JPY|C|0|510010|refund 7\n"
        "T|2|1149\n")


def _pan(rng: random.Random) -> str:
    body = "411111" + "".join(str(rng.randrange(10)) for _ in range(9))
    return next(body + str(d) for d in range(10) if luhn_ok(body + str(d)))


def test_reads_typed_columns_with_julian_dates_and_checks_controls(tmp_path):
    """Each column comes back typed (Julian 26001 is 2026-01-01); an empty column is null."""
    path = tmp_path / "s.txt"
    path.write_text(GOOD)
    reader = FileReader(path, load_layout("legacy_settlement"))
    batches = dict(reader.batches())
    detail = batches["detail"].to_pydict()
    assert detail["amount_minor"] == [1050, 99] and detail["fee_minor"] == [25, 0]
    assert detail["settled_on"] == [dt.date(2026, 10, 3), dt.date(2026, 1, 1)]
    assert detail["reference"] == [None, "refund 7"] and detail["_line"] == [2, 3]
    assert batches["header"]["gateway"].to_pylist() == ["GW_ATLAS"]
    assert reader.report.rejected == 0 and [c.ok for c in reader.report.checks] == [True, True]


def test_bad_lines_are_rejected_naming_line_field_and_reason_with_pans_masked(tmp_path):
    """Field count, width, date, digits, unknown type: each rejected with its line; run goes on."""
    pan = _pan(random.Random(4))
    lines = GOOD.splitlines()
    lines[3:3] = [f"D|T0003|26276|12|USD|D|1|411111|{pan}|extra",  # 10 fields
                  f"D|{'T' * 41}|26276|12|USD|D|1|411111|",          # txn_id too wide
                  "D|T0005|26400|12|USD|D|1|411111|",                # no day 400
                  "D|T0006|26276|1x2|USD|D|1|411111|",               # not digits
                  "X|T0007|26276|12|USD|D|1|411111|"]                # unknown record type
    path, rejects = tmp_path / "s.txt", tmp_path / "rejects.jsonl"
    path.write_text("\n".join(lines) + "\n")
    reader = FileReader(path, load_layout("legacy_settlement"), rejects_path=rejects)
    list(reader.batches())
    got = sorted((json.loads(line) for line in rejects.read_text().splitlines()),
                 key=lambda r: r["line"])
    assert [(r["line"], r["field"]) for r in got] == [
        (4, None), (5, "txn_id"), (6, "settled_on"), (7, "amount_minor"), (8, None)]
    assert "10 fields" in got[0]["reason"] and got[4]["reason"] == "unknown record type"
    assert "longer than 40" in got[1]["reason"]
    assert got[2]["reason"] == "bad YYDDD date in column 3"
    assert pan not in rejects.read_text() and pan[:6] in got[0]["raw"]
    assert all(r["file"] == str(path) for r in got)
    assert reader.report.rejected == 5 and all(c.ok for c in reader.report.checks)


def test_control_mismatch_names_the_totals(tmp_path):
    """A trailer that disagrees with the details fails, naming expected and actual."""
    path = tmp_path / "s.txt"
    path.write_text(GOOD.replace("T|2|1149", "T|2|1150"))
    reader = FileReader(path, load_layout("legacy_settlement"))
    list(reader.batches())
    with pytest.raises(ControlTotalMismatch, match="amount_total.*expected 1150, actual 1149"):
        reader.raise_for_controls()


def test_writer_refuses_a_value_holding_the_delimiter_naming_field_and_row(tmp_path):
    """Values are never quoted: a '|' inside one is refused rather than corrupting columns."""
    rows = pa.table({"txn_id": ["A1", "A|2"], "settled_on": [dt.date(2026, 1, 2)] * 2,
                     "amount_minor": [1, 2], "currency": ["USD"] * 2, "direction": ["D"] * 2,
                     "fee_minor": [0, 0], "card_bin": ["411111"] * 2, "reference": [None, None]})
    writer = FileWriter(tmp_path / "out.txt", load_layout("legacy_settlement"))
    with pytest.raises(BadRecord, match=r"field 'txn_id': row 1 holds the delimiter '\|'"), \
            writer:
        writer.write("detail", rows)
    assert not (tmp_path / "out.txt").exists()


_TEXT = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=40)
_ROW = st.fixed_dictionaries({
    "txn_id": _TEXT, "settled_on": st.dates(dt.date(1970, 1, 1), dt.date(2068, 12, 31)),
    "amount_minor": st.integers(0, 10**15 - 1), "currency": st.sampled_from(["USD", "JPY", "KWD"]),
    "direction": st.sampled_from(["D", "C"]), "fee_minor": st.integers(0, 10**12 - 1),
    "card_bin": st.from_regex(r"\A[0-9]{6,8}\Z"),
    "reference": st.none() | st.text(alphabet="abc XYZ09", min_size=1, max_size=30)
    .filter(lambda s: s.strip() == s)})


@settings(max_examples=30, deadline=None)
@given(st.lists(_ROW, min_size=0, max_size=25), st.sampled_from([5, 64, 4096]))
def test_written_files_read_back_equal_and_write_back_byte_identical(tmp_path_factory, rows,
                                                                     chunk_bytes):
    """Any rows written, read (in any chunking) give the same values and the same bytes back."""
    folder = tmp_path_factory.mktemp("psv")
    layout = load_layout("legacy_settlement")
    first = folder / "first.txt"
    with FileWriter(first, layout) as writer:
        writer.write("header", {"settlement_date": dt.date(2026, 10, 3), "gateway": "GW_A"})
        if rows:
            writer.write("detail", pa.Table.from_pylist(rows))
        writer.write("trailer", {"record_count": len(rows),
                                 "amount_total": sum(r["amount_minor"] for r in rows)})
    reader = FileReader(first, layout, chunk_bytes=chunk_bytes)
    records = list(reader.batches(batch_rows=4))
    assert reader.report.rejected == 0 and all(c.ok for c in reader.report.checks)
    details = [r for kind, b in records if kind == "detail" for r in b.to_pylist()]
    assert [{k: v for k, v in r.items() if k != "_line"} for r in details] == rows
    write_file(folder / "second.txt", layout, records)
    assert (folder / "second.txt").read_bytes() == first.read_bytes()


@pytest.mark.parametrize(("head", "fields", "message"), [
    ({"delimiter": ","}, [{"name": "a", "start": 1, "length": 2}], "drop 'start'"),
    ({"delimiter": "7"}, [{"name": "a", "length": 2}], "delimiter must be one ASCII"),
    ({"delimiter": ","}, [{"name": "a", "length": 2, "type": "packed"}], "packed decimal"),
    ({"delimiter": ",", "record_length": 9}, [{"name": "a", "length": 2}], "no record_length"),
    ({"delimiter": ",", "line_ending": ""}, [{"name": "a", "length": 2}], "needs a line_ending"),
    ({"delimiter": ","}, [{"name": "a"}], "field 'a': needs 'length'"),
])
def test_invalid_delimited_layouts_are_refused_naming_the_problem(head, fields, message):
    """Each mistake in a delimited spec is a LayoutError saying what to change."""
    spec = {"layout": {"name": "x", "format": "delimited", **head},
            "record": [{"name": "r", "match": [], "fields": fields}]}
    with pytest.raises(LayoutError, match=message):
        parse_layout(spec)
