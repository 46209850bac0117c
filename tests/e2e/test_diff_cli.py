"""`cutover diff list`: filters, the indicative amount sort, table and JSON; `diff show` is
`explain`."""

import json
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from cutover.replay.engine import run_replay
from cutover.stack.fx import load_fx, reference_amounts
from tests.cli_support import invoke, run_cli
from tests.replay_support import make_traffic, write_store


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 3,000-row replay through the mirror candidate (5% flips, 3% route changes)."""
    root = tmp_path_factory.mktemp("diffcli")
    store = write_store(root / "store", make_traffic(3_000, seed=21))
    run_replay(store, root / "run", candidate="tests.replay_support:mirror_candidate",
               latency_sample_max=0)
    return root / "run"


def _rows(*args):
    code, stdout = invoke("diff", "list", *args, "--json")
    assert code == 0, stdout
    return json.loads(stdout)


def test_amount_sort_orders_by_the_indicative_reference_amount(run):
    """Largest first in USD terms across JPY, BRL, EUR...: not by raw minor units."""
    got = _rows(str(run), "--category", "all", "--sort", "amount", "--desc", "--limit", "200")
    rows = got["rows"]
    usd = reference_amounts(load_fx(), np.array([r["amount_minor"] for r in rows]),
                            pa.array([r["currency"] for r in rows]))
    assert got["total"] == 3_000 and len(rows) == 200 and len({r["currency"] for r in rows}) > 2
    assert np.all(np.diff(usd) <= 1e-9)
    assert not np.all(np.diff([r["amount_minor"] for r in rows]) <= 0)


def test_filters_by_category_segment_amount_and_time_combine(run):
    """Each filter narrows; every listed row meets all of them; the total counts them all."""
    everything = _rows(str(run), "--category", "all", "--limit", "500")["total"]
    since = "2026-10-02T00:00:00"
    got = _rows(str(run), "--category", "approve_to_decline", "--segment",
                "merchant_country=US", "--min-amount", "20", "--since", since, "--limit", "500")
    assert 0 < got["total"] < everything and got["total"] == len(got["rows"])
    start = datetime(2026, 10, 2, tzinfo=UTC)
    for row in got["rows"]:
        usd = reference_amounts(load_fx(), np.array([row["amount_minor"]]),
                                pa.array([row["currency"]]))[0]
        assert row["category"] == "approve_to_decline" and row["merchant_country"] == "US"
        assert usd >= 20 and datetime.fromisoformat(row["ts"]) >= start


def test_table_output_and_bad_input(run):
    """The table names the page and total; an unknown category or sort exits 2 with choices."""
    code, stdout = invoke("diff", "list", str(run), "--limit", "3")
    assert code == 0 and "diffs 1-3 of" in stdout
    code, _, error = run_cli(["diff", "list", str(run), "--category", "nope"])
    assert code == 2 and "approve_to_decline" in error
    code, _, error = run_cli(["diff", "list", str(run), "--sort", "size"])
    assert code == 2 and "amount" in error


def test_diff_show_and_explain_are_one_command(run):
    """The same JSON for the same transaction."""
    txn = _rows(str(run), "--limit", "1")["rows"][0]["txn_id"]
    shown = invoke("diff", "show", str(run), txn, "--json")
    explained = invoke("explain", str(run), txn, "--json")
    assert shown[0] == explained[0] == 0
    drop = ("seconds",)
    a, b = json.loads(shown[1]), json.loads(explained[1])
    for doc in (a, b):
        for key in drop:
            (doc.get("candidate_model") or {}).pop(key, None)
    assert a == b and a["txn_id"] == txn
