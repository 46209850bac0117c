"""Unit tests of the field codecs: known COBOL encodings and value round trips."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cutover.adapters.files.codecs import packed_decode, packed_encode, zoned_decode, zoned_encode
from cutover.adapters.files.columns import decode_field, encode_field
from cutover.adapters.files.layout import FieldSpec
from cutover.errors import BadRecord


def _field(**kw) -> FieldSpec:
    base = {"name": "f", "start": 1, "length": 5, "type": "integer"}
    return FieldSpec(**{**base, **kw})


def test_zoned_known_encodings():
    """Overpunch as COBOL writes it: { and A-I positive, } and J-R negative."""
    assert zoned_decode("1234{") == 12340
    assert zoned_decode("1234}") == -12340
    assert zoned_decode("0000A") == 1
    assert zoned_decode("0000R") == -9
    assert zoned_encode(-12340, 5) == "1234}"
    assert zoned_encode(12349, 5) == "1234I"


def test_packed_known_encodings():
    """COMP-3: bytes 12 34 5C are +12345 and 12 34 5D are -12345."""
    assert packed_decode(bytes.fromhex("12345C")) == 12345
    assert packed_decode(bytes.fromhex("12345D")) == -12345
    assert packed_encode(-12345, 3) == bytes.fromhex("12345D")
    with pytest.raises(BadRecord, match="bad packed"):
        packed_decode(bytes.fromhex("1A345C"))


def test_zoned_refuses_bad_character():
    """A character that is neither a digit nor an overpunch is refused, naming it."""
    with pytest.raises(BadRecord, match="overpunch character 'X'"):
        zoned_decode("1234X")


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=-(10**14) + 1, max_value=10**14 - 1))
def test_zoned_scalar_and_column_agree(value):
    """Scalar and vectorised zoned codecs agree and round trip every value."""
    text = zoned_encode(value, 15)
    spec = _field(length=15, sign="overpunch")
    column = encode_field(spec, pa.array([value], pa.int64()))
    assert column.to_pylist() == [text]
    decoded = decode_field(spec, pa.array([text.encode()], pa.binary()), "ascii")
    assert decoded.values.to_pylist() == [value] and not decoded.bad.any()
    assert zoned_decode(text) == value


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=-(10**9) + 1, max_value=10**9 - 1))
def test_packed_round_trip(value):
    """Packed decimal encode then decode gives the value back."""
    assert packed_decode(packed_encode(value, 5)) == value


@pytest.mark.parametrize(("fmt", "text", "expected"), [
    ("CCYYMMDD", "20261001", dt.date(2026, 10, 1)),
    ("YYMMDD", "190625", dt.date(2019, 6, 25)),
    ("YYDDD", "24060", dt.date(2024, 2, 29)),
    ("CCYYDDD", "2026274", dt.date(2026, 10, 1)),
])
def test_dates_decode_and_encode(fmt, text, expected):
    """Each date form decodes to the right day and encodes back to the same text."""
    spec = _field(type="date", format=fmt, length=len(text))
    decoded = decode_field(spec, pa.array([text.encode()], pa.binary()), "ascii")
    assert decoded.values.to_pylist() == [expected] and not decoded.bad.any()
    assert encode_field(spec, decoded.values).to_pylist() == [text]


def test_bad_values_are_flagged_not_raised():
    """Bad digits, an impossible date and a bad time are flagged per row with a reason."""
    spec = _field(type="date", format="CCYYMMDD", length=8)
    decoded = decode_field(spec, pa.array([b"20261301", b"2026AB01", b"20261001"]), "ascii")
    assert decoded.bad.tolist() == [True, True, False]
    assert "CCYYMMDD" in decoded.reason
    ints = decode_field(_field(), pa.array([b"00012", b"0 012"]), "ascii")
    assert ints.bad.tolist() == [False, True]
    hhmm = decode_field(_field(type="time", format="HHMM", length=4),
                        pa.array([b"2359", b"2460"]), "ascii")
    assert hhmm.bad.tolist() == [False, True]


def test_encode_refuses_values_that_do_not_fit():
    """A value wider than its field is refused naming the field and row, never truncated."""
    with pytest.raises(BadRecord, match=r"field 'f' .*row 1 does not fit in 5"):
        encode_field(_field(), pa.array([1, 123456], pa.int64()))
    with pytest.raises(BadRecord, match="negative but the field is unsigned"):
        encode_field(_field(), pa.array([-1], pa.int64()))
