"""The money model: what each money figure means, computed one way everywhere.

The replay report, `cutover evaluate` and both books of the shadow ledger all count money by
these masks, so the same transaction lands in the same measure whichever output a risk officer
reads (docs/money.md says it in words). A side is legacy or the candidate; labels are the
store's (``is_fraud``, ``chargeback``) as known when the figure is computed: a label missing
(null) counts as not fraud, not charged back, and is counted apart as unknown.

Per side, for each transaction (amounts in its own currency, minor units):

* approved          the side approved it (the ledger captures it to the merchant)
* fraud_caught      declined or reviewed, labelled fraud
* fraud_let_through approved, labelled fraud
* false_decline     declined, not labelled fraud
* fraud_loss        approved, charged back and labelled fraud (the ledger's FRAUD_LOSS)
* dispute_loss      approved, charged back, not labelled fraud (the ledger's DISPUTE_LOSS)
* fraud_pending     approved, labelled fraud, no chargeback (yet): let through, not yet lost

so fraud_let_through = fraud_loss + fraud_pending, always.
"""

from __future__ import annotations

from typing import Final

import numpy as np

#: The per-side measures, in the order reports show them.
SIDE_MEASURES: Final = ("approved", "fraud_caught", "fraud_let_through", "false_decline",
                        "fraud_loss", "dispute_loss", "fraud_pending")
SIDES: Final = ("legacy", "candidate")


def side_masks(approved: np.ndarray, declined: np.ndarray, reviewed: np.ndarray,
               fraud: np.ndarray, chargeback: np.ndarray) -> dict[str, np.ndarray]:
    """Each measure's rows for one side, from bool arrays (labels with nulls read as False)."""
    flagged = declined | reviewed
    charged = approved & chargeback
    masks = {
        "approved": approved,
        "fraud_caught": flagged & fraud,
        "fraud_let_through": approved & fraud,
        "false_decline": declined & ~fraud,
        "fraud_loss": charged & fraud,
        "dispute_loss": charged & ~fraud,
        "fraud_pending": approved & fraud & ~chargeback,
    }
    # fraud_let_through = fraud_loss + fraud_pending: asserted here, where both are made.
    assert not np.any(masks["fraud_let_through"] != (masks["fraud_loss"] | masks["fraud_pending"]))
    return masks


def decision_masks(decision: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(approved, declined, reviewed) of an array of decision strings."""
    return decision == "approve", decision == "decline", decision == "review"
