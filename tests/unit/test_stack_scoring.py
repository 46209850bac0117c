"""The prepared online row scores exactly as XGBoost's public methods do, and falls back safely."""

import numpy as np
import pytest

from cutover.stack.scoring import PreparedRow

NAMES = tuple(f"f{i}" for i in range(6))


@pytest.fixture(scope="module")
def booster():
    """A small binary:logistic model on random data (a few trees, one thread)."""
    import xgboost as xgb
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2_000, len(NAMES))).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 3] + rng.normal(0, 0.5, len(X)) > 0).astype(np.int8)
    data = xgb.DMatrix(X, label=y, feature_names=list(NAMES), nthread=1)
    model = xgb.train({"objective": "binary:logistic", "max_depth": 4, "nthread": 1}, data,
                      num_boost_round=12)
    model.set_param({"nthread": 1})
    return model


def _public(booster, row: np.ndarray, method: str) -> tuple[float, np.ndarray]:
    import xgboost as xgb
    matrix = xgb.DMatrix(row, feature_names=list(NAMES), nthread=1)
    return (float(booster.inplace_predict(row)[0]),
            booster.predict(matrix, pred_contribs=True, approx_contribs=method == "approx_contribs"))


@pytest.mark.parametrize("method", ["approx_contribs", "pred_contribs"])
def test_prepared_row_equals_the_public_methods_bit_for_bit(booster, method):
    """200 rows: the prepared C calls give the very floats inplace_predict and predict give."""
    prepared = PreparedRow(booster, NAMES, 1)
    assert prepared.prepared
    rng = np.random.default_rng(11)
    for values in rng.normal(0, 2, size=(200, len(NAMES))):
        prepared.row[0, :] = values.tolist()
        score, contribs = _public(booster, prepared.row.copy(), method)
        assert prepared.score() == score
        assert np.array_equal(prepared.contributions(method), contribs)


def test_a_failed_self_check_falls_back_to_the_public_methods(booster, monkeypatch):
    """If the C path disagrees once at start, every call uses the public path: same numbers."""
    monkeypatch.setattr(PreparedRow, "_score_c", lambda self: -1.0)
    prepared = PreparedRow(booster, NAMES, 1)
    assert not prepared.prepared
    prepared.row[0, :] = [0.5, -1.0, 2.0, 0.0, 1.5, -0.25]
    score, contribs = _public(booster, prepared.row.copy(), "approx_contribs")
    assert prepared.score() == score
    assert np.array_equal(prepared.contributions("approx_contribs"), contribs)
