"""Unit tests of the reader and writer on small generated files: rejects, controls, round trips."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cutover.adapters.files import FileReader, load_layout, write_file
from cutover.adapters.files.codecs import zoned_encode
from cutover.errors import ControlTotalMismatch, InputError


def _luhn_pan(rng: random.Random) -> str:
    """A Luhn-valid 16-digit test number, made in memory only."""
    body = [rng.randint(0, 9) for _ in range(15)]
    total = 0
    for i, digit in enumerate(reversed(body)):
        doubled = digit * 2 if i % 2 == 0 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return "".join(map(str, body)) + str((10 - total % 10) % 10)


def _balance_line(account: str, currency: str, amount: int) -> str:
    return ("D" + account.ljust(56) + currency + zoned_encode(amount, 18)).ljust(80)


def _balances_file(path, details, count=None, total=None, extra=()):
    lines = ["H" + "BALANCES" + "20261001".ljust(71)]
    lines += [_balance_line(*d) for d in details] + list(extra)
    count = len(details) if count is None else count
    total = sum(d[2] for d in details) if total is None else total
    lines.append(("T" + f"{count:012d}" + zoned_encode(total, 18)).ljust(80))
    path.write_bytes(("\n".join(lines) + "\n").encode())
    return path


def test_reads_typed_columns(tmp_path):
    """Detail rows come back as typed columns with line numbers; controls pass."""
    path = _balances_file(tmp_path / "b.txt", [("MERCHANT_PAYABLE:M1", "USD", 1234),
                                               ("FEE_EXPENSE:gw", "JPY", -50)])
    reader = FileReader(path, load_layout("legacy_balances"))
    batches = dict(reader.batches())
    detail = batches["detail"].to_pydict()
    assert detail["balance_minor"] == [1234, -50]
    assert detail["_line"] == [2, 3]
    assert reader.report.read == 4 and reader.report.rejected == 0
    assert all(c.ok for c in reader.report.checks) and len(reader.report.checks) == 2


def test_bad_lines_go_to_rejects_with_masked_pans(tmp_path):
    """Wrong length, bad digits, bad currency and unknown types are quarantined; PANs masked."""
    pan = _luhn_pan(random.Random(3))
    good = [("MERCHANT_PAYABLE:M1", "USD", 100)]
    extra = [_balance_line("A", "USD", 5)[:70],                      # wrong length
             _balance_line(f"MERCHANT_PAYABLE:{pan}", "USD", 7)[:70] + "12X4567890",
             _balance_line("B", "XXX", 9),                            # unknown currency
             "Z" * 80]                                                # unknown record type
    path = _balances_file(tmp_path / "b.txt", good, count=1, total=100, extra=extra)
    rejects = tmp_path / "rejects.jsonl"
    reader = FileReader(path, load_layout("legacy_balances"), rejects_path=rejects)
    list(reader.batches())
    rows = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert reader.report.rejected == 4 and len(rows) == 4
    assert {r["line"] for r in rows} == {3, 4, 5, 6}
    by_line = {r["line"]: r for r in rows}
    assert by_line[3]["reason"] == "wrong length 70, expected 80"
    assert by_line[4]["field"] == "balance_minor" and "zoned" in by_line[4]["reason"]
    assert by_line[5]["field"] == "currency" and "currency" in by_line[5]["reason"]
    assert by_line[6]["reason"] == "unknown record type"
    assert pan not in rejects.read_text() and pan[:6] + "******" + pan[-4:] in by_line[4]["raw"]
    assert all(c.ok for c in reader.report.checks)


def test_control_mismatch_names_totals(tmp_path):
    """A trailer that disagrees raises ControlTotalMismatch naming expected and actual."""
    path = _balances_file(tmp_path / "b.txt", [("M", "USD", 10), ("N", "USD", 5)], total=16)
    reader = FileReader(path, load_layout("legacy_balances"))
    list(reader.batches())
    with pytest.raises(ControlTotalMismatch,
                       match="balance_total in file .trailer line 4.: expected 16, actual 15"):
        reader.raise_for_controls()


def test_missing_trailer_fails_the_control(tmp_path):
    """A file cut before its trailer fails every control instead of passing silently."""
    path = tmp_path / "cut.txt"
    path.write_bytes((_balance_line("M", "USD", 10) + "\n").encode())
    reader = FileReader(path, load_layout("legacy_balances"))
    list(reader.batches())
    assert [c.ok for c in reader.report.checks] == [False, False]


def test_missing_file_is_input_error(tmp_path):
    """A missing file is an InputError naming it (exit 2)."""
    with pytest.raises(InputError, match="missing.txt does not exist"):
        list(FileReader(tmp_path / "missing.txt", load_layout("nacha")).batches())


_ACCOUNTS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ:_0123456789 ", min_size=1, max_size=56)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(_ACCOUNTS.filter(lambda s: s.strip() == s),
                          st.sampled_from(["USD", "EUR", "JPY", "KWD"]),
                          st.integers(-(10**15), 10**15)), max_size=30),
       st.sampled_from([7, 64, 4096]))
def test_generated_files_round_trip_byte_identical(tmp_path_factory, details, chunk_bytes):
    """Any generated balance file parses (in any chunking) and writes back byte-identical."""
    folder = tmp_path_factory.mktemp("rt")
    path = _balances_file(folder / "b.txt", details)
    layout = load_layout("legacy_balances")
    reader = FileReader(path, layout, chunk_bytes=chunk_bytes)
    records = list(reader.batches(batch_rows=7))
    assert reader.report.rejected == 0 and all(c.ok for c in reader.report.checks)
    write_file(folder / "out.txt", layout, records)
    assert (folder / "out.txt").read_bytes() == path.read_bytes()


def test_non_ascii_bytes_and_missing_final_newline(tmp_path):
    """A line with bytes outside ASCII is rejected; a last line without newline still reads."""
    path = _balances_file(tmp_path / "b.txt", [("M", "USD", 10)])
    lines = path.read_bytes().splitlines()
    accented = _balance_line("M\u00e9", "USD", 3).encode("latin-1")
    path.write_bytes(b"\n".join([lines[0], lines[1], accented, lines[2]]))
    reader = FileReader(path, load_layout("legacy_balances"))
    batches = dict(reader.batches())
    assert reader.report.read == 4 and reader.report.rejected == 1
    assert reader.report.reject_sample[0]["reason"] == "bytes outside ascii"
    assert reader.report.reject_sample[0]["line"] == 3
    assert batches["trailer"].column("record_count").to_pylist() == [1]
    assert all(c.ok for c in reader.report.checks)


def test_binary_records_with_packed_fields_round_trip(tmp_path):
    """Fixed-length records without line endings, with a COMP-3 field, read and write back."""
    from cutover.adapters.files.codecs import packed_encode
    from cutover.adapters.files.layout import parse_layout

    layout = parse_layout({
        "layout": {"name": "bin", "record_length": 8, "line_ending": "", "encoding": "ascii"},
        "record": [{"name": "d", "match": [{"start": 1, "length": 1, "value": "D"}],
                    "fields": [{"name": "kind", "start": 1, "type": "constant", "value": "D"},
                               {"name": "code", "start": 2, "length": 3, "type": "text"},
                               {"name": "amount", "start": 5, "length": 4, "type": "packed"}]}],
    })
    values = [12345, -7, 0, 9_999_999]
    data = b"".join(b"D" + b"AB " + packed_encode(v, 4) for v in values)
    (tmp_path / "b.dat").write_bytes(data)
    reader = FileReader(tmp_path / "b.dat", layout, chunk_bytes=5)
    records = list(reader.batches())
    amounts = [v for _, b in records for v in b.column("amount").to_pylist()]
    assert amounts == values and reader.report.rejected == 0
    write_file(tmp_path / "out.dat", layout, records)
    assert (tmp_path / "out.dat").read_bytes() == data
