"""camt.053 and MT940 statements: real public files, hostile XML, and balances that add up."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cutover.adapters.statements import read_statement
from cutover.errors import CheckFailed, InputError, UnsafeXML
from cutover.sim.eod_statements import _slices, write_camt053, write_mt940
from tests.files_support import DATA_DIR

CAMT = DATA_DIR / "camt053"
MT940 = DATA_DIR / "mt940"


def test_genkgo_multi_statement_reads_two_consistent_statements():
    """genkgo's camt053.v2.multi.statement.xml: 2 statements that add up, 2 entries, refs kept."""
    read, entries = read_statement(CAMT / "genkgo-camt053.v2.multi.statement.xml")
    assert [(s.opening_minor, s.booked_minor, s.closing_minor) for s in read.statements] == \
        [(1815, 885, 2700), (2700, -700, 2000)]
    assert entries["reference"].to_pylist() == ["000000001", "000000002"]
    assert entries["line"].to_pylist() == [66, 145] and read.problems == []


def test_genkgo_minimal_is_refused_naming_lines():
    """genkgo's minimal file has SEK/CHF/JPY balances in a EUR account and a DBIT closing:
    CheckFailed, and each problem names its line."""
    with pytest.raises(CheckFailed, match=r"genkgo-camt053.v2.minimal.xml:54: Bal/Amt/@Ccy"):
        read_statement(CAMT / "genkgo-camt053.v2.minimal.xml")
    read, _ = read_statement(CAMT / "genkgo-camt053.v2.minimal.xml", strict=False)
    assert [p.line for p in read.problems] == [54, 66, 78, 26]
    assert "closing balance is -2700" in read.problems[-1].message


def test_doctype_in_a_statement_is_refused(tmp_path):
    """An entity declaration before the root is UnsafeXML, before any parsing or validation."""
    text = (CAMT / "genkgo-camt053.v2.multi.statement.xml").read_text()
    evil = text.replace("<Document", '<!DOCTYPE d [<!ENTITY x "y">]>\n<Document', 1)
    (tmp_path / "evil.xml").write_text(evil)
    with pytest.raises(UnsafeXML):
        read_statement(tmp_path / "evil.xml")


def test_schema_error_names_the_line_and_element(tmp_path):
    """An entry without its required Sts fails the official XSD: InputError naming line 71
    (the BookgDt found where Sts must be)."""
    text = (CAMT / "genkgo-camt053.v2.multi.statement.xml").read_text()
    (tmp_path / "bad.xml").write_text(text.replace("<Sts>BOOK</Sts>", "", 1))
    with pytest.raises(InputError, match=r"bad.xml:71: camt.053.001.02: not valid .*BookgDt.*Sts"):
        read_statement(tmp_path / "bad.xml")


@pytest.mark.parametrize(("name", "statements", "broken"), [
    ("dovadi-abnamro.txt", 2, 2), ("dovadi-rabobank.txt", 3, 2), ("dovadi-triodos.txt", 1, 1),
    ("libmt94x-ing-provided-example-multiple-messages.txt", 1, 1)])
def test_real_mt940_files_parse_and_name_balances_that_do_not_add_up(name, statements, broken):
    """The public MT940 examples parse; their anonymised balances do not add up, each named."""
    read, entries = read_statement(MT940 / name, strict=False)
    assert len(read.statements) == statements
    assert len(read.problems) == broken
    assert all("closing balance" in p.message for p in read.problems)
    assert entries.num_rows == sum(s.entries for s in read.statements)


def test_mt940_reversal_and_debit_signs(tmp_path):
    """D is negative, RD (reversed debit) positive; opening + entries == closing holds."""
    (tmp_path / "s.mt940").write_text(
        ":20:STMT1\n:25:NL91ABNA0417164300\n:28C:1/1\n:60F:C261001EUR100,00\n"
        ":61:2610011001D20,50NTRFREF1//BANK1\n:86:first\n:61:2610011001RD5,00NTRFREF2\n"
        ":86:second\n:62F:C261001EUR84,50\n-\n")
    read, entries = read_statement(tmp_path / "s.mt940")
    assert entries["amount_minor"].to_pylist() == [-2050, 500]
    assert read.statements[0].closing_minor == 8450


ACCOUNTS = st.lists(st.tuples(st.sampled_from(["MERCHANT_PAYABLE:M1", "FEE_EXPENSE:gw", "X:Y"]),
                              st.sampled_from(["USD", "EUR", "JPY", "KWD"])),
                    min_size=1, max_size=4, unique=True)


@st.composite
def books(draw):
    accounts = sorted(draw(ACCOUNTS))
    rows = {"account": [], "currency": [], "txn_id": [], "ts": [], "amount_minor": [],
            "kind": []}
    opening = []
    for account, currency in accounts:
        opening.append((account, currency, draw(st.integers(-10**9, 10**9))))
        for i in range(draw(st.integers(0, 6))):
            amount = draw(st.integers(-10**8, 10**8).filter(lambda v: v != 0))
            rows["account"].append(account)
            rows["currency"].append(currency)
            rows["txn_id"].append(f"T{len(rows['txn_id'])}-{i}")
            rows["ts"].append(dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC))
            rows["amount_minor"].append(amount)
            rows["kind"].append(draw(st.sampled_from(["capture", "fee"])))
    return opening, pa.table(rows)


@pytest.mark.parametrize("writer", [write_camt053, write_mt940])
@settings(max_examples=15, deadline=None)
@given(drawn=books())
def test_written_statements_balance_opening_plus_entries(writer, drawn, tmp_path_factory):
    """Property: any books written as camt.053 or MT940 read back with closing == opening +
    entries per account, and the entries' amounts as written."""
    opening, entries = drawn
    path = tmp_path_factory.mktemp("st") / "s.stmt"
    writer(path, opening, entries, _slices(entries), dt.date(2026, 10, 1), dt.date(2026, 10, 1))
    read, table = read_statement(path)
    assert read.problems == []
    for st_, (account, currency, opened) in zip(read.statements, opening, strict=True):
        assert (st_.account, st_.currency, st_.opening_minor) == (account, currency, opened)
        assert st_.closing_minor == opened + st_.booked_minor
    assert table["amount_minor"].to_pylist() == entries["amount_minor"].to_pylist()
