"""The posting policy and the balance check, on plain DIFF rows (no database)."""

import pytest

from cutover.errors import StoreError, Unbalanced
from cutover.shadow.ledger.posting_rules import check_balanced, plan_postings
from tests.ledger_support import table_from


def _row(**over):
    base = {"txn_id": ["T1"], "amount_minor": [1000], "currency": ["USD"],
            "merchant_id": ["M1"], "customer_id": ["C1"], "chargeback": [False],
            "legacy_decision": ["approve"], "legacy_route": ["GW_A"], "legacy_fee_minor": [30],
            "candidate_decision": ["decline"], "candidate_route": [None],
            "candidate_fee_minor": [0]}
    base.update({k: [v] for k, v in over.items()})
    return table_from(base)


def _entries(plan):
    return [(int(plan.book_id[i]), plan.kind[i].as_py(),
             plan.account[2 * i].as_py(), plan.account[2 * i + 1].as_py(),
             int(plan.amount_minor[2 * i]), int(plan.amount_minor[2 * i + 1]))
            for i in range(plan.entries)]


def test_approval_books_hold_capture_and_fee_in_the_legacy_book_only():
    """An approval legacy-side gives hold, capture, fee with debit + and credit -."""
    plan = plan_postings(_row())
    assert _entries(plan) == [
        (1, "hold", "CARD_FUNDING:C1", "GATEWAY_CLEARING:GW_A", 1000, -1000),
        (1, "capture", "GATEWAY_CLEARING:GW_A", "MERCHANT_PAYABLE:M1", 1000, -1000),
        (1, "fee", "FEE_EXPENSE:GW_A", "GATEWAY_CLEARING:GW_A", 30, -30),
    ]
    assert plan.postings == 6 and int(plan.amount_minor.sum()) == 0


def test_chargeback_moves_the_loss_to_fraud_loss_and_null_route_is_unrouted():
    """A chargeback labelled fraud books FRAUD_LOSS/CARD_FUNDING; a null route posts via
    UNROUTED."""
    plan = plan_postings(_row(chargeback=True, is_fraud=True, legacy_route=None,
                              legacy_fee_minor=0))
    kinds = [e[1] for e in _entries(plan)]
    assert kinds == ["hold", "capture", "chargeback"]
    assert _entries(plan)[0][3] == "GATEWAY_CLEARING:UNROUTED"
    assert _entries(plan)[2][2:] == ("FRAUD_LOSS:M1", "CARD_FUNDING:C1", 1000, -1000)


@pytest.mark.parametrize("fraud", [False, None])
def test_a_chargeback_not_labelled_fraud_is_a_dispute_loss(fraud):
    """The money model: no fraud label, no fraud loss; the refund books DISPUTE_LOSS."""
    plan = plan_postings(_row(chargeback=True, is_fraud=fraud))
    assert _entries(plan)[-1][1:] == (
        "chargeback", "DISPUTE_LOSS:M1", "CARD_FUNDING:C1", 1000, -1000)


@pytest.mark.parametrize("decision", ["decline", "review", "error", None])
def test_non_approvals_post_nothing(decision):
    """Decline, review, error and a missing decision book no entry."""
    assert plan_postings(_row(legacy_decision=decision)).entries == 0


def test_quarantined_rows_post_nothing_on_either_side():
    """A quarantined row is skipped even when both sides say approve."""
    plan = plan_postings(_row(category="quarantined", candidate_decision="approve"))
    assert plan.entries == 0


def test_candidate_book_reads_candidate_columns():
    """The candidate book uses candidate_route and candidate_fee_minor."""
    plan = plan_postings(_row(legacy_decision="decline", candidate_decision="approve",
                              candidate_route="GW_B", candidate_fee_minor=7))
    assert [(e[0], e[1], e[2]) for e in _entries(plan)] == [
        (2, "hold", "CARD_FUNDING:C1"), (2, "capture", "GATEWAY_CLEARING:GW_B"),
        (2, "fee", "FEE_EXPENSE:GW_B")]
    assert int(plan.amount_minor[4]) == 7


def test_bad_money_on_an_approved_row_is_refused_naming_the_txn():
    """An approved row with a negative amount is refused, naming the txn and field."""
    with pytest.raises(StoreError, match="txn T1: legacy approved it but field amount_minor"):
        plan_postings(_row(amount_minor=-5))
    with pytest.raises(StoreError, match="field currency"):
        plan_postings(_row(currency="XXX"))


def test_control_characters_in_ids_are_refused():
    """Ids with control characters would make the chain's canonical text ambiguous."""
    with pytest.raises(StoreError, match="field merchant_id holds a control character"):
        plan_postings(_row(merchant_id="M\x1f1"))


def test_unbalanced_plan_is_refused_before_any_write():
    """check_balanced names the entry whose legs do not sum to zero."""
    plan = plan_postings(_row())
    plan.amount_minor[1] = -999
    with pytest.raises(Unbalanced, match="entry hold of txn T1 \\(USD\\) sums to 1, not 0"):
        check_balanced(plan)
