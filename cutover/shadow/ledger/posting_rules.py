"""The accounting policy of the shadow ledger: which outcome books which entries.

Pure and vectorised: a batch of DIFF rows goes in, a ``Plan`` of entries and postings comes
out, with no I/O. Both books follow the same policy; the legacy book reads the ``legacy_*``
columns and the candidate book the ``candidate_*`` columns, so a difference between the books
is a difference in decisions, never in policy.

The policy, per book, for a row whose decision is ``approve`` (amounts in the row's currency;
debit +, credit -):

* ``hold``       authorisation hold:  Dr CARD_FUNDING:<customer>   Cr GATEWAY_CLEARING:<route>
* ``capture``    capture to merchant: Dr GATEWAY_CLEARING:<route>  Cr MERCHANT_PAYABLE:<merchant>
* ``fee``        gateway fee, only when fee > 0:
                                      Dr FEE_EXPENSE:<route>       Cr GATEWAY_CLEARING:<route>
* ``chargeback`` only when the row is labelled ``chargeback``; labelled fraud too:
                                      Dr FRAUD_LOSS:<merchant>     Cr CARD_FUNDING:<customer>
                  not labelled fraud (a dispute: goods not received, a duplicate):
                                      Dr DISPUTE_LOSS:<merchant>   Cr CARD_FUNDING:<customer>

A chargeback refunds the cardholder (undoing the card funding) and books the amount as a loss
attributed to the merchant: a fraud loss only for labelled fraud (docs/money.md). We
deliberately do not claw it back from MERCHANT_PAYABLE: the legacy end-of-day file reports the
payable as the total approved amount, gross of chargebacks, and keeping the payable gross lets
reconciliation compare like with like. A fraud label without a chargeback posts nothing,
because no money has moved yet.

``decline``, ``review`` and ``error`` post nothing, nor does a quarantined row, nor a side
whose decision is missing. An approved row without a route posts through
``GATEWAY_CLEARING:UNROUTED`` (and ``FEE_EXPENSE:UNROUTED``) so the money stays visible in the
books instead of vanishing; a non-zero UNROUTED balance is itself a finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.domain import CURRENCY_EXPONENTS
from cutover.errors import StoreError, Unbalanced
from cutover.shadow.ledger.schema import BOOK_IDS
from cutover.stack.money import side_masks

UNROUTED: Final = "UNROUTED"
QUARANTINED: Final = "quarantined"
APPROVE: Final = "approve"

#: Entry kinds in the order they are booked for one transaction.
KINDS: Final = ("hold", "capture", "fee", "chargeback")
KIND_ORDER: Final[dict[str, int]] = {k: i for i, k in enumerate(KINDS)}

#: Account classes; an account id is ``CLASS:key`` per currency.
CARD_FUNDING: Final = "CARD_FUNDING"
MERCHANT_PAYABLE: Final = "MERCHANT_PAYABLE"
GATEWAY_CLEARING: Final = "GATEWAY_CLEARING"
FEE_EXPENSE: Final = "FEE_EXPENSE"
FRAUD_LOSS: Final = "FRAUD_LOSS"
DISPUTE_LOSS: Final = "DISPUTE_LOSS"
ACCOUNT_CLASSES: Final = (CARD_FUNDING, MERCHANT_PAYABLE, GATEWAY_CLEARING, FEE_EXPENSE,
                          FRAUD_LOSS, DISPUTE_LOSS)

#: The DIFF columns the policy reads.
COLUMNS: Final = ["txn_id", "ts", "category", "amount_minor", "currency", "merchant_id",
                  "customer_id", "chargeback", "is_fraud",
                  "legacy_decision", "legacy_route", "legacy_fee_minor",
                  "candidate_decision", "candidate_route", "candidate_fee_minor"]

_CONTROL_CHARS: Final = "[\\x00-\\x1f\\x7f]"


@dataclass(frozen=True)
class Plan:
    """Entries and their postings, ready to chain and write.

    Entry ``i`` owns postings ``2*i`` (the debit leg) and ``2*i + 1`` (the credit leg): every
    rule is two-legged, so offsets are implicit. Amounts are signed, debit +, credit -.
    """

    book_id: np.ndarray          # int64, one per entry
    txn_id: pa.Array             # string
    kind: pa.Array               # string
    ts_us: pa.Array              # int64, nullable
    currency: pa.Array           # string
    account: pa.Array            # string, one per posting
    account_class: pa.Array      # string, one per posting
    amount_minor: np.ndarray     # int64, one per posting

    @property
    def entries(self) -> int:
        """Number of entries in the plan."""
        return len(self.book_id)

    @property
    def postings(self) -> int:
        """Number of postings in the plan."""
        return len(self.amount_minor)

    def take(self, entry_indices: np.ndarray) -> Plan:
        """Return the plan restricted to the given entries, in the given order."""
        idx = np.asarray(entry_indices, dtype=np.int64)
        legs = np.empty(2 * len(idx), dtype=np.int64)
        legs[0::2], legs[1::2] = 2 * idx, 2 * idx + 1
        return Plan(self.book_id[idx], self.txn_id.take(idx), self.kind.take(idx),
                    self.ts_us.take(idx), self.currency.take(idx), self.account.take(legs),
                    self.account_class.take(legs), self.amount_minor[legs])


@dataclass(frozen=True)
class _Rule:
    """One two-legged rule applied to the rows selected by ``mask``."""

    kind: str
    mask: np.ndarray
    debit_class: str
    debit_key: pa.Array
    credit_class: str
    credit_key: pa.Array
    amount_minor: pa.Array


def empty_plan() -> Plan:
    """A plan with no entries."""
    s, i = pa.array([], pa.string()), pa.array([], pa.int64())
    return Plan(np.zeros(0, np.int64), s, s, i, s, s, s, np.zeros(0, np.int64))


def plan_postings(diffs: pa.Table | pa.RecordBatch) -> Plan:
    """Apply the policy to a batch of DIFF rows (both books); raise StoreError on bad money."""
    diffs = pa.RecordBatch.from_arrays([diffs[c].combine_chunks() for c in COLUMNS],
                                       names=COLUMNS)
    _refuse_unsafe_ids(diffs)
    parts = [_book_rules(diffs, book) for book in BOOK_IDS]
    rules = [(BOOK_IDS[book], rule) for book, book_rules in zip(BOOK_IDS, parts, strict=True)
             for rule in book_rules]
    return _assemble(diffs, rules)


def _refuse_unsafe_ids(diffs: pa.RecordBatch) -> None:
    """Refuse ids holding control characters: the audit chain uses them as separators."""
    for name in ("txn_id", "merchant_id", "customer_id", "legacy_route", "candidate_route"):
        bad = pc.fill_null(pc.match_substring_regex(diffs[name], _CONTROL_CHARS), False)
        if pc.any(bad).as_py():
            row = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
            raise StoreError(f"diffs row {row}: field {name} holds a control character")


def _book_rules(diffs: pa.RecordBatch, book: str) -> list[_Rule]:
    """The rules of one book, each with the rows it selects."""
    decision = diffs[f"{book}_decision"]
    approved = pc.and_(pc.fill_null(pc.equal(decision, APPROVE), False),
                       pc.fill_null(pc.not_equal(diffs["category"], QUARANTINED), True))
    approved_np = approved.to_numpy(zero_copy_only=False)
    _refuse_bad_money(diffs, book, approved_np)
    route = pc.fill_null(diffs[f"{book}_route"], UNROUTED)
    fee = pc.fill_null(diffs[f"{book}_fee_minor"], 0)
    has_fee = approved_np & (fee.to_numpy(zero_copy_only=False) > 0)
    charged_back = pc.fill_null(diffs["chargeback"], False).to_numpy(zero_copy_only=False)
    fraud = pc.fill_null(diffs["is_fraud"], False).to_numpy(zero_copy_only=False)
    none = np.zeros(len(approved_np), bool)
    money = side_masks(approved_np, none, none, fraud, charged_back)
    amount, merchant, customer = diffs["amount_minor"], diffs["merchant_id"], diffs["customer_id"]
    return [
        _Rule("hold", approved_np, CARD_FUNDING, customer, GATEWAY_CLEARING, route, amount),
        _Rule("capture", approved_np, GATEWAY_CLEARING, route, MERCHANT_PAYABLE, merchant,
              amount),
        _Rule("fee", has_fee, FEE_EXPENSE, route, GATEWAY_CLEARING, route, fee),
        # One chargeback entry a transaction: a fraud loss when labelled fraud, else a dispute
        # loss (the money model, cutover.stack.money).
        _Rule("chargeback", money["fraud_loss"], FRAUD_LOSS, merchant, CARD_FUNDING,
              customer, amount),
        _Rule("chargeback", money["dispute_loss"], DISPUTE_LOSS, merchant, CARD_FUNDING,
              customer, amount),
    ]


def _refuse_bad_money(diffs: pa.RecordBatch, book: str, approved: np.ndarray) -> None:
    """An approved row must carry a positive amount, a known currency, ids and a fee >= 0."""
    if not approved.any():
        return
    rows = diffs.filter(pa.array(approved))
    checks = {
        "amount_minor": pc.fill_null(pc.greater(rows["amount_minor"], 0), False),
        "currency": pc.is_in(rows["currency"], value_set=pa.array(sorted(CURRENCY_EXPONENTS))),
        "merchant_id": pc.is_valid(rows["merchant_id"]),
        "customer_id": pc.is_valid(rows["customer_id"]),
        f"{book}_fee_minor": pc.fill_null(pc.greater_equal(rows[f"{book}_fee_minor"], 0), True),
    }
    for field, ok in checks.items():
        ok_np = ok.to_numpy(zero_copy_only=False)
        if not ok_np.all():
            row = int(np.flatnonzero(~ok_np)[0])
            txn, value = rows["txn_id"][row].as_py(), rows[field][row].as_py()
            raise StoreError(f"txn {txn}: {book} approved it but field {field} is {value!r};"
                             " the ledger books only exact money")


def _assemble(diffs: pa.RecordBatch, rules: list[tuple[int, _Rule]]) -> Plan:
    """Concatenate the rules' entries, order them per transaction, and lay out their legs."""
    rows, books, kinds, debits, credits, dclass, cclass, amounts = ([] for _ in range(8))
    for book_id, rule in rules:
        idx = np.flatnonzero(rule.mask)
        rows.append(idx)
        books.append(np.full(len(idx), book_id, np.int64))
        kinds.append(np.full(len(idx), KIND_ORDER[rule.kind], np.int64))
        debits.append(_account(rule.debit_class, rule.debit_key.take(idx)))
        credits.append(_account(rule.credit_class, rule.credit_key.take(idx)))
        dclass.append(pa.array(np.full(len(idx), rule.debit_class, object), pa.string()))
        cclass.append(pa.array(np.full(len(idx), rule.credit_class, object), pa.string()))
        amounts.append(pc.cast(rule.amount_minor.take(idx), pa.int64()).to_numpy(
            zero_copy_only=False))
    row, book, kind = np.concatenate(rows), np.concatenate(books), np.concatenate(kinds)
    if len(row) == 0:
        return empty_plan()
    # One transaction's entries stay together: by input row, then legacy before candidate,
    # then hold, capture, fee, chargeback. The order is deterministic, so a resumed apply
    # builds the same chain as an uninterrupted one.
    order = np.lexsort((kind, book, row))
    row, book, kind = row[order], book[order], kind[order]
    amount = np.concatenate(amounts)[order]
    legs = _interleave(pa.concat_arrays(debits).take(order), pa.concat_arrays(credits).take(order))
    leg_class = _interleave(pa.concat_arrays(dclass).take(order),
                            pa.concat_arrays(cclass).take(order))
    signed = np.empty(2 * len(amount), np.int64)
    signed[0::2], signed[1::2] = amount, -amount
    ts_us = pc.cast(pc.cast(diffs["ts"], pa.timestamp("us", tz="UTC")), pa.int64())
    kind_names = pa.array(np.array(KINDS, dtype=object)[kind], pa.string())
    return Plan(book, diffs["txn_id"].take(row), kind_names, ts_us.take(row),
                diffs["currency"].take(row), legs, leg_class, signed)


def _account(account_class: str, keys: pa.Array) -> pa.Array:
    """``CLASS:key`` account ids for an array of keys."""
    return pc.binary_join_element_wise(pa.scalar(f"{account_class}:"), keys, "")


def _interleave(first: pa.Array, second: pa.Array) -> pa.Array:
    """[a0, b0, a1, b1, ...] from two equally long arrays."""
    n = len(first)
    idx = np.empty(2 * n, np.int64)
    idx[0::2], idx[1::2] = np.arange(n), np.arange(n) + n
    return pa.concat_arrays([first, second]).take(idx)


def check_balanced(plan: Plan) -> None:
    """Raise Unbalanced naming the first entry whose postings do not sum to zero.

    Each entry holds one currency, so a zero sum per entry is a zero sum per currency.
    """
    if plan.postings != 2 * plan.entries:
        raise Unbalanced(f"plan has {plan.postings} postings for {plan.entries} entries;"
                         " every entry must have exactly two legs")
    if plan.entries == 0:
        return
    sums = plan.amount_minor[0::2] + plan.amount_minor[1::2]
    bad = np.flatnonzero(sums != 0)
    if len(bad):
        i = int(bad[0])
        raise Unbalanced(f"entry {plan.kind[i].as_py()} of txn {plan.txn_id[i].as_py()}"
                         f" ({plan.currency[i].as_py()}) sums to {int(sums[i])}, not 0")
