"""Narrowing and validation of replay input: hashes, samples, dates, quarantine reasons."""

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from cutover.errors import InputError
from cutover.store.filters import Narrowing, hash_fraction, parse_when, txn_hash
from cutover.store.quarantine import quarantine_reasons
from tests.replay_support import make_traffic, with_bad_rows


def test_the_hash_depends_on_the_id_only():
    """Same id, same hash: sliced, chunked or on its own; different ids spread out."""
    ids = pa.array([f"T{i:08d}" for i in range(5_000)] + ["", "ü-Ω"])
    whole = txn_hash(ids)
    assert (txn_hash(ids.slice(100, 50)) == whole[100:150]).all()
    chunked = pa.chunked_array([ids.slice(0, 7), ids.slice(7)])
    assert (txn_hash(chunked) == whole).all()
    assert len(np.unique(whole)) == len(ids)
    share = (hash_fraction(ids) < 0.3).mean()
    assert 0.27 < share < 0.33


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-10-02", datetime(2026, 10, 2, tzinfo=UTC)),
    ("2026-10-02T12:30:00Z", datetime(2026, 10, 2, 12, 30, tzinfo=UTC)),
    ("2026-10-02T14:30:00+02:00", datetime(2026, 10, 2, 12, 30, tzinfo=UTC)),
])
def test_dates_are_utc(text, expected):
    """ISO dates and datetimes become aware UTC datetimes."""
    assert parse_when(text) == expected


def test_bad_narrowing_is_refused():
    """Unreadable dates, samples outside (0, 1], non-positive limits, inverted windows."""
    with pytest.raises(InputError, match="--since"):
        parse_when("next week")
    with pytest.raises(InputError):
        Narrowing(sample=0.0)
    with pytest.raises(InputError):
        Narrowing(limit=0)
    with pytest.raises(InputError):
        Narrowing(since=datetime(2026, 10, 3, tzinfo=UTC), until=datetime(2026, 10, 2, tzinfo=UTC))


def test_every_bad_row_gets_its_own_reason_and_good_rows_none():
    """Five rows broken five ways get five reasons; duplicates after the first are caught."""
    table = with_bad_rows(make_traffic(40, seed=2))
    reasons = quarantine_reasons(table).to_pylist()
    assert {i: r for i, r in enumerate(reasons) if r} == {
        3: "amount_minor is missing or not positive",
        7: "currency is not an ISO 4217 code cutover knows",
        11: "missing merchant_id",
        13: "channel is not one of ecom|pos|moto|recurring",
        17: "customer_id holds a control character",
    }
    doubled = pa.concat_tables([table.slice(0, 2), table.slice(0, 1)])
    assert quarantine_reasons(doubled).to_pylist() == [None, None, "txn_id repeated within the batch"]
    assert quarantine_reasons(make_traffic(500, seed=4)).null_count == 500
