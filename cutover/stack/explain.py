"""Why the reference stack scored one transaction as it did: its features and exact contributions.

The decision store keeps reason codes only (the DECISION schema); a person drilling into one
transaction wants the numbers behind them. Given the earlier rows and labels the stack had
seen (``cutover.store.lookback``), this recomputes the transaction's features with the
stack's own batch path (``observe_labels``, ``warm``, ``features``: the replay's calls) and
its exact per-feature contributions (TreeSHAP, ``pred_contribs``): about 1.5 ms for one row,
which is why the replay itself does not keep them. The contributions and the bias add up to
the model's margin, whose sigmoid is the score.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import pyarrow as pa

from cutover.stack.features import FEATURES, HISTORY_US, INPUT_COLUMNS
from cutover.stack.reasons import MODEL, sentence, supported, top_features

#: The batch state's history columns (features.HISTORY_SCHEMA) that are look-back entities,
#: with the traffic column each is keyed by (the customer-device pair is a subset of the
#: customer's rows), and those that are not entities. A test checks every history column is
#: in one of the two, so a new entity in the features cannot be missed here silently.
ENTITY_COLUMNS: Final = {"card": "card_token", "cust": "customer_id", "pair": "customer_id",
                         "dev": "device_hash", "merch": "merchant_id"}
NOT_ENTITIES: Final = ("ts", "lam_q", "mcountry")  # mcountry: a value counted per card
#: Rows sharing none of these with a transaction cannot change its features.
LOOKBACK_KEYS: Final = tuple(dict.fromkeys(ENTITY_COLUMNS.values()))
#: Whose labels the features read (the merchant's fraud rate).
LABEL_KEY: Final = "merchant_id"
LOOKBACK_US: Final = HISTORY_US
EXACT_METHOD: Final = "pred_contribs"
#: Contributions shown first (the full list is in ``features``).
TOP_CONTRIBUTIONS: Final = 5
#: The recomputed score must equal the recorded one to this (float32 margins, float64 scores).
SCORE_TOLERANCE: Final = 1e-5


def features_for(stack: Any, target: pa.Table, history: pa.Table, labels: pa.Table) -> np.ndarray:
    """The feature row (1 x FEATURES) the stack computes for ``target`` after ``history``.

    ``stack`` must be fresh (no state): this feeds it exactly what the replay fed it before
    the transaction, in the replay's order (labels, then warm-up rows, then the row).
    """
    if labels.num_rows:
        stack.observe_labels(labels)
    if history.num_rows:
        stack.warm(history.select(list(INPUT_COLUMNS)))
    return stack.features(target.select(list(INPUT_COLUMNS)))


def attribution(stack: Any, X: np.ndarray, recorded_codes: list[str],
                recorded_score: float | None) -> dict[str, Any]:
    """Exact contributions of one feature row, as plain data, checked against the record.

    ``codes_reproduced`` says whether the stack's own reason method (the model card's, often
    the approximate one) gives the model codes the decision store holds; ``score_reproduced``
    whether the recomputed score equals the recorded one: together they show the features
    are the ones the replay used.
    """
    exact = stack.contributions(X, EXACT_METHOD)[0].astype(np.float64)
    bias, parts = float(exact[-1]), exact[: len(FEATURES)]
    margin = float(exact.sum())
    score = float(stack.booster.inplace_predict(X)[0])
    reference = getattr(stack, "reference", None)
    true = supported(X, FEATURES, reference)[0]
    features = [_feature(name, float(X[0, i]), float(parts[i]), bool(true[i]), reference)
                for i, name in enumerate(FEATURES)]
    ranked = sorted(features, key=lambda f: -f["contribution"])
    model_codes = [c for c in recorded_codes if c.split(":", 1)[0] in ("model", "pushed")]
    own = top_features(stack.contributions(X), FEATURES, X, reference)[0]
    return {
        "method": f"{EXACT_METHOD} (exact TreeSHAP)", "card_method": stack.contrib_method,
        "bias": bias, "margin": margin, "score": score, "score_from_margin": _sigmoid(margin),
        "score_recorded": recorded_score,
        "score_reproduced": recorded_score is not None
        and abs(score - recorded_score) <= SCORE_TOLERANCE,
        "codes_card_method": own, "codes_reproduced": own == model_codes if model_codes else None,
        "top": [f for f in ranked[:TOP_CONTRIBUTIONS] if f["contribution"] > 0],
        "features": features,
    }


def _feature(name: str, value: float, contribution: float, true: bool,
             reference: dict[str, Any] | None) -> dict[str, Any]:
    """One feature's value, contribution and sentence: the claim when the value supports it,
    else what the value is and that no reason is claimed (``supported`` says which)."""
    code = f"{MODEL}{name}" if true else f"pushed:{name}"
    return {"name": name, "code": code, "value": value, "contribution": contribution,
            "supported": true, "text": sentence(code, value, reference)}


def _sigmoid(margin: float) -> float:
    return 1.0 / (1.0 + math.exp(-margin))
