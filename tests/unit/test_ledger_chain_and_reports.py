"""The hash chain, the reconcile core and the book comparison as pure functions."""

import numpy as np
import pyarrow as pa

from cutover.shadow.ledger import chain
from cutover.shadow.ledger.compare import compare_books
from cutover.shadow.ledger.reconcile import ReconcileBreak, compare_balances


def _cols(amount=500, klass="A"):
    return chain.EntryColumns(
        np.array([1, 2], np.int64), pa.array(["legacy", "legacy"]), pa.array(["T1", "T1"]),
        pa.array(["hold", "capture"]), pa.array([10, None], pa.int64()),
        pa.array(["USD", "USD"]), pa.array(["A:1", "B:1", "B:1", "C:1"]),
        np.array([amount, -amount, 500, -500], np.int64), np.array([0, 2, 4], np.int64),
        pa.array([klass, "B", "B", "C"]), pa.array(["USD"] * 4))


def test_link_then_check_finds_no_mismatch_and_detects_a_changed_amount():
    """A recomputed chain matches; changing one amount names that entry (index 0)."""
    prevs, hashes = chain.link(chain.contents(_cols()), chain.GENESIS_HASH)
    assert prevs[1] == hashes[0] and prevs[0] == chain.GENESIS_HASH
    assert chain.first_mismatch(chain.contents(_cols()), prevs, hashes,
                                chain.GENESIS_HASH) is None
    found = chain.first_mismatch(chain.contents(_cols(501)), prevs, hashes, chain.GENESIS_HASH)
    assert found is not None and found.index == 0 and "content" in found.reason


def test_changed_account_class_breaks_the_chain():
    """Moving the first leg's account to another class changes entry 0's hash."""
    prevs, hashes = chain.link(chain.contents(_cols()), chain.GENESIS_HASH)
    found = chain.first_mismatch(chain.contents(_cols(klass="Z")), prevs, hashes,
                                 chain.GENESIS_HASH)
    assert found is not None and found.index == 0


def test_keyed_chain_needs_the_same_key():
    """An HMAC chain verifies with its key, not without it nor with another (index 0)."""
    prevs, hashes = chain.link(chain.contents(_cols()), chain.GENESIS_HASH, b"k1")
    assert hashes != chain.link(chain.contents(_cols()), chain.GENESIS_HASH)[1]
    assert chain.first_mismatch(chain.contents(_cols()), prevs, hashes, chain.GENESIS_HASH,
                                b"k1") is None
    for key in (None, b"k2"):
        found = chain.first_mismatch(chain.contents(_cols()), prevs, hashes,
                                     chain.GENESIS_HASH, key)
        assert found is not None and found.index == 0


def test_compare_balances_lists_only_differences_with_missing_as_zero():
    """Equal maps give no break; one altered and one missing account give two."""
    legacy = {("MERCHANT_PAYABLE:M1", "USD"): 1000, ("FEE_EXPENSE:GW_A", "USD"): 30}
    assert compare_balances(legacy, dict(legacy)) == []
    mirror = {("MERCHANT_PAYABLE:M1", "USD"): 1001}
    breaks = compare_balances(legacy, mirror)
    assert breaks == [ReconcileBreak("FEE_EXPENSE:GW_A", "USD", 30, 0),
                      ReconcileBreak("MERCHANT_PAYABLE:M1", "USD", 1000, 1001)]
    assert breaks[1].as_dict()["difference_minor"] == 1


def test_compare_books_shows_positive_figures_and_candidate_minus_legacy():
    """Captured is the payable negated; delta is candidate minus legacy, as money text."""
    totals = {("legacy", "MERCHANT_PAYABLE", "USD"): -1000,
              ("candidate", "MERCHANT_PAYABLE", "USD"): -750,
              ("candidate", "FRAUD_LOSS", "USD"): 250}
    rows = {r["measure"]: r for r in compare_books(totals)}
    assert rows["captured"]["legacy"] == "10.00 USD"
    assert rows["captured"]["delta"] == "-2.50 USD"
    assert rows["fraud_losses"]["delta_minor"] == 250 and rows["fees"]["delta_minor"] == 0
