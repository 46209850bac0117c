"""Reason codes of the reference stack say only what the feature's value makes true."""

import json

import numpy as np
import pytest

from cutover.stack import default_stack
from cutover.stack.features import FEATURES
from cutover.stack.model import train
from cutover.stack.reasons import load_claims, sentence
from cutover.stack.registry import CARD_FILE
from tests.stack_support import candidate_view, labels_of, make_traffic, write_store

ROUNDS = 40


@pytest.fixture(scope="module")
def decided(tmp_path_factory):
    """A trained model, and every row of its store decided in batches with its feature row."""
    root = tmp_path_factory.mktemp("reasons")
    table = make_traffic(16_000, seed=5, days=8)
    store = write_store(table, root / "store")
    card = train(store, root / "models", seed=2, rounds_max=ROUNDS)
    stack = default_stack(root / "models")
    stack.observe_labels(labels_of(table))
    rows, X = [], []
    for batch in candidate_view(table).to_batches(max_chunksize=4_000):
        x = stack.features(batch)
        out = stack._decide_rows(batch, x)
        rows += [{"decision": d, "codes": c} for d, c in
                 zip(out["decision"].to_pylist(), out["reason_codes"].to_pylist(), strict=True)]
        X.append(x)
    doc = json.loads((root / "models" / card.version / CARD_FILE).read_text())
    return {"rows": rows, "X": np.vstack(X), "reference": doc["reference"], "stack": stack}


def _true(when: str, value: float, p10: float, p90: float) -> bool:
    """The claim judged from the card's percentiles, written apart from the stack's own code."""
    return {"high": value > p90, "low": value < p10, "flag": value == 1.0}.get(when, False)


def test_no_decline_or_review_carries_a_reason_its_value_contradicts(decided):
    """Every model: code of every decline and review holds against the reference percentiles."""
    claims, ref = load_claims(), decided["reference"]["features"]
    index = {n: i for i, n in enumerate(FEATURES)}
    checked = pushed = flagged = 0
    for i, row in enumerate(decided["rows"]):
        if row["decision"] == "approve":
            continue
        flagged += 1
        for code in row["codes"]:
            prefix, _, name = code.partition(":")
            if prefix not in ("model", "pushed"):
                continue
            value = float(decided["X"][i, index[name]])
            p10, _, p90 = ref[name]
            holds = _true(claims[name].when, value, p10, p90)
            assert holds == (prefix == "model"), (code, value, ref[name])
            checked += prefix == "model"
            pushed += prefix == "pushed"
    assert flagged > 100 and checked > 50 and pushed > 0


def test_a_reason_sentence_carries_the_value_and_the_typical_range():
    """"3 earlier payments on this card in the last hour; typical 0-1." from value and reference."""
    reference = {"features": {"card_n_1h": [0.0, 0.0, 1.0], "cross_border": [0.0, 0.0, 1.0]}}
    assert sentence("model:card_n_1h", 3.0, reference) == \
        "3 earlier payments on this card in the last hour; typical 0-1."
    said = sentence("pushed:card_n_1h", 1.0, reference)
    assert said.startswith("card_n_1h = 1 pushed the score up; typical 0-1") and "no plain" in said


def test_category_codes_are_never_claimed_as_reasons(decided):
    """channel_code and mcc_code have no truthful sentence: only ever pushed:, never model:."""
    codes = {c for row in decided["rows"] for c in row["codes"]}
    assert not {"model:channel_code", "model:mcc_code"} & codes
    assert {c.partition(":")[0] for c in codes} >= {"rule", "model"}
