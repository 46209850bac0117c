"""The `cutover serve` contract on a fake stack: JSON, JSON lines, Arrow, errors, metrics."""

import json

import pyarrow as pa
import pytest
from starlette.testclient import TestClient

from cutover.adapters.wire import ARROW_TYPE, JSONL_TYPE, REQUEST, from_ipc, json_ready, to_ipc
from cutover.serve.app import build_app
from tests.replay_support import exact_candidate, make_traffic


@pytest.fixture
def client():
    with TestClient(build_app(exact_candidate)) as c:
        yield c


def _rows(n=3):
    table = make_traffic(n).select(REQUEST.names).cast(REQUEST)
    return table, [json_ready(r) for r in table.to_pylist()]


def test_decide_one_json(client):
    """POST /decide: one transaction in, one decision out with its txn_id and model version."""
    _, rows = _rows(1)
    reply = client.post("/decide", json=rows[0])
    assert reply.status_code == 200
    assert reply.json()["txn_id"] == rows[0]["txn_id"] and reply.json()["decision"]


def test_decide_batch_arrow_and_jsonl_agree(client):
    """/decide-batch answers Arrow IPC with Arrow and JSON lines with JSON lines, same rows."""
    table, rows = _rows(5)
    arrow = client.post("/decide-batch", content=to_ipc(table),
                        headers={"Content-Type": ARROW_TYPE})
    lines = client.post("/decide-batch", content="\n".join(json.dumps(r) for r in rows),
                        headers={"Content-Type": JSONL_TYPE})
    assert arrow.status_code == lines.status_code == 200
    decided = from_ipc(arrow.content)
    assert decided.num_rows == 5
    assert [json.loads(x)["txn_id"] for x in lines.text.splitlines()] == \
        decided["txn_id"].to_pylist()


def test_bad_input_is_400_naming_the_field(client):
    """An unknown field, a float amount and a non-Arrow body are refused with 400 and a
    message naming what is wrong; no traceback."""
    _, rows = _rows(1)
    unknown = client.post("/decide", json=rows[0] | {"pan": "x"})
    floaty = client.post("/decide", json=rows[0] | {"amount_minor": 12.5})
    garbage = client.post("/decide-batch", content=b"nope", headers={"Content-Type": ARROW_TYPE})
    assert (unknown.status_code, floaty.status_code, garbage.status_code) == (400, 400, 400)
    assert "pan" in unknown.json()["detail"] and "amount_minor" in floaty.json()["detail"]
    assert garbage.json()["error"] == "bad_request"


def test_metrics_count_decisions_errors_and_latency(client):
    """/metrics: decisions by kind, errors by kind, a latency histogram and the version."""
    table, rows = _rows(4)
    client.post("/decide-batch", content=to_ipc(table), headers={"Content-Type": ARROW_TYPE})
    client.post("/decide", json={"nope": 1})
    text = client.get("/metrics").text
    decided = sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith("cutover_serve_decisions_total{"))
    assert decided == 4
    assert 'cutover_serve_errors_total{kind="bad_request"} 1' in text
    assert 'cutover_serve_request_seconds_count{route="/decide-batch"} 1' in text
    assert "cutover_serve_info{model_version=" in text
    assert client.get("/healthz").json()["status"] == "ok"


def test_sessions_decide_in_sequence_order(client):
    """A session's numbered chunk that arrives before its predecessor waits for it; a number
    already used is refused with 409."""
    sid = client.post("/sessions").json()["session"]
    table, _ = _rows(2)
    headers = {"Content-Type": ARROW_TYPE, "X-Cutover-Session": sid}
    first = client.post("/decide-batch", content=to_ipc(table), headers=headers |
                        {"X-Cutover-Seq": "0"})
    again = client.post("/decide-batch", content=to_ipc(table), headers=headers |
                        {"X-Cutover-Seq": "0"})
    assert first.status_code == 200 and again.status_code == 409
    assert client.post("/decide-batch", content=to_ipc(pa.table({"x": [1]})),
                       headers={"Content-Type": ARROW_TYPE}).status_code == 400


def test_load_schedule_rate_and_speed():
    """--rate 4 spaces requests 0.25 s apart; --speed 2x halves the recorded gaps."""
    import numpy as np

    from cutover.mirror.load import _schedule
    ts_us = np.array([0, 1_000_000, 3_000_000], dtype=np.int64)
    assert _schedule(ts_us, 4.0, None).tolist() == [0.0, 0.25, 0.5]
    assert _schedule(ts_us, None, 2.0).tolist() == [0.0, 0.5, 1.5]


def test_openapi_document_matches_the_app_and_the_schemas():
    """docs/openapi.yaml names every route the app serves, and its Transaction and Decision
    fields are exactly the wire's request columns and the DECISION schema."""
    from pathlib import Path

    import yaml

    from cutover.domain import DECISION, REQUEST_COLUMNS
    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs/openapi.yaml").read_text())
    app = build_app(exact_candidate)
    served = {r.path.replace("{sid}", "{session}") for r in app.routes}
    assert set(doc["paths"]) == served
    schemas = doc["components"]["schemas"]
    assert list(schemas["Transaction"]["properties"]) == list(REQUEST_COLUMNS)
    assert list(schemas["Decision"]["properties"]) == DECISION.names
