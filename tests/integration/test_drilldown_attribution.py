"""Drill-down of one transaction through the reference stack: the features recomputed from the
look-back equal the replay's, and the exact contributions add up to the recorded score."""

from __future__ import annotations

import math
import shutil
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from cutover.domain import TS
from cutover.replay.engine import run_replay
from cutover.shadow.drilldown import explain
from cutover.stack.features import FEATURES, FeatureState
from cutover.stack.labels import PRIOR_RATE
from cutover.stack.model import train
from cutover.store.filters import hash_fraction
from cutover.store.quarantine import quarantine_reasons
from cutover.store.stream import WARM_LOOKBACK
from tests.replay_support import read_parts
from tests.stack_support import labels_of, make_traffic, write_store

ROUNDS = 40
BATCH_ROWS = 3_000
SAMPLE_ROWS = 40
BAD_MERCHANTS = ("M00000", "M00001", "M00002", "M00003")  # stack_support: 25 % fraud


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """16k rows over 8 days (fraud labels arrive 1-10 days late) and a model trained on them."""
    root = tmp_path_factory.mktemp("drill")
    table = make_traffic(16_000, seed=11, days=8)
    store = write_store(table, root / "store")
    train(store, root / "models", seed=3, rounds_max=ROUNDS)
    return {"table": table, "store": store, "models": root / "models", "root": root}


def replay(world, name: str, **narrowing) -> tuple:
    out = world["root"] / name
    if not out.exists():
        run_replay(world["store"], out, candidate_options={"models": str(world["models"])},
                   batch_rows=BATCH_ROWS, report=False, **narrowing)
    return out, read_parts(out, "decisions")


def batch_pass(rows: pa.Table) -> dict[str, np.ndarray]:
    """The batch features of ``rows`` (time order) as the replay computes them: labels of each
    batch observed before its features; txn_id -> feature row."""
    rows = rows.filter(pc.is_null(quarantine_reasons(rows)))
    state, out = FeatureState(), {}
    for start in range(0, rows.num_rows, BATCH_ROWS):
        batch = rows.slice(start, BATCH_ROWS)
        labels = labels_of(batch)
        state.observe_labels(labels["merchant_id"], labels["label_ts"].cast(pa.int64()),
                             labels["is_fraud"])
        X = state.features(batch)
        out.update(zip(batch["txn_id"].to_pylist(), X, strict=True))
    return out


def sample_ids(decisions: pa.Table, table: pa.Table) -> list[str]:
    """Flagged decisions, rows of the fraud-heavy merchants late in the run, and approvals."""
    flagged = decisions.filter(pc.not_equal(decisions["decision"], "approve"))["txn_id"]
    decided = set(decisions["txn_id"].to_pylist())
    bad = table.filter(pc.is_in(table["merchant_id"], pa.array(BAD_MERCHANTS)))["txn_id"]
    late_bad = [t for t in bad.to_pylist()[-200:] if t in decided][-10:]
    approved = decisions.filter(pc.equal(decisions["decision"], "approve"))["txn_id"].to_pylist()
    picks = flagged.to_pylist()[:15] + late_bad + approved[:: max(len(approved) // 15, 1)][:15]
    return list(dict.fromkeys(picks))[:SAMPLE_ROWS]


def check_row(result: dict, expected: np.ndarray, recorded: dict) -> dict:
    """Features equal, contributions add up, the score and the stored codes are reproduced."""
    model = result["candidate_model"]
    assert model["available"], model["why"]
    values = np.array([f["value"] for f in model["features"]], dtype=np.float32)
    assert [f["name"] for f in model["features"]] == list(FEATURES)
    np.testing.assert_array_equal(values, expected, err_msg=result["txn_id"])
    contributions = [f["contribution"] for f in model["features"]]
    assert math.isclose(sum(contributions) + model["bias"], model["margin"], abs_tol=1e-4)
    assert math.isclose(1 / (1 + math.exp(-model["margin"])), recorded["score"], abs_tol=1e-5)
    assert model["score_reproduced"] and model["score"] == pytest.approx(recorded["score"],
                                                                         abs=1e-6)
    top = [f["contribution"] for f in model["top"]]
    assert top == sorted(top, reverse=True) and all(c > 0 for c in top)
    stored = [c for c in recorded["reason_codes"] if c.split(":")[0] in ("model", "pushed")]
    if stored:
        assert model["codes_reproduced"] and model["codes_card_method"] == stored
        by_code = {f["code"]: f["contribution"] for f in model["features"]}
        shown = {r["code"]: r.get("contribution") for r in result["reason_codes"]}
        assert all(shown[c] == by_code[c] for c in stored)
    return model


def test_recomputed_features_equal_the_replays(world):
    """For a sample of transactions of a replay that starts on day 3 (its warm-up reaches the
    store's first row), the drill-down's features equal a batch pass over the whole store,
    the exact contributions plus the bias give the margin of the recorded score, and the
    stack's own reason method gives back the stored model codes in their order."""
    out, decisions = replay(world, "run", since="2026-10-03")
    expected = batch_pass(world["table"])
    recorded = {r["txn_id"]: r for r in decisions.to_pylist()}
    ids = sample_ids(decisions, world["table"])
    assert len(ids) >= 30
    models = [check_row(explain(out, t), expected[t], recorded[t]) for t in ids]
    rate = FEATURES.index("merchant_fraud_rate")
    # Labels that arrived before a transaction moved its merchant's rate off the prior.
    assert any(m["features"][rate]["value"] > PRIOR_RATE + 1e-3 for m in models)
    assert any(m["lookback"]["labels"] > 0 for m in models)
    assert any(m["codes_reproduced"] for m in models)


def test_a_narrowed_run_feeds_unnarrowed_warm_up_and_sampled_rows_after(world):
    """A run starting on day 7.5 over a 50 % sample: the candidate saw every row of the 7 h
    warm-up window before its first row (not earlier ones), then only sampled rows; the
    drill-down reproduces exactly that."""
    out, decisions = replay(world, "narrow", since="2026-10-08T12:00:00Z", sample=0.5)
    table = world["table"]
    first = decisions["txn_id"][0].as_py()
    first_ts = table.filter(pc.equal(table["txn_id"], first))["ts"][0].as_py()
    start = pa.scalar(first_ts - WARM_LOOKBACK, TS)
    fed = table.filter(pc.greater_equal(table["ts"], start))
    later = pc.greater_equal(fed["ts"], pa.scalar(first_ts, TS))
    sampled = pa.array(hash_fraction(fed["txn_id"]) < 0.5)
    fed = fed.filter(pc.or_(pc.invert(later), sampled))
    expected = batch_pass(fed)
    recorded = {r["txn_id"]: r for r in decisions.to_pylist()}
    for txn in sample_ids(decisions, table)[:20]:
        check_row(explain(out, txn), expected[txn], recorded[txn])


def test_a_missing_model_or_store_is_said_plainly(world, tmp_path):
    """No model version in the registry: the drill-down still answers, saying why."""
    out, decisions = replay(world, "run", since="2026-10-03")
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    txn = decisions["txn_id"][0].as_py()
    moved = world["root"] / "models-away"
    shutil.move(world["models"], moved)
    try:
        model = explain(copy, txn)["candidate_model"]
    finally:
        shutil.move(moved, world["models"])
    assert not model["available"] and "is not in the model registry" in model["why"]
    assert explain(copy, txn)["candidate_model"]["available"]


def test_a_look_back_reads_only_its_window(world):
    """The look-back read stays inside the horizon: the rows it hands the stack are at most
    seven days older than the transaction and share its card, customer, device or merchant;
    the labels are its merchant's, known by its time."""
    from cutover.stack.explain import LABEL_KEY, LOOKBACK_KEYS, LOOKBACK_US
    from cutover.store.lookback import read_lookback
    out, decisions = replay(world, "run", since="2026-10-03")
    table = world["table"]
    late_bad = table.filter(pc.is_in(table["merchant_id"], pa.array(BAD_MERCHANTS)))
    row = late_bad.slice(late_bad.num_rows - 1).to_pylist()[0]
    txn = row["txn_id"]
    found = read_lookback(out, txn, row["ts"], timedelta(microseconds=LOOKBACK_US),
                          LOOKBACK_KEYS, LABEL_KEY)
    history = found.history.to_pylist()
    assert history and all(row["ts"] - h["ts"] <= timedelta(days=7) for h in history)
    assert all(any(h[k] == row[k] and row[k] is not None for k in LOOKBACK_KEYS)
               for h in history)
    assert all(h["ts"] < row["ts"] or h["txn_id"] < txn for h in history)
    labels = found.labels.to_pylist()
    assert labels and all(lab["merchant_id"] == row["merchant_id"] and lab["label_ts"] <= row["ts"]
                          for lab in labels)


def test_cutover_explain_prints_features_and_contributions(world):
    """`cutover explain RUN TXN` shows the contributions table and the reproduced score;
    --json carries the same numbers."""
    import json

    from typer.testing import CliRunner

    from cutover.cli import app
    out, decisions = replay(world, "run", since="2026-10-03")
    flagged = decisions.filter(pc.not_equal(decisions["decision"], "approve"))
    txn = flagged["txn_id"][0].as_py()
    runner = CliRunner()
    shown = runner.invoke(app, ["explain", str(out), txn], env={"COLUMNS": "160"})
    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    assert "candidate features and contributions" in text and "reproduced: yes" in text
    assert "merchant_fraud_rate" in text and "exact TreeSHAP" in text
    doc = json.loads(runner.invoke(app, ["explain", str(out), txn, "--json"]).stdout)
    model = doc["candidate_model"]
    assert model["available"] and model["score"] == pytest.approx(flagged["score"][0].as_py())
    assert [r["code"] for r in doc["reason_codes"]] == flagged["reason_codes"][0].as_py()
    assert all("contribution" in r for r in doc["reason_codes"] if r["code"].startswith("model:"))


def test_the_look_back_keys_cover_every_entity_the_features_keep():
    """Every column of the batch state's history is a known entity or a known non-entity, so
    the drill-down reads the rows of every entity a feature looks back over."""
    from cutover.stack.explain import ENTITY_COLUMNS, NOT_ENTITIES
    from cutover.stack.features import HISTORY_SCHEMA
    assert set(HISTORY_SCHEMA.names) == set(ENTITY_COLUMNS) | set(NOT_ENTITIES)
