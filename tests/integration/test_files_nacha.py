"""Integration tests on the real NACHA ACH files in shared/data/ach (moov-io/ach test data)."""

from __future__ import annotations

import pytest

from cutover.adapters.files import FileReader, load_layout, write_file
from cutover.errors import ControlTotalMismatch
from tests.files_support import ach_dir

GOOD_FILES = ["20110805A.ach", "ccd-debit.ach", "ppd-debit.ach", "return-WEB.ach",
              "web-debit.ach"]


@pytest.mark.parametrize("name", GOOD_FILES)
def test_real_files_read_clean_and_round_trip(name, tmp_path):
    """Every real file reads with zero rejects, all controls ok, and writes back byte-identical."""
    path = ach_dir() / name
    layout = load_layout("nacha")
    reader = FileReader(path, layout)
    records = list(reader.batches())
    assert reader.report.rejected == 0
    assert reader.report.read == len(path.read_bytes().splitlines())
    assert reader.report.checks and all(c.ok for c in reader.report.checks)
    reader.raise_for_controls()
    write_file(tmp_path / name, layout, records)
    assert (tmp_path / name).read_bytes() == path.read_bytes()


def test_known_figures_of_web_debit():
    """web-debit.ach: 3 batches, 6 entries, debits 150.00 and credits 268.20 USD as declared."""
    reader = FileReader(ach_dir() / "web-debit.ach", load_layout("nacha"))
    entries = [b for t, b in reader.batches() if t == "entry"]
    assert reader.report.by_type["batch_header"] == 3
    assert sum(b.num_rows for b in entries) == 6
    totals = {c.name: (c.expected, c.actual) for c in reader.report.checks if c.scope != "batch"
              and c.name.startswith("file_total")}
    assert totals == {"file_total_debit_amount": (15000, 15000),
                      "file_total_credit_amount": (26820, 26820)}


def test_iat_and_return_addenda_are_typed_by_addenda_code():
    """IAT addenda 10-16 and return addenda 99 land in their own record types."""
    iat = FileReader(ach_dir() / "20110805A.ach", load_layout("nacha"))
    list(iat.batches())
    ret = FileReader(ach_dir() / "return-WEB.ach", load_layout("nacha"))
    reasons = [b.column("return_reason_code").to_pylist() for t, b in ret.batches()
               if t == "addenda_99"]
    assert [iat.report.by_type[f"addenda_{n}"] for n in range(10, 17)] == [5] * 7
    assert reasons == [["R01", "R03"]]


def test_bad_control_total_names_the_batch_total_debit():
    """bad-control-total.ach fails on the batch control's total debit, expected vs actual."""
    reader = FileReader(ach_dir() / "bad-control-total.ach", load_layout("nacha"))
    list(reader.batches())
    failing = [c for c in reader.report.checks if not c.ok]
    assert [(c.name, c.expected, c.actual) for c in failing] == \
        [("total_debit_amount", 100000001, 100000000)]
    with pytest.raises(ControlTotalMismatch, match=r"total_debit_amount in batch 1 "
                       r"\(batch_control line 4\): expected 100000001, actual 100000000"):
        reader.raise_for_controls()


def test_writer_pads_blocks_with_nines(tmp_path):
    """Writing without the padding records and pad_blocks=True restores NACHA's 9-blocks."""
    path = ach_dir() / "ppd-debit.ach"
    layout = load_layout("nacha")
    records = [(t, b) for t, b in FileReader(path, layout).batches() if t != "block_padding"]
    write_file(tmp_path / "p.ach", layout, records, pad_blocks=False)
    assert len((tmp_path / "p.ach").read_bytes().splitlines()) == 5
    write_file(tmp_path / "p.ach", layout, records, pad_blocks=True)
    lines = (tmp_path / "p.ach").read_bytes().splitlines()
    assert len(lines) == 10 and lines[-1] == b"9" * 94
