"""pain.001 and pacs.008 payments into the traffic store: XSD, NbOfTxs and CtrlSum, idempotence."""

from __future__ import annotations

import pyarrow.dataset as ds
import pytest

from cutover.adapters.sources import import_source
from cutover.adapters.statements.payments import read_payments
from cutover.errors import ControlTotalMismatch, InputError
from tests.files_support import DATA_DIR

ISO = DATA_DIR / "iso20022"


@pytest.mark.parametrize(("name", "transfers", "amounts"), [
    ("pain001-template.pain.001.001.03.xml", 4, [15000, 30000, 25000, 20000]),
    ("pain001-01-transfer-every-element.pain.001.001.03.xml", 1, [100]),
    ("pain001-02-transfer-EqvtAmt.pain.001.001.03.xml", 1, [100]),
    ("pacs008-template.pacs.008.001.02.xml", 1, [100000])])
def test_real_payment_files_validate_and_read(name, transfers, amounts):
    """The public pain.001/pacs.008 files pass their XSD and control sums, amounts in minor units."""
    read = read_payments(ISO / name)
    assert read.problems == []
    assert len(read.lines) == transfers
    assert read.columns["amount_minor"] == amounts


def test_pain001_imports_then_reimports_as_duplicates(tmp_path):
    """4 transfers imported into the store; the same file again gives 4 duplicates, 0 imported."""
    path = ISO / "pain001-template.pain.001.001.03.xml"
    first = import_source(path, tmp_path / "store")
    again = import_source(path, tmp_path / "store")
    assert (first.read, first.imported, first.quarantined) == (4, 4, 0)
    assert (again.imported, again.duplicates) == (0, 4)
    table = ds.dataset(tmp_path / "store", partitioning="hive").to_table()
    assert sorted(table["amount_minor"].to_pylist()) == [15000, 20000, 25000, 30000]
    assert set(table["currency"].to_pylist()) == {"EUR"}


def test_wrong_ctrl_sum_imports_nothing_and_names_it(tmp_path):
    """A CtrlSum off by 0.01 is a ControlTotalMismatch naming GrpHdr/CtrlSum; nothing lands."""
    text = (ISO / "pain001-template.pain.001.001.03.xml").read_text()
    bad = tmp_path / "bad.xml"
    bad.write_text(text.replace("<CtrlSum>900.00</CtrlSum>", "<CtrlSum>900.01</CtrlSum>", 1))
    with pytest.raises(ControlTotalMismatch, match=r"GrpHdr/CtrlSum: declares 900.01"):
        import_source(bad, tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_wrong_nb_of_txs_in_a_payment_block_is_named(tmp_path):
    """NbOfTxs of the PmtInf block says 5 for 4 transfers: named with the block's id."""
    text = (ISO / "pain001-template.pain.001.001.03.xml").read_text()
    head, _, rest = text.partition("<PmtInf>")
    bad = tmp_path / "bad.xml"
    bad.write_text(head + "<PmtInf>" + rest.replace("<NbOfTxs>4</NbOfTxs>", "<NbOfTxs>5</NbOfTxs>", 1))
    read = read_payments(bad)
    assert [p.element for p in read.problems] == ["PmtInf Payment-Info-12345/NbOfTxs"]


def test_schema_invalid_payment_is_input_error(tmp_path):
    """A pacs.008 without its settlement method fails the official XSD with its line."""
    text = (ISO / "pacs008-template.pacs.008.001.02.xml").read_text()
    bad = tmp_path / "bad.xml"
    bad.write_text(text.replace("<SttlmMtd>CLRG</SttlmMtd>", ""))
    with pytest.raises(InputError, match=r"not valid pacs.008.001.02"):
        import_source(bad, tmp_path / "store")
